/* The wall display (/wall): what only the wall draws, from the picture stream.js keeps.
 *
 * Dash loads every asset on every page: outside /wall this file does nothing. On the wall
 * nothing takes input (markers and areas are not clickable, no layer switch), the map
 * frames the incident by itself, the alert ticker and the video tiles page through what
 * does not fit (every ~10 s), the weather card draws a wind rose, and a lost connection
 * veils the whole screen so the room sees it from its seats.
 */
(function () {
  "use strict";

  if (location.pathname.replace(/\/+$/, "") !== "/wall") return;
  document.documentElement.classList.add("wall-page");

  const VIDEO_SLOTS = 4; // tiles shown at once (a 2×2 grid)
  const ALERT_SLOTS = 4; // ticker items shown at once (two columns, two rows)
  const PAGE_MS = 10000; // how long a page of videos or alerts stays
  const FRAME_MS = 5000; // how often the map checks whether the incident still fits
  const FIT_KINDS = ["unit", "drone", "robot", "person"]; // weather stations lie far around
  const WIND = ["wind_dir", "wind_speed"];
  const REACH_M = 1500; // what moves this far from the incident's middle is not framed

  const C = () => window.cockpit;
  const t = (key, params) => C().t(key, params);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const num = (v, digits) => (typeof v === "number"
    ? v.toLocaleString(C().cfg.lang === "de" ? "de-DE" : "en-GB", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "–");

  // --- nothing to touch ------------------------------------------------------------------

  (function quiet() {
    const live = window.cockpitLive;
    if (!window.L || !window.L.Marker || !live) { setTimeout(quiet, 5); return; }
    // Before the first marker is made: symbols, detections and areas take no taps.
    L.Marker.mergeOptions({ interactive: false });
    L.Path.mergeOptions({ interactive: false });
    live.ensureControl = function () {}; // no layer switch on the wall
  })();

  // --- the map frames the incident ----------------------------------------------------

  let framed = "";
  let centre = null; // the incident's middle: the weather card measures from here

  // The incident: its hazards and open detections, and what moves within reach of them
  // (a unit on its way from across town, a Helfer at home, would shrink it to nothing).
  function incidentBounds(p) {
    const anchors = [];
    for (const d of p.detections.values()) {
      if (d.lat != null && d.state !== "closed" && d.state !== "dismissed") anchors.push(L.latLngBounds([[d.lat, d.lon]]));
    }
    for (const h of p.hazards.values()) {
      try { const b = L.geoJSON(h.geometry).getBounds(); if (b.isValid()) anchors.push(b); } catch (err) { /* unreadable: the rest frames */ }
    }
    const moving = [];
    for (const e of p.entities.values()) {
      if (FIT_KINDS.includes(e.kind) && e.lat != null && e.lon != null) moving.push(L.latLng(e.lat, e.lon));
    }
    if (!anchors.length && !moving.length) return null;
    let bounds = null;
    const add = (b) => { bounds = bounds ? bounds.extend(b) : L.latLngBounds(b.getSouthWest(), b.getNorthEast()); };
    anchors.forEach(add);
    // Without anchors the middle is the median of what moves (robust to a few far away).
    const mid = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const middle = bounds ? bounds.getCenter() : L.latLng(mid(moving.map((q) => q.lat)), mid(moving.map((q) => q.lng)));
    for (const q of moving) if (middle.distanceTo(q) <= REACH_M) add(L.latLngBounds(q, q));
    return bounds || L.latLngBounds(middle, middle);
  }

  function frame() {
    const live = window.cockpitLive;
    const p = C() && C().picture;
    if (!live || !live.map || !p) return;
    const b = incidentBounds(p);
    if (!b || !b.isValid()) { centre = L.latLng(C().cfg.center); return; }
    centre = b.getCenter();
    const key = b.toBBoxString().split(",").map((x) => Number(x).toFixed(4)).join(",");
    if (key === framed) return; // unchanged: the map stays still
    framed = key;
    live.map.invalidateSize();
    const pad = Math.round(live.map.getSize().x * 0.06);
    live.map.fitBounds(b, { padding: [pad, pad], maxZoom: 17, animate: false });
  }

  // --- the alert ticker ----------------------------------------------------------------

  let alertPage = 0;

  function alertText(a) {
    const text = window.cockpitAlertText ? window.cockpitAlertText(a) : a.text;
    const e = a.entity && C().picture.entities.get(a.entity);
    const who = e ? C().shortLabel(e.callsign || e.id) : a.entity;
    return (who ? who + ": " : "") + text;
  }

  function drawAlerts(now) {
    const box = document.getElementById("wall-alerts");
    if (!box) return;
    const active = Array.from(C().picture.alerts.values()).filter((a) => a.active);
    const rank = { critical: 0, warning: 1, info: 2 };
    active.sort((x, y) => (rank[x.severity] ?? 3) - (rank[y.severity] ?? 3) || y.raised_at - x.raised_at);
    if (!active.length) {
      setHtml(box, '<p class="wall-none">' + esc(t("alerts.none")) + "</p>");
      return;
    }
    const pages = Math.ceil(active.length / ALERT_SLOTS);
    alertPage %= pages;
    const shown = active.slice(alertPage * ALERT_SLOTS, (alertPage + 1) * ALERT_SLOTS);
    // Severity in colour and in words; how old it is, in words too.
    let html = shown.map((a) => (
      '<div class="wall-alert sev-' + esc(a.severity) + '" data-alert="' + esc(a.id) + '">' +
      '<span class="sev">' + esc(t("severity." + a.severity)) + "</span>" +
      '<span class="text">' + esc(alertText(a)) + "</span>" +
      '<span class="age">' + esc(t("age.ago", { age: C().age(now - a.raised_at) })) + "</span></div>"
    )).join("");
    if (pages > 1) html += '<p class="wall-page-no">' + esc(t("wall.alerts.page", { a: alertPage + 1, n: pages })) + "</p>";
    setHtml(box, html);
  }

  // --- weather: a wind rose and the latest readings ----------------------------------------

  // Written only when it changed: most seconds change an age or nothing.
  function setHtml(el, html) {
    if (el.__html !== html) { el.innerHTML = html; el.__html = html; }
  }

  function compass(deg) {
    const names = t("wall.compass").split(",");
    return names[Math.round((((deg % 360) + 360) % 360) / 22.5) % 16];
  }

  function stations(p) {
    const out = [];
    for (const e of p.entities.values()) {
      const r = e.readings || {};
      if (!WIND.some((k) => r[k] && typeof r[k].value === "number")) continue;
      const d = centre && e.lat != null ? centre.distanceTo([e.lat, e.lon]) : Infinity;
      out.push({ e: e, r: r, d: d });
    }
    out.sort((x, y) => x.d - y.d || String(x.e.id).localeCompare(String(y.e.id)));
    return out;
  }

  // "Wetter Hafen" reads as "Hafen" in a card titled "Wetter" / "Weather".
  function stationName(e) {
    return String(e.callsign || e.id).replace(/^(Wetter|Weather|Wetterstation)\s+/i, "");
  }

  function windAge(r) {
    const times = WIND.filter((k) => r[k]).map((k) => r[k].observed_at);
    return times.length ? Math.min(...times) : null;
  }

  // Meteorological: the arrow comes in from where the wind blows from and points downwind.
  function arrow(dirDeg, length, cls) {
    const a = (dirDeg * Math.PI) / 180;
    const x0 = 100 + Math.sin(a) * length, y0 = 100 - Math.cos(a) * length;
    const x1 = 100 - Math.sin(a) * length * 0.55, y1 = 100 + Math.cos(a) * length * 0.55;
    return '<line class="' + cls + '" x1="' + x0.toFixed(1) + '" y1="' + y0.toFixed(1) + '" x2="' + x1.toFixed(1) +
      '" y2="' + y1.toFixed(1) + '" marker-end="url(#wall-head-' + cls + ')"/>';
  }

  function rose(list, now) {
    const ticks = [];
    for (let i = 0; i < 16; i++) {
      const a = (i * 22.5 * Math.PI) / 180, long = i % 4 === 0;
      const r0 = long ? 78 : 84;
      ticks.push('<line class="tick" x1="' + (100 + Math.sin(a) * r0).toFixed(1) + '" y1="' + (100 - Math.cos(a) * r0).toFixed(1) +
        '" x2="' + (100 + Math.sin(a) * 90).toFixed(1) + '" y2="' + (100 - Math.cos(a) * 90).toFixed(1) + '"/>');
    }
    const names = t("wall.compass").split(",");
    const cardinal = [0, 4, 8, 12].map((i) => {
      const a = (i * 22.5 * Math.PI) / 180;
      return '<text class="card-pt" x="' + (100 + Math.sin(a) * 66).toFixed(1) + '" y="' + (100 - Math.cos(a) * 66 + 6).toFixed(1) + '">' + esc(names[i]) + "</text>";
    });
    const arrows = [];
    // The others thin and grey, the nearest station bold and on top.
    for (const s of list.slice(1)) if (s.r.wind_dir) arrows.push(arrow(s.r.wind_dir.value, 88, "other"));
    const near = list[0];
    let centreText = "";
    let label = t("wall.weather.none");
    if (near && near.r.wind_dir) {
      const stale = now - windAge(near.r) > C().staleAfter("sensor");
      arrows.push(arrow(near.r.wind_dir.value, 88, stale ? "stale" : "near"));
    }
    if (near) {
      const speed = near.r.wind_speed ? num(near.r.wind_speed.value, 1) : "–";
      centreText = '<text class="speed" x="100" y="108">' + esc(speed) + '</text><text class="unit" x="100" y="126">m/s</text>';
      label = t("wall.rose", {
        station: near.e.callsign || near.e.id, dir: near.r.wind_dir ? compass(near.r.wind_dir.value) : "–",
        speed: speed, age: t("age.ago", { age: C().age(now - windAge(near.r)) }),
      });
    }
    const head = (cls) => '<marker id="wall-head-' + cls + '" class="head-' + cls + '" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="4" markerHeight="4" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>';
    return '<svg class="wall-rose" viewBox="0 0 200 200" role="img" aria-label="' + esc(label) + '">' +
      "<defs>" + head("near") + head("other") + head("stale") + "</defs>" +
      '<circle class="ring" cx="100" cy="100" r="90"/>' + ticks.join("") + cardinal.join("") + arrows.join("") +
      '<circle class="hub" cx="100" cy="100" r="30"/>' + centreText + "</svg>";
  }

  function drawWeather(now) {
    const box = document.getElementById("wall-weather");
    if (!box) return;
    const list = stations(C().picture);
    const staleAfter = C().staleAfter("sensor");
    const rows = list.slice(0, 5).map((s, i) => {
      const r = s.r;
      const at = windAge(r);
      const stale = now - at > staleAfter;
      const wind = r.wind_dir || r.wind_speed
        ? (r.wind_dir ? esc(compass(r.wind_dir.value)) + " " : "") + (r.wind_speed ? esc(num(r.wind_speed.value, 1)) : "")
        : "–";
      const temp = r.temperature && typeof r.temperature.value === "number" ? esc(num(r.temperature.value, 1)) + " °C" : "–";
      return '<tr class="' + (i === 0 ? "near" : "") + (stale ? " stale" : "") + '"><th scope="row">' + esc(stationName(s.e)) + "</th><td>" +
        wind + "</td><td>" + temp + '</td><td class="age">' + esc(C().age(now - at)) + "</td></tr>";
    });
    const near = list[0];
    const caption = near && near.r.wind_dir
      ? '<p class="wall-wind">' + esc(t("wall.wind", { dir: compass(near.r.wind_dir.value), deg: String(Math.round(near.r.wind_dir.value)) })) + "</p>"
      : "";
    setHtml(box, '<div class="wall-rose-box">' + rose(list, now) + caption + "</div>" +
      '<div class="wall-readings">' + (rows.length
        ? '<table><thead><tr><th scope="col">' + esc(t("wall.col.station")) + '</th><th scope="col">' + esc(t("wall.col.wind")) + " (m/s)" +
          '</th><th scope="col">' + esc(t("wall.col.temperature")) + '</th><th scope="col">' + esc(t("wall.col.age")) + "</th></tr></thead><tbody>" +
          rows.join("") + "</tbody></table>"
        : '<p class="wall-none">' + esc(t("wall.weather.none")) + "</p>") + "</div>");
  }

  // --- video tiles: all of them, a page at a time ----------------------------------------

  let videoPage = 0;

  function drawVideos() {
    const box = document.getElementById("video-tiles");
    const note = document.getElementById("wall-video-note");
    if (!box || !note) return;
    const tiles = Array.from(box.children);
    const pages = Math.max(1, Math.ceil(tiles.length / VIDEO_SLOTS));
    videoPage %= pages;
    tiles.forEach((el, i) => { el.hidden = Math.floor(i / VIDEO_SLOTS) !== videoPage; });
    const a = videoPage * VIDEO_SLOTS + 1, b = Math.min(tiles.length, a + VIDEO_SLOTS - 1);
    note.textContent = !tiles.length ? t("wall.videos.none") : pages > 1 ? t("wall.videos.page", { a: a, b: b, n: tiles.length }) : "";
  }

  // --- the clock's companion, and the veil when the stream is gone ------------------------------

  function clockTime(s) {
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
    return String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0") + ":" + String(sec).padStart(2, "0");
  }

  function drawDuration(now) {
    const el = document.getElementById("wall-duration");
    if (!el) return;
    let first = Infinity;
    for (const j of C().picture.journal.values()) if (typeof j.t === "number") first = Math.min(first, j.t);
    el.textContent = isFinite(first) ? t("wall.duration", { d: clockTime(Math.max(0, now - first)) }) : "";
  }

  function drawLost() {
    const veil = document.getElementById("wall-lost");
    if (!veil) return;
    const c = C();
    // Either the wall lost its server, or the server lost the bus (Redis) that feeds it:
    // both leave the screen showing an old picture, and both must show from the seats.
    const gone = !!(c && c.everConnected && !c.connected);
    const unfed = !!(c && c.connected && c.busDown);
    const lost = gone || unfed;
    veil.hidden = !lost;
    document.documentElement.classList.toggle("wall-offline", lost);
    if (!lost) return;
    const since = gone ? c.lastDataAt : c.busSince != null ? c.busSince : c.lastDataAt;
    const head = gone ? t("wall.lost", { time: c.time(since) }) : t("wall.bus", { time: c.time(since) });
    const foot = gone ? "wall.lost.retry" : "wall.bus.wait";
    setHtml(veil, '<p class="big">' + esc(head) + "</p>" +
      '<p class="small">' + esc(t(foot, { age: t("age.ago", { age: c.age(c.now() - since) }) })) + "</p>");
  }

  function tick() {
    const c = C();
    if (!c || !c.cfg) return;
    document.documentElement.lang = c.cfg.lang; // the wall's language is its link's (?lang=)
    drawLost();
    if (!c.picture) return;
    const now = c.now();
    drawAlerts(now);
    drawWeather(now);
    drawVideos();
    drawDuration(now);
  }

  window.cockpitWall = { frame: frame, tick: tick, bounds: () => incidentBounds(C().picture) };
  setInterval(tick, 1000);
  setInterval(frame, FRAME_MS);
  setInterval(() => { alertPage += 1; videoPage += 1; }, PAGE_MS);
  // The first picture frames the map at once, not after the first interval.
  (function first() {
    if (window.cockpit && window.cockpit.picture && window.cockpitLive && window.cockpitLive.map) { frame(); tick(); return; }
    setTimeout(first, 100);
  })();
})();
