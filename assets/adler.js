/* A.D.Le.R. on the commander's page: emergencies detected in homes, and the Helfer
 * (responders) the cockpit can send to them. This file: what both parts share, the
 * panel's lists (every detection with its state and calls, every Helfer with theirs, in
 * colour and words), the detection markers (pulsing while new) and the dashed lines from
 * Helfer on the way; `adler_popup.js`: the pop-up of new detections and the tone.
 *
 * The picture is stream.js's; it calls `render` when detections, responders or their
 * positions change (and each second, for the ages). The pop-up and the lists are drawn
 * outside React, like the video tiles: each keeps its buttons and their pending state,
 * and a part is redrawn only when what it shows changed (a tap must not land on a button
 * that was replaced under the finger).
 */
(function () {
  "use strict";

  const OPEN_STATES = ["new", "confirmed", "dispatched", "on_scene"];
  const LINE_STATES = ["alerted", "accepted"]; // a dashed line to the detection: on the way
  const CLOSED_LISTED = 10; // dismissed and closed detections kept in the list
  const NEXT_STEPS = {
    new: ["confirmed", "dismissed"],
    confirmed: ["dispatched", "closed"],
    dismissed: ["confirmed"],
    dispatched: ["closed"],
    on_scene: ["closed"],
    closed: [],
  };
  const STEP_LABEL = { confirmed: "adler.confirm", dispatched: "adler.dispatch", dismissed: "adler.dismiss", closed: "adler.close_case" };

  const A = {
    known: null, // detection ids this page has seen (null until the first picture)
    aside: new Set(), // new detections the commander closed the pop-up on (still listed)
    shown: null, // the detection in the pop-up
    reveal: false, // pan its place into view at the next drawing (it was opened by a tap)
    busy: {}, // detection id -> the step being sent
    status: {}, // detection id -> {text, error}
    personal: {}, // detection id -> {loading} | {data} | {error}; only while the pop-up shows it
    beeps: 0, // tones played (the browser test counts them)
    markers: new Map(),
  };
  window.cockpitAdler = A;

  const C = () => window.cockpit;
  const t = (key, params) => C().t(key, params);
  const esc = (s) => window.cockpitMap.esc(s);

  function label(key, fallback) {
    const text = t(key);
    return text === key ? fallback : text;
  }

  A.category = (c) => label("adler.cat." + c, c);
  A.stateText = (s) => label("adler.state." + s, s);

  function detections() {
    return Array.from(C().picture.detections.values()).filter((d) => d.source === "adler");
  }

  // A responder's latest call over all detections: what its marker and its row say.
  A.callOf = function (rid) {
    let best = null;
    for (const d of C().picture.detections.values()) {
      const c = d.calls && d.calls[rid];
      if (c && (!best || c.at > best.at)) best = { state: c.state, at: c.at, by: c.by, detection: d };
    }
    return best;
  };

  function position(rid) {
    const e = C().picture.entities.get(rid);
    if (e && e.lat != null) return { lat: e.lat, lon: e.lon, at: e.last_reported };
    const r = C().picture.responders.get(rid);
    if (r && r.lat != null) return { lat: r.lat, lon: r.lon, at: r.observed_at };
    return null;
  }

  function callsignOf(rid) {
    const r = C().picture.responders.get(rid);
    return (r && r.callsign) || rid;
  }

  // --- text helpers ------------------------------------------------------------------

  const lang = () => (C().cfg.lang === "de" ? "de-DE" : "en-GB");

  function distance(m) {
    if (m == null) return "–";
    if (m < 1000) return Math.round(m) + " m";
    return (m / 1000).toLocaleString(lang(), { maximumFractionDigits: 1 }) + " km";
  }

  function eta(s) {
    if (s == null) return "–";
    return t("adler.eta_min", { n: String(Math.max(1, Math.round(s / 60))) });
  }

  // An age span, filled in by C.fillAges (here, after drawing, and by stream.js's tick
  // each second): the markup itself does not change as time passes, so a part is redrawn
  // only when what it says changed. `ago` reads "vor 12 s".
  function ageHtml(since, staleAfter, ago) {
    if (since == null) return "";
    return '<span class="age" data-since="' + since + '"' +
      (staleAfter ? ' data-stale-after="' + staleAfter + '"' : "") + (ago ? " data-ago" : "") + "></span>";
  }

  function setHtml(el, html) {
    if (el.cockpitHtml === html) return false;
    el.innerHTML = html;
    el.cockpitHtml = html;
    C().fillAges(el);
    return true;
  }

  function quals(list) {
    return (list || []).map((q) => label("qual." + q, q)).join(", ");
  }

  function callHtml(state) {
    return '<b class="call call-' + esc(state) + '">' + esc(label("call." + state, state)) + "</b>";
  }

  function badge(state) {
    return '<span class="state-badge state-' + esc(state) + '">' + esc(A.stateText(state)) + "</span>";
  }


  // --- the lists -----------------------------------------------------------------------

  function listed() {
    const order = { new: 0, confirmed: 1, dispatched: 2, on_scene: 3, dismissed: 4, closed: 5 };
    const all = detections().sort((x, y) => (order[x.state] - order[y.state]) || (y.first_seen - x.first_seen));
    const open = all.filter((d) => OPEN_STATES.includes(d.state));
    return open.concat(all.filter((d) => !OPEN_STATES.includes(d.state)).slice(0, CLOSED_LISTED));
  }

  function drawList() {
    const box = document.getElementById("adler-list");
    if (!box) return;
    const items = listed();
    if (!items.length) { setHtml(box, '<p class="muted">' + esc(t("adler.none")) + "</p>"); return; }
    setHtml(box, items.map((d) => {
      const calls = Object.entries(d.calls || {}).sort((x, y) => x[1].at - y[1].at);
      return '<div class="adler-item state-' + esc(d.state) + '" data-detection="' + esc(d.id) + '" data-open-detection="' + esc(d.id) + '" role="button" tabindex="0">' +
        '<div class="alert-head">' + badge(d.state) + ' <span class="cat">' + esc(A.category(d.category)) + "</span> " + ageHtml(d.first_seen, null, true) + "</div>" +
        '<div class="addr">' + esc([d.address, d.floor].filter(Boolean).join(", ") || t("adler.no_address")) + "</div>" +
        (calls.length
          ? '<ul class="calls">' + calls.map(([rid, c]) => '<li class="call-row call-' + esc(c.state) + '" data-responder="' + esc(rid) + '">' +
              esc(callsignOf(rid)) + ": " + callHtml(c.state) + " " + ageHtml(c.at, null, true) + "</li>").join("") + "</ul>"
          : "") +
        "</div>";
    }).join(""));
  }

  function drawResponders() {
    const box = document.getElementById("responders-list");
    if (!box) return;
    const staleAfter = C().staleAfter("person");
    const rows = Array.from(C().picture.responders.values());
    // Those on a call first (on the way, then there), then the free, then the unavailable.
    const rank = { alerted: 0, accepted: 0, arrived: 1 };
    const data = rows.map((r) => {
      const call = A.callOf(r.id);
      const pos = position(r.id);
      const open = call && OPEN_STATES.includes(call.detection.state) && call.state in rank;
      return {
        r: r, call: call && [call.state, call.at, call.detection.id, call.detection.category], at: pos && pos.at,
        rank: open ? rank[call.state] : r.available ? 2 : 3,
      };
    }).sort((x, y) => x.rank - y.rank || String(x.r.callsign).localeCompare(String(y.r.callsign)));
    if (!rows.length) { setHtml(box, '<p class="muted">' + esc(t("responders.none")) + "</p>"); return; }
    setHtml(box, data.map(({ r, call, at }) => {
      const state = call
        ? callHtml(call[0]) + " " + esc(t("responders.for", { what: A.category(call[3]) })) + " " + ageHtml(call[1], null, true)
        : '<b class="avail ' + (r.available ? "yes" : "no") + '">' + esc(t(r.available ? "responders.available" : "responders.unavailable")) + "</b>";
      const where = at != null ? esc(t("adler.position_age")) + " " + ageHtml(at, staleAfter) : '<span class="age stale">' + esc(t("responders.no_position")) + "</span>";
      return '<div class="responder' + (call ? " call-" + esc(call[0]) : "") + '" data-responder="' + esc(r.id) + '" data-entity="' + esc(r.id) + '">' +
        '<img src="/assets/symbols/responder.svg" alt="" class="rsym">' +
        '<div class="rbody"><div><b class="callsign">' + esc(r.callsign || r.id) + '</b> <span class="muted">' + esc(quals(r.qualifications)) +
        " · " + esc(label("travel." + r.travel, r.travel || "")) + "</span></div>" +
        '<div class="rstate">' + state + '</div><div class="rpos">' + where + "</div></div></div>";
    }).join(""));
  }

  // --- the map -------------------------------------------------------------------------

  function markerHtml(d) {
    return '<span class="ring"></span><span class="dot"></span><span class="lbl">' + esc(A.category(d.category)) + " " + badge(d.state) +
      ' <b class="age">' + esc(C().age(C().now() - d.first_seen)) + "</b></span>";
  }

  function drawMarkers() {
    const live = window.cockpitLive;
    const group = live && live.groups.adler;
    if (!group) return;
    const seen = new Set();
    for (const d of detections()) {
      if (d.lat == null || d.lon == null || !OPEN_STATES.includes(d.state)) continue;
      seen.add(d.id);
      let m = A.markers.get(d.id);
      const sig = d.state + "|" + d.category + "|" + C().cfg.lang;
      if (!m) {
        m = L.marker([d.lat, d.lon], {
          icon: L.divIcon({ className: "adler-det", html: "", iconSize: [44, 44], iconAnchor: [22, 22] }),
          keyboard: false, zIndexOffset: 500,
        });
        m.on("click", () => { A.open(d.id); C().select(d.id, "detection"); });
        A.markers.set(d.id, m);
        group.addLayer(m);
      } else {
        const at = m.getLatLng();
        if (at.lat !== d.lat || at.lng !== d.lon) m.setLatLng([d.lat, d.lon]);
      }
      const el = m.getElement();
      if (!el) continue;
      if (m.sig !== sig) {
        // Classes by state: the ring pulses only while new (CSS), and is not restarted by
        // the ticking age, which changes only its own text.
        for (const s of Object.keys(NEXT_STEPS)) el.classList.toggle("state-" + s, s === d.state);
        el.setAttribute("data-detection", d.id);
        el.innerHTML = markerHtml(d);
        m.sig = sig;
      } else {
        const age = el.querySelector(".age");
        if (age) age.textContent = C().age(C().now() - d.first_seen);
      }
    }
    for (const [id, m] of A.markers) if (!seen.has(id)) { group.removeLayer(m); A.markers.delete(id); }
  }

  // Dashed lines from each Helfer on the way to the detection (stream.js draws them).
  A.callLines = function (now) {
    const out = [];
    const staleAfter = C().staleAfter("person");
    for (const d of detections()) {
      if (d.lat == null || !OPEN_STATES.includes(d.state)) continue;
      for (const [rid, c] of Object.entries(d.calls || {})) {
        if (!LINE_STATES.includes(c.state)) continue;
        const pos = position(rid);
        if (!pos) continue;
        out.push({ id: d.id + ">" + rid, state: c.state, stale: now - pos.at > staleAfter, latlngs: [[pos.lat, pos.lon], [d.lat, d.lon]] });
      }
    }
    return out;
  };

  A.callStyle = function (it) {
    const colour = it.stale ? "#7a7a7a" : it.state === "accepted" ? "#146c2e" : "#c05a00";
    return { color: colour, weight: 4, opacity: 0.9, dashArray: "10 8" };
  };

  A.render = function () {
    const c = C();
    if (!c || !c.cfg || !c.picture) return;
    if (A.popup) A.popup.before(); // the tone switch; a tone for what arrived
    drawMarkers();
    drawList();
    drawResponders();
    if (A.popup) A.popup.draw();
  };

  // For adler_popup.js.
  A.h = {
    OPEN_STATES, LINE_STATES, NEXT_STEPS, STEP_LABEL, C, t, esc, label, detections, position, callsignOf,
    distance, eta, ageHtml, setHtml, quals, callHtml, badge, drawList,
  };
})();
