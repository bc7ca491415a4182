/* The live layers of the map, kept by Leaflet itself and changed in place.
 *
 * dash-leaflet redraws a GeoJSON layer from scratch whenever its data changes: every marker
 * thrown away and made again, 100 ms a frame at 200 entities (bench/push_latency.py). Here
 * each entity keeps its marker; a report moves it (setLatLng), a second that passes changes
 * its age label's text, and only what changed is touched. Dash draws the map and its base
 * layer; this file owns what moves on it. Layers with many features become canvas dots.
 */
(function () {
  "use strict";

  const DOTS_ABOVE = 300;
  const KIND_LAYER = { unit: "units", drone: "drones", robot: "robots", sensor: "sensors", person: "persons" };
  const POINT_LAYERS = ["units", "drones", "robots", "sensors", "persons"];
  const ORDER = ["warnings", "hazards", "footprints", "tracks", "sensors", "detections", "persons", "robots", "drones", "units"];
  const LM = { map: null, groups: {}, markers: new Map(), dots: {}, control: null, renderer: null };
  window.cockpitLive = LM;

  function adopt(map) {
    LM.map = map;
    LM.renderer = L.canvas({ padding: 0.2 });
    for (const name of ORDER) LM.groups[name] = L.layerGroup().addTo(map);
    for (const name of POINT_LAYERS) LM.dots[name] = false;
  }

  // Registered as soon as Leaflet is there: dash-leaflet creates the map later, when Dash
  // renders the layout, and the hook hands it to us.
  (function hook() {
    if (!window.L || !window.L.Map) { setTimeout(hook, 5); return; }
    L.Map.addInitHook(function () {
      // The commander's map is the one in .map-wrap (a wall or trainer page may add others).
      const container = this.getContainer();
      if (container.closest && container.closest(".map-wrap")) adopt(this);
    });
  })();

  const esc = (s) => window.cockpitMap.esc(s);

  // The layer switch, labelled in the page's language once the configuration is known.
  LM.ensureControl = function (t) {
    if (LM.control || !LM.map) return;
    const overlays = {};
    for (const name of [...ORDER].reverse()) overlays[t("layer." + name)] = LM.groups[name];
    LM.control = L.control.layers(null, overlays, { collapsed: true, position: "topright" }).addTo(LM.map);
  };

  function symbolHtml(p) {
    return '<img src="/assets/symbols/' + esc(p.icon) + '" alt="" draggable="false">' +
      '<span class="lbl">' + esc(p.label) + ' <b class="age">' + esc(p.age) + "</b></span>";
  }

  function symbolClass(p) {
    return "sym sym-" + p.kind + (p.stale ? " stale" : "") + (p.selected ? " selected" : "");
  }

  function makeMarker(p, latlng, dots) {
    let m;
    if (dots) {
      m = L.circleMarker(latlng, { renderer: LM.renderer, radius: 6, weight: 1 });
      m.dot = true;
    } else {
      m = L.marker(latlng, {
        icon: L.divIcon({ className: symbolClass(p), html: symbolHtml(p), iconSize: [44, 44], iconAnchor: [22, 22] }),
        keyboard: false,
      });
    }
    m.on("click", () => window.cockpit && window.cockpit.select(p.id, "entity"));
    m.shown = {};
    return m;
  }

  function restyle(m, p) {
    const s = m.shown;
    if (m.dot) {
      if (s.stale !== p.stale || s.selected !== p.selected) {
        const colour = (window.cockpitMap.COLOURS || {})[p.kind] || "#ccc";
        m.setStyle({
          color: p.stale ? "#888" : "#111", weight: p.selected ? 3 : 1, radius: p.selected ? 8 : 6,
          fillColor: p.stale ? "#777" : colour, fillOpacity: p.stale ? 0.4 : 0.95,
        });
      }
    } else {
      const el = m.getElement();
      if (el) {
        // Toggle our classes only: Leaflet's own (leaflet-interactive: clickable) stay.
        el.classList.toggle("stale", !!p.stale);
        el.classList.toggle("selected", !!p.selected);
        if (s.label !== p.label || s.icon !== p.icon) {
          el.innerHTML = symbolHtml(p);
        } else if (s.age !== p.age) {
          const age = el.querySelector(".age");
          if (age) age.textContent = p.age;
        }
        m.options.title = p.label;
      }
    }
    m.shown = { stale: p.stale, selected: p.selected, cls: symbolClass(p), label: p.label, icon: p.icon, age: p.age };
  }

  // Points: `features` are {id, lat, lon, props}; only `ids` changed (null: all may have).
  LM.points = function (name, features, ids) {
    const group = LM.groups[name];
    if (!group) return;
    const dots = features.length > DOTS_ABOVE;
    if (dots !== LM.dots[name]) {
      // Switching between symbols and dots: this layer is made again, once.
      for (const [id, m] of LM.markers) if (m.layer === name) { group.removeLayer(m); LM.markers.delete(id); }
      LM.dots[name] = dots;
      ids = null;
    }
    const seen = new Set();
    for (const f of features) {
      seen.add(f.id);
      if (ids && !ids.has(f.id) && LM.markers.has(f.id)) continue;
      let m = LM.markers.get(f.id);
      if (m && m.layer !== name) { LM.groups[m.layer].removeLayer(m); LM.markers.delete(f.id); m = null; }
      if (!m) {
        m = makeMarker(f.props, [f.lat, f.lon], dots);
        m.layer = name;
        LM.markers.set(f.id, m);
        group.addLayer(m);
      } else {
        const at = m.getLatLng();
        if (at.lat !== f.lat || at.lng !== f.lon) m.setLatLng([f.lat, f.lon]);
      }
      restyle(m, f.props);
    }
    for (const [id, m] of LM.markers) {
      if (m.layer === name && !seen.has(id)) { group.removeLayer(m); LM.markers.delete(id); }
    }
  };

  // Lines and areas: few, and redrawn whole when they change.
  const shapes = { tracks: new Map(), footprints: new Map() };

  LM.lines = function (name, items, style) {
    const group = LM.groups[name];
    const known = shapes[name];
    const seen = new Set();
    for (const it of items) {
      seen.add(it.id);
      const s = style(it);
      let shape = known.get(it.id);
      if (!shape) {
        shape = (name === "tracks" ? L.polyline : L.polygon)(it.latlngs, Object.assign({ renderer: LM.renderer, interactive: false }, s));
        known.set(it.id, shape);
        group.addLayer(shape);
        shape.count = it.latlngs.length;
      } else {
        if (name === "tracks" && it.latlngs.length === shape.count + 1) shape.addLatLng(it.latlngs[it.latlngs.length - 1]);
        else shape.setLatLngs(it.latlngs);
        shape.count = it.latlngs.length;
        shape.setStyle(s);
      }
    }
    for (const [id, shape] of known) if (!seen.has(id)) { group.removeLayer(shape); known.delete(id); }
  };

  LM.geojson = function (name, collection) {
    const group = LM.groups[name];
    if (!group) return;
    group.clearLayers();
    const cm = window.cockpitMap;
    group.addLayer(L.geoJSON(collection, {
      pointToLayer: (f, latlng) => cm.point(f, latlng, { hideout: { layer: name } }),
      style: (f) => cm.style(f, { hideout: { layer: name } }),
      onEachFeature: cm.each,
    }));
  };
})();
