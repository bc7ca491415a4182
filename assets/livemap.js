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

  const DOTS_ABOVE = 300; // points of one layer above which they are dots, not symbols
  const POINT_LAYERS = ["units", "drones", "robots", "sensors", "persons", "responders"];
  // "calls": dashed lines from alerted Helfer to their detection; "adler": A.D.Le.R. detections.
  const ORDER = ["warnings", "hazards", "footprints", "tracks", "calls", "sensors", "detections", "adler", "persons", "robots", "drones", "units", "responders"];
  const LM = {
    map: null, groups: {}, markers: new Map(), dots: {}, control: null, lineCanvas: null, dotLayer: null,
    DOTS_ABOVE: DOTS_ABOVE, POINT_LAYERS: POINT_LAYERS, // stream.js decides with the same numbers
  };
  window.cockpitLive = LM;

  // Large layers as dots on one canvas, drawn by copying small pre-drawn stamps into a
  // pixel buffer. Leaflet's own canvas keeps one object per dot and rasterises 2,000
  // circles per redraw (~15 ms without a GPU, on the page's main thread); here a redraw
  // of all of them costs ~2 ms. Stale dots are grey and see-through, the selected one
  // larger; a tap selects the nearest dot within reach of a finger.
  const DOT_R = 5; // CSS px
  const HIT_PX = 14;
  const DotLayer = L.Layer.extend({
    initialize: function () {
      this.sets = {}; // layer name -> [{id, lat, lon, props: {kind, stale, selected}}]
      this.stamps = new Map();
      this.queued = false;
    },
    onAdd: function (map) {
      this.pane = map.getPane("cockpitDots") || map.createPane("cockpitDots");
      this.pane.style.zIndex = 450; // above tracks and areas, below symbols
      this.pane.style.pointerEvents = "none";
      this.canvas = L.DomUtil.create("canvas", "cockpit-dots", this.pane);
      this.ctx = this.canvas.getContext("2d");
      map.on("moveend zoomend viewreset resize overlayadd overlayremove", this.redraw, this);
      map.on("zoomstart", this.hide, this);
      map.on("click", this.tap, this);
      this.redraw();
    },
    onRemove: function (map) {
      map.off("moveend zoomend viewreset resize overlayadd overlayremove", this.redraw, this);
      map.off("zoomstart", this.hide, this);
      map.off("click", this.tap, this);
      L.DomUtil.remove(this.canvas);
    },
    set: function (name, dots) {
      if (dots) this.sets[name] = dots; else delete this.sets[name];
      if (this.queued) return; // one redraw for all layers handed over in this task
      this.queued = true;
      queueMicrotask(() => { this.queued = false; this.redraw(); });
    },
    hide: function () { if (this.canvas) this.canvas.style.visibility = "hidden"; },
    stamp: function (kind, stale, selected, dpr) {
      const key = kind + (stale ? "s" : "") + (selected ? "x" : "") + dpr;
      let st = this.stamps.get(key);
      if (st) return st;
      const r = (selected ? DOT_R + 3 : DOT_R) * dpr;
      const size = Math.ceil(2 * r + 4 * dpr);
      const c = document.createElement("canvas");
      c.width = c.height = size;
      const g = c.getContext("2d");
      g.beginPath();
      g.arc(size / 2, size / 2, r, 0, 2 * Math.PI);
      g.globalAlpha = stale ? 0.45 : 0.95;
      g.fillStyle = stale ? "#777" : (window.cockpitMap.COLOURS || {})[kind] || "#ccc";
      g.fill();
      g.globalAlpha = 1;
      g.lineWidth = (selected ? 3 : 1) * dpr;
      g.strokeStyle = selected ? "#ffbf00" : stale ? "#888" : "#111";
      g.stroke();
      const data = new Uint32Array(g.getImageData(0, 0, size, size).data.buffer);
      st = { size: size, half: size >> 1, data: data };
      this.stamps.set(key, st);
      return st;
    },
    redraw: function () {
      const map = this._map;
      if (!map || !this.canvas) return;
      const size = map.getSize();
      const dpr = window.devicePixelRatio || 1;
      const w = Math.round(size.x * dpr), h = Math.round(size.y * dpr);
      if (this.canvas.width !== w || this.canvas.height !== h) {
        this.canvas.width = w;
        this.canvas.height = h;
        this.canvas.style.width = size.x + "px";
        this.canvas.style.height = size.y + "px";
        this.image = null;
      }
      L.DomUtil.setPosition(this.canvas, map.containerPointToLayerPoint([0, 0]));
      this.canvas.style.visibility = "";
      if (!this.image) {
        this.image = this.ctx.createImageData(w, h);
        this.pixels = new Uint32Array(this.image.data.buffer);
      }
      const px = this.pixels;
      px.fill(0);
      this.shown = [];
      let selected = null;
      for (const [name, dots] of Object.entries(this.sets)) {
        if (!map.hasLayer(LM.groups[name])) continue; // switched off in the layer control
        for (const d of dots) {
          const p = map.latLngToContainerPoint([d.lat, d.lon]);
          if (p.x < -HIT_PX || p.y < -HIT_PX || p.x > size.x + HIT_PX || p.y > size.y + HIT_PX) continue;
          const q = d.props;
          this.shown.push(d.id, p.x, p.y);
          if (q.selected) { selected = [q, p]; continue; } // drawn last, on top
          this.put(px, w, h, this.stamp(q.kind, q.stale, false, dpr), p, dpr);
        }
      }
      if (selected) this.put(px, w, h, this.stamp(selected[0].kind, selected[0].stale, true, dpr), selected[1], dpr);
      this.ctx.putImageData(this.image, 0, 0);
    },
    put: function (px, w, h, st, p, dpr) {
      const x0 = Math.round(p.x * dpr) - st.half, y0 = Math.round(p.y * dpr) - st.half;
      const data = st.data, size = st.size;
      for (let j = 0; j < size; j++) {
        const y = y0 + j;
        if (y < 0 || y >= h) continue;
        const row = y * w, srow = j * size;
        for (let i = 0; i < size; i++) {
          const x = x0 + i;
          const v = data[srow + i];
          if (x < 0 || x >= w || v === 0) continue;
          const under = px[row + x];
          const a = v >>> 24;
          if (a === 255 || under === 0) { px[row + x] = v; continue; }
          // Source over what is there (a dot overlapping another). Stamp pixels are
          // not premultiplied: blend each channel by the stamp's alpha.
          const b = under >>> 24;
          const outA = a + ((b * (255 - a)) / 255);
          let out = 0;
          for (let shift = 0; shift < 24; shift += 8) {
            const c = (((v >>> shift) & 255) * a + ((under >>> shift) & 255) * b * (255 - a) / 255) / outA;
            out |= (Math.round(c) & 255) << shift;
          }
          px[row + x] = (out | (Math.round(outA) << 24)) >>> 0;
        }
      }
    },
    tap: function (ev) {
      const list = this.shown || [];
      let best = null, bestD = HIT_PX * HIT_PX;
      for (let k = 0; k < list.length; k += 3) {
        const dx = list[k + 1] - ev.containerPoint.x, dy = list[k + 2] - ev.containerPoint.y;
        const d2 = dx * dx + dy * dy;
        if (d2 <= bestD) { bestD = d2; best = list[k]; }
      }
      if (best && window.cockpit) window.cockpit.select(best, "entity");
    },
  });

  function adopt(map) {
    LM.map = map;
    // Two canvases: a canvas is redrawn whole, and the dots move every second while
    // hundreds of tracks need not be drawn again for that.
    LM.lineCanvas = L.canvas({ padding: 0.2 });
    LM.dotLayer = new DotLayer().addTo(map);
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
    // A responder's call state in words as well as colour (never colour only).
    const call = p.call ? ' <b class="call call-' + esc(p.call) + '">' + esc(p.callText) + "</b>" : "";
    return '<img src="/assets/symbols/' + esc(p.icon) + '" alt="" draggable="false">' +
      '<span class="lbl">' + esc(p.label) + call + ' <b class="age">' + esc(p.age) + "</b></span>";
  }

  function symbolClass(p) {
    return "sym sym-" + p.kind + (p.stale ? " stale" : "") + (p.selected ? " selected" : "");
  }

  function makeMarker(p, latlng) {
    const m = L.marker(latlng, {
      icon: L.divIcon({ className: symbolClass(p), html: symbolHtml(p), iconSize: [44, 44], iconAnchor: [22, 22] }),
      keyboard: false,
    });
    m.on("click", () => window.cockpit && window.cockpit.select(p.id, "entity"));
    m.shown = {};
    return m;
  }

  function restyle(m, p) {
    const s = m.shown;
    const el = m.getElement();
    if (el) {
      // Toggle our classes only: Leaflet's own (leaflet-interactive: clickable) stay.
      el.classList.toggle("stale", !!p.stale);
      el.classList.toggle("selected", !!p.selected);
      if (s.label !== p.label || s.icon !== p.icon || s.call !== p.call || s.callText !== p.callText) {
        el.innerHTML = symbolHtml(p);
      } else if (s.age !== p.age) {
        const age = el.querySelector(".age");
        if (age) age.textContent = p.age;
      }
      m.options.title = p.label;
    }
    m.shown = { stale: p.stale, selected: p.selected, label: p.label, icon: p.icon, age: p.age, call: p.call, callText: p.callText };
  }

  function dropMarkers(name) {
    for (const [id, m] of LM.markers) if (m.layer === name) { LM.groups[name].removeLayer(m); LM.markers.delete(id); }
  }

  // Points: `features` are {id, lat, lon, props}. Up to DOTS_ABOVE of a layer are
  // symbols (a marker each, moved in place); more become dots on the shared canvas.
  LM.points = function (name, features) {
    const group = LM.groups[name];
    if (!group) return;
    const dots = features.length > DOTS_ABOVE;
    if (dots !== LM.dots[name]) {
      if (dots) dropMarkers(name); else LM.dotLayer.set(name, null);
      LM.dots[name] = dots;
    }
    if (dots) {
      LM.dotLayer.set(name, features);
      return;
    }
    const seen = new Set();
    for (const f of features) {
      seen.add(f.id);
      let m = LM.markers.get(f.id);
      if (m && m.layer !== name) { LM.groups[m.layer].removeLayer(m); LM.markers.delete(f.id); m = null; }
      if (!m) {
        m = makeMarker(f.props, [f.lat, f.lon]);
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
  const shapes = { tracks: new Map(), footprints: new Map(), calls: new Map() };

  LM.lines = function (name, items, style) {
    const group = LM.groups[name];
    const known = shapes[name];
    const seen = new Set();
    for (const it of items) {
      seen.add(it.id);
      const s = style(it);
      // Unchanged since the last redraw: not touched (touching redraws the whole canvas).
      const last = it.latlngs[it.latlngs.length - 1];
      const sig = it.latlngs.length + " " + (last ? last[0] + "," + last[1] + " " + it.latlngs[0][0] + "," + it.latlngs[0][1] : "") + " " + s.color + s.weight + s.opacity + s.dashArray + s.fillOpacity;
      let shape = known.get(it.id);
      if (!shape) {
        shape = (name === "footprints" ? L.polygon : L.polyline)(it.latlngs, Object.assign({ renderer: LM.lineCanvas, interactive: false }, s));
        known.set(it.id, shape);
        group.addLayer(shape);
      } else if (shape.sig !== sig) {
        if (name === "tracks" && it.latlngs.length === shape.count + 1) shape.addLatLng(last);
        else shape.setLatLngs(it.latlngs);
        shape.setStyle(s);
      }
      shape.count = it.latlngs.length;
      shape.sig = sig;
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
