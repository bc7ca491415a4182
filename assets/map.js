/* How the map draws what is not an entity's own marker: detections, hazard and warning
 * areas, the offline base layer (dash-leaflet resolves the latter by name,
 * {variable: "cockpitMap.basemapStyle"}); feature properties come from stream.js. */
(function () {
  "use strict";

  const COLOURS = {
    unit: "#ff3b30", drone: "#0a84ff", robot: "#ffd60a", sensor: "#30d158",
    person: "#bf5af2", detection: "#ff9f0a", responder: "#146c2e",
  };
  const SEVERITY = { critical: "#ff3b30", warning: "#ff9f0a", info: "#64d2ff" };

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, (c) => (
      { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }

  // Points of the GeoJSON layers livemap.js draws whole (detections). Entity symbols are
  // livemap.js's own markers, changed in place.
  function point(feature, latlng) {
    const p = feature.properties || {};
    return L.circleMarker(latlng, {
      radius: 11, color: "#fff", weight: 3, fillColor: COLOURS.detection,
      fillOpacity: p.stale ? 0.35 : 0.95, dashArray: p.stale ? "4 4" : null, className: "detection",
    });
  }

  function style(feature, context) {
    const p = feature.properties || {};
    const layer = ((context && context.hideout) || {}).layer;
    if (layer === "warnings") {  // CAP severity: Extreme and Severe in red, the rest in amber
      const colour = p.severity === "Extreme" || p.severity === "Severe" ? "#ff3b30" : "#ff9f0a";
      return { color: colour, weight: 2, dashArray: "8 6", fillColor: colour, fillOpacity: 0.08 };
    }
    if (p.zone === "downwind_sector") {
      // Dashed: an estimate from the wind, not a measured edge; grey once the wind is old.
      const colour = p.stale ? "#8e8e93" : "#ff9f0a";
      return { color: colour, weight: 3, dashArray: "10 6", fillColor: colour, fillOpacity: p.stale ? 0.08 : 0.16 };
    }
    if (p.zone === "danger_area") {
      return { color: "#ff3b30", weight: 3, fillColor: "#ff3b30", fillOpacity: 0.28 };
    }
    const colour = SEVERITY[p.severity] || SEVERITY.warning;
    return { color: colour, weight: 3, fillColor: colour, fillOpacity: 0.18 };
  }

  function hazardTip(p) {
    const t = window.cockpit.t;
    const what = p.zone === "downwind_sector" ? t("hazard.sector") : t("hazard.area");
    return esc(what + (p.label ? ": " + p.label : "")) + (p.wind ? "<br>" + esc(p.wind) : "");
  }

  function each(feature, layer) {
    const p = feature.properties || {};
    if (p.id && window.cockpit && p.kind !== "hazard") {
      layer.on("click", () => window.cockpit.select(p.id, p.kind === "detection" ? "detection" : "entity"));
    }
    if (p.kind === "hazard") {
      layer.bindTooltip(hazardTip(p), { sticky: true });
      if (p.zone === "drawn" && window.cockpitDraw) layer.bindPopup(() => window.cockpitDraw.popup(p));
    } else if (p.kind === "warning") {  // headline (until …), then the areas named by geocode only
      layer.bindTooltip(esc(p.label).replace(/\n/g, "<br>"), { sticky: true });
    }
    if (p.kind === "detection") {
      layer.bindTooltip(esc(p.label) + " · " + esc(p.age));  // what, and how old
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
