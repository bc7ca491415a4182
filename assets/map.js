/* How the map draws features: tactical symbols with callsign and age, canvas dots for
 * large layers, greyed when stale. dash-leaflet resolves these by name
 * ({variable: "cockpitMap.point"}); feature properties come from stream.js. */
(function () {
  "use strict";

  const COLOURS = {
    unit: "#ff3b30", drone: "#0a84ff", robot: "#ffd60a", sensor: "#30d158",
    person: "#bf5af2", detection: "#ff9f0a",
  };
  const SEVERITY = { critical: "#ff3b30", warning: "#ff9f0a", info: "#64d2ff" };

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  function point(feature, latlng, context) {
    const p = feature.properties || {};
    const hide = (context && context.hideout) || {};
    if (p.kind === "detection") {
      return L.circleMarker(latlng, {
        radius: 11, color: "#fff", weight: 3, fillColor: COLOURS.detection,
        fillOpacity: p.stale ? 0.35 : 0.95, className: "detection",
      });
    }
    if (hide.dots) {
      // Many features: canvas dots stay fluid where DOM symbols would not.
      return L.circleMarker(latlng, {
        radius: p.selected ? 8 : 6, weight: p.selected ? 3 : 1, color: p.stale ? "#888" : "#111",
        fillColor: p.stale ? "#777" : (COLOURS[p.kind] || "#ccc"),
        fillOpacity: p.stale ? 0.4 : 0.95,
      });
    }
    const cls = "sym sym-" + esc(p.kind) + (p.stale ? " stale" : "") + (p.selected ? " selected" : "");
    const html =
      '<img src="/assets/symbols/' + esc(p.icon) + '" alt="" draggable="false">' +
      '<span class="lbl">' + esc(p.label) + ' <b class="age">' + esc(p.age) + "</b></span>";
    return L.marker(latlng, {
      icon: L.divIcon({ className: cls, html: html, iconSize: [44, 44], iconAnchor: [22, 22] }),
      title: p.label + " · " + p.age,
      keyboard: false,
      riseOnHover: true,
      zIndexOffset: p.stale ? -500 : 0,
    });
  }

  function style(feature, context) {
    const p = feature.properties || {};
    const layer = ((context && context.hideout) || {}).layer;
    if (layer === "tracks") {
      return { color: p.stale ? "#8e8e93" : (COLOURS[p.kind] || "#ccc"), weight: 3, opacity: 0.55, dashArray: p.stale ? "4 6" : null };
    }
    if (layer === "footprints") {
      return { color: "#0a84ff", weight: 2, dashArray: p.stale ? "4 6" : null, fillColor: "#0a84ff", fillOpacity: p.stale ? 0.04 : 0.12 };
    }
    if (layer === "warnings") {
      return { color: "#ff9f0a", weight: 2, dashArray: "8 6", fillOpacity: 0.08 };
    }
    const colour = SEVERITY[p.severity] || SEVERITY.warning;
    return { color: colour, weight: 3, fillColor: colour, fillOpacity: 0.18 };
  }

  function each(feature, layer) {
    const p = feature.properties || {};
    if (p.id && window.cockpit) {
      layer.on("click", () => window.cockpit.select(p.id, p.kind === "detection" ? "detection" : "entity"));
    }
    if (p.kind === "hazard" || p.kind === "warning") {
      layer.bindTooltip(esc(p.label), { sticky: true });
    }
  }

  // The offline base layer: streets, water, buildings, stations (assets/basemap/).
  const BASE = {
    water: { color: "#6f9fd0", weight: 1, fillColor: "#a9c9ea", fillOpacity: 1 },
    building: { color: "#6b5a4a", weight: 1, fillColor: "#c9b8a6", fillOpacity: 1 },
    primary: { color: "#ffffff", weight: 8, opacity: 1 },
    secondary: { color: "#ffffff", weight: 6, opacity: 1 },
    residential: { color: "#fbfbf8", weight: 4, opacity: 1 },
  };

  function basemapStyle(feature) {
    const cls = (feature.properties || {})["class"];
    return BASE[cls] || { color: "#707070", weight: 2 };
  }

  function basemapPoint(feature, latlng) {
    const p = feature.properties || {};
    return L.circleMarker(latlng, { radius: 4, color: "#ddd", weight: 1, fillColor: "#444", fillOpacity: 1, interactive: false })
      .bindTooltip(esc(p.name || ""), { permanent: false });
  }

  window.cockpitMap = { point, style, each, basemapStyle, basemapPoint, esc, COLOURS };
})();
