/* The live picture in the browser: one server-sent-events connection per page.
 *
 * /api/v1/stream sends a snapshot, then delta batches (and a heartbeat each second);
 * every message carries the server's clock. This script keeps the picture, applies the
 * deltas, and hands the result to Dash with dash_clientside.set_props: map layers
 * directly, panels through stores (drawn by panels.js). No server callback per event, no
 * polling. When the connection drops the page says so at once, greys the map, and
 * reconnects with backoff; a new snapshot replaces the old picture (resync, no reload).
 */
(function () {
  "use strict";

  const LAYER_OF_KIND = { unit: "units", drone: "drones", robot: "robots", sensor: "sensors", person: "persons" };
  // A responder (A.D.Le.R. Helfer) is a person entity with the same id: its own layer and symbol.
  const layerOf = (e) => (e.kind === "person" && C.picture && C.picture.responders.has(e.id) ? "responders" : LAYER_OF_KIND[e.kind]);
  // assets/livemap.js (loaded first: Dash loads assets in name order) owns the map's layers.
  const POINT_LAYERS = window.cockpitLive.POINT_LAYERS;
  const DOTS_ABOVE = window.cockpitLive.DOTS_ABOVE;
  const BIG_LAYER_MS = 1000; // a large layer is redrawn at most this often (once a second)
  // Symbols move at most four times a second, and once a second when there are many.
  // Every frame that moves one makes the compositor redo all of them: at 200 symbols a
  // page redrawn on each frame took 63 % of a core, at 4 Hz 21 % (bench/push_latency.py,
  // headless without a GPU). Units report about once a second.
  const POINT_MS = 250;
  const MANY_SYMBOLS = 100;
  const MANY_SYMBOLS_MS = 1000;
  // Layers and panels that need no more than a few updates a second (ms between redraws).
  const SLOW_LAYERS = { tracks: 1000, footprints: 250, detections: 250, selected: 250, calls: 250, adler: 250 };
  const DETECTION_STALE_S = 60; // a detection not seen again for a minute looks stale
  const TRACK_POINTS = 200;
  const HISTORY_POINTS = 240; // reading values kept per series for the sparklines
  const SILENCE_MS = 2500; // heartbeat is 1 s: this much silence means the link is gone
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 8000;

  const C = {
    cfg: null,
    picture: null,
    seq: 0,
    skew: 0, // server clock minus browser clock, seconds
    connected: false,
    everConnected: false,
    lastDataAt: null, // server time of the last message (the "Stand" of the picture)
    busDown: false, // the server is reachable but its own feed (the bus, Redis) is not
    busSince: null, // server time the server lost its feed
    selected: null, // {id, type}
    history: {}, // entity id -> reading name -> [[t, value], ...]
    stats: { snapshots: 0, deltaBatches: 0, deltas: 0, reconnects: 0, renders: 0 },
    listeners: [], // function(message) after each applied delta batch (benchmarks)
  };
  window.cockpit = C;

  let source = null;
  let backoff = BACKOFF_MIN_MS;
  let lastMessageMs = 0;
  let retryTimer = null;
  const dirty = new Set();
  const lastRender = {};
  let frameQueued = false;
  let timer = null; // the one timer that waits for the next postponed layer
  let timerAt = 0;

  const clientNow = () => (performance.timeOrigin + performance.now()) / 1000;
  C.now = () => clientNow() + C.skew;

  // --- text ------------------------------------------------------------------------

  C.t = function (key, params) {
    const strings = (C.cfg && C.cfg.strings) || {};
    let text = strings[key] || key;
    for (const [k, v] of Object.entries(params || {})) text = text.replace("{" + k + "}", v);
    return text;
  };

  // A write to the cockpit's REST routes as the logged-in person: null when it was
  // taken, else "field: reason" from the error body (what the server said was wrong).
  C.send = async function (method, url, body) {
    const answer = await C.request(method, url, body);
    return answer.ok ? null : answer.reason;
  };

  // The same, with the whole answer: {ok, status, body, reason, error} (the first error's
  // fields too: a 409 on a detection names its current `state`). A network failure is an
  // answer with status 0, not an exception.
  C.request = async function (method, url, body) {
    let r;
    try {
      r = await fetch(url, {
        method: method, credentials: "same-origin", cache: "no-store",
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      return { ok: false, status: 0, body: null, reason: String(e.message || e), error: {} };
    }
    let parsed = null;
    try { parsed = await r.json(); } catch (e) { /* no JSON body */ }
    if (r.ok) return { ok: true, status: r.status, body: parsed, reason: null, error: {} };
    const first = (parsed && parsed.errors || [])[0];
    const reason = first ? first.field + ": " + first.reason : (parsed && parsed.error) || String(r.status);
    return { ok: false, status: r.status, body: parsed, reason: reason, error: first || {} };
  };

  C.age = function (seconds) {
    if (seconds == null || !isFinite(seconds)) return "";
    const s = Math.max(0, seconds);
    if (s < 1) return C.t("age.now");
    if (s < 90) return C.t("age.s", { n: String(Math.floor(s)) });
    if (s < 5400) return C.t("age.min", { n: String(Math.round(s / 60)) });
    return C.t("age.h", { n: String(Math.round(s / 360) / 10).replace(".", C.cfg.lang === "de" ? "," : ".") });
  };

  C.time = function (t) {
    if (t == null) return "–";
    return new Date(t * 1000).toLocaleTimeString(C.cfg.lang === "de" ? "de-DE" : "en-GB", { hour12: false });
  };

  C.staleAfter = function (kind) {
    return ((C.picture && C.picture.staleAfter) || C.cfg.stale_after || {})[kind] || 60;
  };

  function setProps(id, props) {
    window.dash_clientside.set_props(id, props);
  }

  // --- the picture ---------------------------------------------------------------------

  function emptyPicture() {
    return {
      entities: new Map(), tracks: new Map(), alerts: new Map(), journal: new Map(),
      detections: new Map(), hazards: new Map(), warnings: new Map(), videos: new Map(), staleAfter: {},
      responders: new Map(),
    };
  }

  function remember(entity) {
    const series = C.history[entity.id] || (C.history[entity.id] = {});
    for (const [name, r] of Object.entries(entity.readings || {})) {
      if (typeof r.value !== "number") continue;
      const points = series[name] || (series[name] = []);
      const last = points[points.length - 1];
      if (!last || r.observed_at > last[0]) {
        points.push([r.observed_at, r.value]);
        if (points.length > HISTORY_POINTS) points.splice(0, points.length - HISTORY_POINTS);
      }
    }
  }

  function onSnapshot(msg) {
    const p = emptyPicture();
    p.staleAfter = msg.stale_after || {};
    for (const e of msg.entities) { p.entities.set(e.id, e); remember(e); }
    for (const [id, points] of Object.entries(msg.tracks || {})) p.tracks.set(id, points.slice(-TRACK_POINTS).flat());
    for (const a of msg.alerts) p.alerts.set(a.id, a);
    for (const j of msg.journal) p.journal.set(j.id, j);
    for (const d of msg.detections) p.detections.set(d.id, d);
    for (const h of msg.hazards) p.hazards.set(h.id, h);
    for (const w of msg.warnings) p.warnings.set(w.id, w);
    for (const v of msg.videos || []) p.videos.set(v.stream, v);
    for (const r of msg.responders || []) p.responders.set(r.id, r);
    C.picture = p;
    C.seq = msg.seq;
    C.stats.snapshots += 1;
    for (const name of [...POINT_LAYERS, "tracks", "footprints", "detections", "hazards", "warnings", "alerts", "journal", "selected", "videos", "calls", "adler"]) urgent(name); // a new picture shows at once
    queueRender();
  }

  function applyEntity(d) {
    const p = C.picture;
    const old = p.entities.get(d.id);
    if (d.op === "remove") {
      p.entities.delete(d.id);
      p.tracks.delete(d.id);
      if (old) dirty.add(layerOf(old));
      dirty.add("tracks");
      return;
    }
    let e = d.d;
    const wasLat = old && old.lat;
    const wasLon = old && old.lon;
    const wasKind = old && old.kind;
    const hadFootprint = !!(old && old.footprint);
    if (d.op === "patch") {
      // Only what changed; readings and status by name. Changed in place: a copy of
      // every entity every second fills the old heap and wakes the full collector.
      if (!old) { lost("patch for an unknown entity", true); return; }
      const readings = old.readings;
      const status = old.status;
      Object.assign(old, e);
      if (e.readings) old.readings = Object.assign({}, readings, e.readings);
      if (e.status) old.status = Object.assign({}, status, e.status);
      e = old;
    } else {
      p.entities.set(d.id, e);
    }
    remember(e);
    if (e.lat != null && (!old || wasLat !== e.lat || wasLon !== e.lon) && e.observed_at != null) {
      // Flat [t, lat, lon, t, lat, lon, …]: no array per point.
      let track = p.tracks.get(d.id);
      if (!track) p.tracks.set(d.id, (track = []));
      if (!track.length || e.observed_at >= track[track.length - 3]) {
        track.push(e.observed_at, e.lat, e.lon);
        if (track.length > 6 * TRACK_POINTS) {
          track.copyWithin(0, track.length - 3 * TRACK_POINTS);
          track.length = 3 * TRACK_POINTS;
        }
        dirty.add("tracks");
      }
    }
    dirty.add(layerOf(e));
    if (e.footprint || hadFootprint) dirty.add("footprints");
    if (old && wasKind !== e.kind) dirty.add(LAYER_OF_KIND[wasKind]);
    if (p.responders.has(d.id)) { dirty.add("calls"); dirty.add("adler"); } // a Helfer moved
    if (C.selected && C.selected.id === d.id) dirty.add("selected");
  }

  function onDelta(msg) {
    const p = C.picture;
    if (!p) return;
    for (const d of msg.deltas) {
      if (d.l === "entities") { applyEntity(d); continue; }
      const table = p[d.l];
      if (!table) continue;
      if (d.op === "remove") table.delete(d.id);
      else table.set(d.id, d.d);
      dirty.add(d.l);
      if (d.l === "responders") { dirty.add("persons"); urgent("calls"); urgent("adler"); }
      // A detection's step or its calls: the pop-up, the list and the lines at once.
      if (d.l === "detections") { urgent("responders"); urgent("calls"); urgent("adler"); }
      if (C.selected && C.selected.id === d.id) dirty.add("selected");
    }
    C.seq = Math.max(C.seq, msg.seq);
    C.stats.deltaBatches += 1;
    C.stats.deltas += msg.deltas.length;
    queueRender();
    for (const listener of C.listeners) listener(msg);
  }

  // --- features --------------------------------------------------------------------

  function symbolFor(e) {
    const symbols = C.cfg.symbols || {};
    const vehicle = (e.meta && (e.meta.vehicle || e.meta.type)) || "";
    return symbols[vehicle] || symbols[e.kind] || "unit.svg";
  }

  // On the map "Florian Dortmund 1-HLF20-1" reads as "1-HLF20-1": the radio name's
  // service and town are the same for every vehicle; the details show it in full.
  C.shortLabel = (callsign) => callsign.replace(/^Florian\s+\S+\s+/, "");

  function entityProps(e, now, dots) {
    const age = now - e.last_reported;
    const stale = age > C.staleAfter(e.kind);
    const selected = !!(C.selected && C.selected.id === e.id);
    const responder = C.picture.responders.get(e.id);
    if (responder) {
      const call = window.cockpitAdler ? window.cockpitAdler.callOf(e.id) : null;
      if (dots) return { kind: "responder", stale: stale, selected: selected };
      return {
        id: e.id, kind: "responder", label: responder.callsign || e.callsign || e.id, age: C.age(age),
        stale: stale, icon: "responder.svg", selected: selected,
        call: call ? call.state : null, callText: call ? C.t("call." + call.state) : null,
      };
    }
    if (dots) return { kind: e.kind, stale: stale, selected: selected }; // no label on a dot
    return {
      id: e.id, kind: e.kind, label: C.shortLabel(e.callsign || e.id), age: C.age(age),
      stale: stale, icon: symbolFor(e), selected: selected,
    };
  }

  function pointFeatures(name, now) {
    const members = [];
    for (const e of C.picture.entities.values()) {
      if (layerOf(e) === name && e.lat != null && e.lon != null) members.push(e);
    }
    const dots = members.length > DOTS_ABOVE;
    return members.map((e) => ({ id: e.id, lat: e.lat, lon: e.lon, props: entityProps(e, now, dots) }));
  }

  function trackLines(now) {
    const out = [];
    // Hundreds of tracks are a tangle nobody reads, and redrawing them all costs a busy
    // page more than its dots: then only the selected entity shows where it has been.
    const many = C.picture.tracks.size > DOTS_ABOVE;
    for (const [id, flat] of C.picture.tracks) {
      if (many && !(C.selected && C.selected.id === id)) continue;
      const e = C.picture.entities.get(id);
      if (!e || flat.length < 6) continue;
      const latlngs = [];
      for (let i = 0; i < flat.length; i += 3) latlngs.push([flat[i + 1], flat[i + 2]]);
      out.push({ id: id, kind: e.kind, stale: now - e.last_reported > C.staleAfter(e.kind), latlngs: latlngs });
    }
    return out;
  }

  function trackStyle(it) {
    const colour = (window.cockpitMap.COLOURS || {})[it.kind] || "#ccc";
    return { color: it.stale ? "#8e8e93" : colour, weight: 3, opacity: 0.55, dashArray: it.stale ? "4 6" : null };
  }

  function footprintAreas(now) {
    const out = [];
    for (const e of C.picture.entities.values()) {
      if (!e.footprint || e.footprint.length < 3) continue;
      out.push({ id: e.id, stale: now - e.last_reported > C.staleAfter(e.kind), latlngs: e.footprint });
    }
    return out;
  }

  function footprintStyle(it) {
    return { color: "#0a84ff", weight: 2, dashArray: it.stale ? "4 6" : null, fillColor: "#0a84ff", fillOpacity: it.stale ? 0.04 : 0.12 };
  }

  function geometryOf(g) {
    if (!g) return null;
    if (g.type === "Feature") return g.geometry;
    return g;
  }

  function detectionsLayer(now) {
    const features = [];
    for (const d of C.picture.detections.values()) {
      if (d.lat == null || d.lon == null || d.state === "closed" || d.state === "dismissed") continue;
      if (d.source === "adler") continue; // assets/adler.js: a marker with its state, pulsing while new
      features.push({
        type: "Feature",
        geometry: { type: "Point", coordinates: [d.lon, d.lat] },
        properties: {
          id: d.id, kind: "detection", label: d.category, age: C.age(now - d.updated_at),
          stale: now - d.updated_at > DETECTION_STALE_S,
        },
      });
    }
    return { type: "FeatureCollection", features: features };
  }

  // Drawn hazards and the zones that follow them: a sector is as old as its wind.
  function hazardsLayer(now) {
    const features = [];
    const windStale = C.picture.staleAfter.sensor || 900;
    for (const h of C.picture.hazards.values()) {
      const g = geometryOf(h.geometry);
      if (!g) continue;
      const props = { id: h.id, kind: "hazard", zone: h.kind, label: h.label, severity: h.severity };
      if (h.wind) {
        const age = now - h.wind.observed_at;
        props.stale = age > windStale;
        props.wind = C.t("hazard.wind", {
          dir: String(Math.round(h.wind.dir_deg)),
          speed: h.wind.speed_mps.toLocaleString(C.cfg.lang === "de" ? "de-DE" : "en-GB", { maximumFractionDigits: 1 }),
          station: h.wind.callsign || h.wind.station, age: C.age(age),
        });
      }
      features.push({ type: "Feature", geometry: g, properties: props });
    }
    return { type: "FeatureCollection", features: features };
  }

  // CAP sends one info block per language: the page's, else German, else the first.
  function warningInfo(w) {
    const infos = w.infos || [];
    const lang = (C.cfg && C.cfg.lang) || "de";
    const match = (want) => infos.find((i) => String(i.language || "").toLowerCase().split("-")[0] === want);
    return match(lang) || match("de") || infos[0] || w;
  }

  // The warnings in force at `now`, each in the page's language; areas given only by
  // geocodes (a DWD WARNCELLID, a MoWaS ARS) are listed by name, not dropped.
  C.warnings = function (now) {
    const out = [];
    for (const w of C.picture.warnings.values()) {
      if (w.status && w.status !== "Actual" && w.status !== "Exercise") continue;
      // `ends`: expires, else the feed's maximum age after it was sent (older records: expires).
      const ends = w.ends || w.expires;
      if (ends && Date.parse(ends) / 1000 <= now) continue;
      const info = warningInfo(w);
      const areas = (info.areas && info.areas.length ? info.areas : w.areas) || [];
      let label = info.headline || info.event || w.headline || w.event || w.identifier || w.id;
      if (w.status === "Exercise") label = C.t("warning.exercise") + ": " + label;
      out.push({
        id: w.id, label: label, event: info.event || w.event, severity: info.severity || w.severity,
        expires: w.expires, ends: ends, areas: areas,
        places: areas.filter((a) => !geometryOf(a.geometry) && a.name).map((a) => a.name),
      });
    }
    return out;
  };

  let warningTimer = null;

  function warningsLayer(now) {
    const features = [];
    let next = Infinity;
    for (const w of C.warnings(now)) {
      if (w.ends) next = Math.min(next, Date.parse(w.ends) / 1000);
      let text = w.label;
      if (w.expires) text += " (" + C.t("warning.until", { time: C.time(Date.parse(w.expires) / 1000) }) + ")";
      const names = w.places.length > 12 ? w.places.slice(0, 12).concat("…") : w.places;
      if (names.length) text += "\n" + C.t("warning.places", { names: names.join(", ") });
      for (const area of w.areas) {
        const g = geometryOf(area.geometry);
        if (g) features.push({ type: "Feature", geometry: g, properties: { id: w.id, kind: "warning", label: text, severity: w.severity } });
      }
    }
    // A warning leaves the map when it ends by the page's clock, with no message to say so.
    if (warningTimer) clearTimeout(warningTimer);
    warningTimer = isFinite(next)
      ? setTimeout(() => { warningTimer = null; urgent("warnings"); queueRender(); }, Math.min(Math.max(0, (next - now) * 1000) + 50, 2 ** 31 - 1))
      : null;
    return { type: "FeatureCollection", features: features };
  }

  // --- panels ----------------------------------------------------------------------

  function alertsData() {
    const out = [];
    for (const a of C.picture.alerts.values()) {
      if (!a.active && a.acknowledged_by) continue; // done: it lives on in the journal
      const e = a.entity && C.picture.entities.get(a.entity);
      out.push({
        id: a.id, severity: a.severity, text: a.text, entity: a.entity, active: a.active,
        rule: a.rule, params: a.params, // the panel words the alert in the page's language
        who: e ? C.shortLabel(e.callsign || e.id) : a.entity,
        raised_at: a.raised_at, acknowledged_by: a.acknowledged_by,
      });
    }
    out.sort((x, y) => (
      (x.acknowledged_by ? 1 : 0) - (y.acknowledged_by ? 1 : 0) ||
      (x.severity === "critical" ? 0 : 1) - (y.severity === "critical" ? 0 : 1) ||
      y.raised_at - x.raised_at));
    return out;
  }

  function journalData() {
    const out = Array.from(C.picture.journal.values());
    out.sort((x, y) => y.seq - x.seq || (y.id > x.id ? 1 : -1));
    return out.slice(0, 300);
  }

  function selectedData() {
    const sel = C.selected;
    if (!sel || !C.picture) return null;
    if (sel.type === "detection") {
      const d = C.picture.detections.get(sel.id);
      return d ? { type: "detection", id: d.id, item: d } : null;
    }
    const e = C.picture.entities.get(sel.id);
    if (!e) return null;
    return { type: "entity", id: e.id, item: e, staleAfter: C.staleAfter(e.kind), history: C.history[e.id] || {}, symbol: symbolFor(e) };
  }

  C.select = function (id, type) {
    const before = C.selected && C.selected.id;
    C.selected = { id: id, type: type || "entity" };
    const e = C.picture && C.picture.entities.get(id);
    if (e) urgent(layerOf(e));
    if (window.cockpitVideo) window.cockpitVideo.open(id); // a drone's video opens with it
    if (before && C.picture && C.picture.entities.get(before)) urgent(layerOf(C.picture.entities.get(before)));
    urgent("selected");
    urgent("tracks"); // with many entities only the selected one's track is drawn
    queueRender();
    if ((type || "entity") === "entity" && id !== before) loadHistory(id);
  };

  // The recorded readings before this page opened, merged under what arrived since.
  async function loadHistory(id) {
    try {
      const r = await fetch("/api/v1/entities/" + encodeURIComponent(id) + "/readings", { credentials: "same-origin", cache: "no-store" });
      if (!r.ok) return;
      const body = await r.json();
      const series = C.history[id] || (C.history[id] = {});
      for (const [name, points] of Object.entries(body.series || {})) {
        const seen = series[name] || [];
        const first = seen.length ? seen[0][0] : Infinity;
        const merged = points.filter((p) => p[0] < first).concat(seen);
        series[name] = merged.slice(-HISTORY_POINTS);
      }
      if (C.selected && C.selected.id === id) { urgent("selected"); queueRender(); }
    } catch (err) { /* offline: the live values will do */ }
  }

  // Tapping an alert (not its button) shows its unit: details, highlight, and the map flies there.
  C.showEntity = function (id) {
    const e = C.picture && C.picture.entities.get(id);
    if (!e) return;
    C.select(id, "entity");
    if (e.lat != null) {
      setProps("map", { viewport: { center: [e.lat, e.lon], zoom: 17, transition: "flyTo" } });
    }
  };
  document.addEventListener("click", (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    const item = target && target.closest("[data-entity]");
    if (item && !target.closest("button")) C.showEntity(item.getAttribute("data-entity"));
  });

  // --- rendering ---------------------------------------------------------------------

  // How long a layer waits after its last redraw before the next.
  function intervalOf(name) {
    if (POINT_LAYERS.includes(name)) {
      const live = window.cockpitLive;
      if (live && live.dots[name]) return BIG_LAYER_MS;
      return live && live.markers.size > MANY_SYMBOLS ? MANY_SYMBOLS_MS : POINT_MS;
    }
    return SLOW_LAYERS[name] || 0;
  }

  // A frame is asked for only when a changed layer is due: a page that only gathers
  // deltas between redraws makes no frames (each costs a layout and a compositor commit).
  function queueRender() {
    if (frameQueued) return;
    const t = performance.now();
    let wait = Infinity;
    for (const name of dirty) wait = Math.min(wait, (lastRender[name] || -Infinity) + intervalOf(name) - t);
    if (wait === Infinity) return;
    if (wait <= 0) {
      if (timer) { clearTimeout(timer); timer = null; }
      frameQueued = true;
      requestAnimationFrame(render);
      return;
    }
    if (timer && timerAt <= t + wait) return;
    if (timer) clearTimeout(timer);
    timerAt = t + wait;
    timer = setTimeout(() => { timer = null; queueRender(); }, wait);
  }

  // Redraw now, not after the layer's interval: the user's own action must show at once.
  function urgent(name) {
    delete lastRender[name];
    dirty.add(name);
  }

  function render() {
    frameQueued = false;
    if (!C.picture || !window.dash_clientside || !window.dash_clientside.set_props) return;
    const now = C.now();
    const t = performance.now();
    const live = window.cockpitLive;
    if (!live || !live.map) { setTimeout(queueRender, 50); return; } // the map is not up yet
    live.ensureControl(C.t);
    for (const name of Array.from(dirty)) {
      // Decided before building anything: building 2,000 features every frame only to
      // wait was most of a busy page's work.
      if (t - (lastRender[name] || -Infinity) < intervalOf(name)) continue;
      if (POINT_LAYERS.includes(name)) {
        live.points(name, pointFeatures(name, now));
      } else if (name === "tracks") {
        live.lines("tracks", trackLines(now), trackStyle);
      } else if (name === "footprints") {
        live.lines("footprints", footprintAreas(now), footprintStyle);
      } else if (name === "detections") {
        live.geojson("detections", detectionsLayer(now));
      } else if (name === "calls") {
        if (window.cockpitAdler) live.lines("calls", window.cockpitAdler.callLines(now), window.cockpitAdler.callStyle);
      } else if (name === "adler") {
        if (window.cockpitAdler) window.cockpitAdler.render(now);
      } else if (name === "hazards") {
        live.geojson("hazards", hazardsLayer(now));
      } else if (name === "warnings") {
        live.geojson("warnings", warningsLayer(now));
        // Listed too: a warning given only by area codes (MoWaS) has nothing to draw.
        setProps("store-warnings", { data: C.warnings(now).map((w) => ({
          id: w.id, label: w.label, severity: w.severity, ends: w.ends, expires: w.expires,
          places: w.places, drawn: w.areas.length - w.places.length,
        })) });
      } else if (name === "alerts") {
        setProps("store-alerts", { data: alertsData() });
      } else if (name === "journal") {
        setProps("store-journal", { data: journalData() });
      } else if (name === "selected") {
        setProps("store-selected", { data: selectedData() });
      } else if (name === "videos" && window.cockpitVideo) {
        window.cockpitVideo.sync(Array.from(C.picture.videos.values()), (v) => {
          const e = v.entity && C.picture.entities.get(v.entity);
          return e ? C.shortLabel(e.callsign || e.id) : v.stream;
        });
      }
      lastRender[name] = t;
      dirty.delete(name);
    }
    C.stats.renders += 1;
    queueRender(); // what had to wait
  }

  // The ages under `root` ([data-since]; "vor 12 s" with data-ago), stale past data-stale-after.
  C.fillAges = function (root, now) {
    if (now === undefined) now = C.now();
    for (const el of root.querySelectorAll("[data-since]")) {
      const since = parseFloat(el.getAttribute("data-since"));
      const text = C.age(now - since);
      // "vor 12 s", but "jetzt", not "vor jetzt"
      el.textContent = el.hasAttribute("data-ago") && now - since >= 1 ? C.t("age.ago", { age: text }) : text;
      const limit = parseFloat(el.getAttribute("data-stale-after"));
      if (isFinite(limit)) el.classList.toggle("stale", now - since > limit);
    }
  };

  // Ages move on without any message: labels, panels and the clock, once a second.
  function tick() {
    if (!C.cfg) return;
    const now = C.now();
    const clock = document.getElementById("clock");
    if (clock) clock.textContent = C.time(C.connected ? now : C.lastDataAt);
    C.fillAges(document, now);
    if (C.picture) {
      for (const name of POINT_LAYERS) dirty.add(name);
      dirty.add("tracks");
      dirty.add("detections");
      dirty.add("adler"); // the detection markers' ages
      queueRender();
    }
  }

  // --- the connection ------------------------------------------------------------------

  function showConnection() {
    const state = document.getElementById("conn-state");
    const banner = document.getElementById("conn-banner");
    const map = document.querySelector(".map-wrap");
    // Connected to a server that itself gets no events: the page is as outdated as if
    // it were cut off, only the reason differs.
    const busDown = C.connected && C.busDown;
    const busText = () => C.t("conn.bus", { time: C.time(C.busSince) });
    if (state) {
      state.className = "conn " + (busDown ? "lost bus" : C.connected ? "live" : C.everConnected ? "lost" : "connecting");
      state.textContent = busDown ? busText() : C.connected ? (C.liveLabel ? C.t(C.liveLabel) : C.t("conn.live")) : C.everConnected ? C.t("conn.lost", { time: C.time(C.lastDataAt) }) : C.t("conn.connecting");
    }
    if (banner) {
      banner.hidden = C.connected && !busDown;
      banner.textContent = busDown ? busText() : C.everConnected ? C.t("conn.lost", { time: C.time(C.lastDataAt) }) : C.t("conn.never");
    }
    if (map) map.classList.toggle("disconnected", !C.connected || busDown);
    document.body.classList.toggle("offline", !C.connected || busDown);
  }

  function heard(msg) {
    lastMessageMs = performance.now();
    if (typeof msg.now === "number") {
      C.skew = msg.now - clientNow();
      C.lastDataAt = msg.now;
    }
    // Every message says whether the server's picture is fed (absent: no bus, a replay).
    const down = msg.bus === "down";
    const since = down && typeof msg.bus_since === "number" ? msg.bus_since : null;
    if (down !== C.busDown || since !== C.busSince) {
      C.busDown = down;
      C.busSince = since;
      if (C.connected) showConnection();
    }
  }

  function handler(kind, fn) {
    return (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (err) { console.error("stream: bad " + kind, err); return; }
      heard(msg);
      fn(msg);
    };
  }

  function connect() {
    retryTimer = null;
    const es = new EventSource("/api/v1/stream");
    source = es;
    es.addEventListener("snapshot", handler("snapshot", (msg) => {
      C.connected = true;
      C.everConnected = true;
      backoff = BACKOFF_MIN_MS;
      onSnapshot(msg);
      showConnection();
    }));
    es.addEventListener("delta", handler("delta", onDelta));
    es.addEventListener("hb", handler("hb", () => {}));
    es.addEventListener("resync", () => lost("resync", true));
    es.onerror = () => lost("error", false);
  }

  function lost(why, soon) {
    if (source) { source.close(); source = null; }
    const was = C.connected;
    C.connected = false;
    if (was || !C.everConnected) showConnection();
    if (retryTimer) return;
    const delay = soon ? 0 : Math.min(backoff, BACKOFF_MAX_MS) * (0.75 + Math.random() * 0.5);
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    C.stats.reconnects += 1;
    retryTimer = setTimeout(async () => {
      try {
        // A closed stream can mean an expired log-in: then the log-in page, not retries.
        const r = await fetch("/api/v1/session", { cache: "no-store", credentials: "same-origin" });
        if (r.status === 401) {
          location.href = "/login?next=" + encodeURIComponent(location.pathname);
          return;
        }
      } catch (err) { /* server unreachable: just try the stream again */ }
      connect();
    }, delay);
  }

  let lastWatch = 0;
  function watchdog() {
    const now = performance.now();
    const late = now - lastWatch > 1000; // this timer itself ran late: the page was busy
    lastWatch = now;
    // A busy page reads its messages late too; that is not a silent server.
    if (late) return;
    if (C.connected && now - lastMessageMs > SILENCE_MS) lost("silent", false);
  }

  // The layout arrives after this script: start once Dash has rendered the config.
  function start() {
    const el = document.getElementById("ui-config");
    if (!el || !el.dataset.config || !window.dash_clientside || !window.dash_clientside.set_props) {
      setTimeout(start, 30);
      return;
    }
    C.cfg = JSON.parse(el.dataset.config);
    showConnection();
    connect();
    tick();
    setInterval(tick, 1000);
    setInterval(watchdog, 250);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
