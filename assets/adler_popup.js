/* The pop-up of A.D.Le.R. detections on the commander's page (`assets/adler.js` has the
 * rest and the helpers both use).
 *
 * A detection still `new` (unreviewed) opens #detection-popup by itself: what, where,
 * how to get in, how sure, how old, and the nearest free Helfer. Several wait in a queue
 * ("1 von 3"). Two taps move it on: Bestätigen, then Entsenden (the server alerts the
 * nearest Helfer); Verwerfen dismisses it. A 409 (someone else was faster) is said in
 * words. Personal data is fetched only on a tap on "Personendaten" (the server records
 * who asked), only by roles that may, and forgotten when the pop-up closes. An optional
 * short tone (WebAudio, generated, no file) announces one that arrives while the page is
 * open.
 */
(function () {
  "use strict";

  const SOUND_KEY = "cockpit.adler.sound";
  const A = window.cockpitAdler;
  const {
    OPEN_STATES, LINE_STATES, NEXT_STEPS, STEP_LABEL, C, t, esc, label, detections, position, callsignOf,
    distance, eta, ageHtml, setHtml, quals, callHtml, badge, drawList,
  } = A.h;

  // --- sound -------------------------------------------------------------------------

  let audio = null;

  const soundOn = () => {
    try { return window.localStorage.getItem(SOUND_KEY) === "on"; } catch (e) { return false; }
  };

  function context() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      audio = new Ctx();
    }
    if (audio.state === "suspended") audio.resume();
    return audio;
  }

  // Two short falling tones, like a pager: generated, nothing to load.
  A.beep = function () {
    A.beeps += 1;
    const ctx = context();
    if (!ctx) return;
    const t0 = ctx.currentTime + 0.02;
    for (const [freq, dt] of [[988, 0], [740, 0.2]]) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t0 + dt);
      gain.gain.exponentialRampToValueAtTime(0.35, t0 + dt + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t0 + dt + 0.17);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t0 + dt);
      osc.stop(t0 + dt + 0.18);
    }
  };

  function drawSound() {
    const slot = document.getElementById("sound-slot");
    if (!slot) return;
    let btn = slot.querySelector("button");
    if (!btn) {
      btn = document.createElement("button");
      btn.id = "sound-toggle";
      btn.type = "button";
      btn.className = "btn sound";
      btn.addEventListener("click", () => {
        const on = !soundOn();
        try { window.localStorage.setItem(SOUND_KEY, on ? "on" : "off"); } catch (e) { /* private mode */ }
        if (on) A.beep(); // the tap unlocks audio, and the commander hears what it sounds like
        drawSound();
      });
      slot.appendChild(btn);
    }
    const on = soundOn();
    btn.textContent = t(on ? "adler.sound_on" : "adler.sound_off");
    btn.setAttribute("aria-pressed", on ? "true" : "false");
    btn.classList.toggle("on", on);
  }

  // A page opened with the tone on may not play before the first touch (autoplay rules).
  document.addEventListener("pointerdown", () => { if (soundOn()) context(); }, { once: true });

  // --- the queue -----------------------------------------------------------------------

  function pending() {
    return detections()
      .filter((d) => d.state === "new" && !A.aside.has(d.id))
      .sort((x, y) => x.first_seen - y.first_seen);
  }

  // What "‹ 1 von 3 ›" steps through: the unreviewed, and the one shown (oldest first).
  function queue() {
    const list = pending();
    const shown = A.shown && C().picture.detections.get(A.shown);
    if (shown && !list.includes(shown)) list.push(shown);
    return list.sort((x, y) => x.first_seen - y.first_seen).map((d) => d.id);
  }

  // Arrivals since the page last looked: a tone for each new one (when the tone is on).
  function arrivals() {
    const all = detections();
    if (A.known === null) {
      A.known = new Set(all.map((d) => d.id)); // there at load: shown, but no tone
      return;
    }
    let fresh = false;
    for (const d of all) {
      if (A.known.has(d.id)) continue;
      A.known.add(d.id);
      if (d.state === "new") fresh = true;
    }
    if (fresh && soundOn()) A.beep();
  }

  A.open = function (id) {
    if (A.shown !== id) A.personal = {};
    A.shown = id;
    A.reveal = true;
    A.aside.delete(id);
    drawPopup();
  };

  A.close = function () {
    if (A.shown) A.aside.add(A.shown);
    A.shown = null;
    A.personal = {}; // personal data leaves the page with the pop-up
    const next = pending()[0];
    if (next) A.shown = next.id;
    drawPopup();
  };

  function step(delta) {
    const ids = queue();
    const i = ids.indexOf(A.shown);
    if (i < 0 || ids.length < 2) return;
    A.personal = {};
    A.shown = ids[(i + delta + ids.length) % ids.length];
    A.reveal = true;
    drawPopup();
  }

  // --- writes --------------------------------------------------------------------------

  async function transition(id, to) {
    if (A.busy[id]) return;
    A.busy[id] = to;
    A.status[id] = { text: t("adler.busy"), error: false };
    drawPopup();
    const url = "/api/v1/detections/" + encodeURIComponent(id) + "/transition";
    const answer = await C().request("POST", url, { to: to });
    delete A.busy[id];
    if (answer.ok) {
      if (A.shown === id) A.reveal = true; // show where it is, and who was sent there
      const names = ((answer.body && answer.body.alerted) || []).map(callsignOf);
      A.status[id] = {
        text: names.length ? t("adler.alerted", { names: names.join(", ") }) : t("adler.done", { state: A.stateText(to) }),
        error: false,
      };
    } else if (answer.status === 409 && answer.error.state) {
      A.status[id] = { text: t("adler.conflict", { state: A.stateText(answer.error.state) }), detail: answer.reason, error: true };
    } else {
      A.status[id] = { text: t("adler.failed", { reason: answer.reason }), error: true };
    }
    drawPopup();
    drawList();
  }

  async function alertOne(id, rid) {
    if (A.busy[id]) return;
    A.busy[id] = "alert";
    A.status[id] = { text: t("adler.busy"), error: false };
    drawPopup();
    const url = "/api/v1/detections/" + encodeURIComponent(id) + "/alert";
    const answer = await C().request("POST", url, { responders: [rid] });
    delete A.busy[id];
    const names = ((answer.body && answer.body.alerted) || []).map(callsignOf);
    A.status[id] = answer.ok
      ? { text: names.length ? t("adler.alerted", { names: names.join(", ") }) : t("adler.failed", { reason: callsignOf(rid) }), error: !names.length }
      : { text: t("adler.failed", { reason: answer.reason }), error: true };
    drawPopup();
  }

  async function fetchPersonal(id) {
    A.personal[id] = { loading: true };
    drawPopup();
    const answer = await C().request("GET", "/api/v1/detections/" + encodeURIComponent(id) + "/personal");
    if (A.shown !== id) return; // closed meanwhile: not kept
    A.personal[id] = answer.ok ? { data: (answer.body && answer.body.personal) || null } : { error: answer.reason };
    drawPopup();
  }

  // --- the pop-up ----------------------------------------------------------------------

  function personalHtml(id) {
    const cfg = C().cfg;
    if (!cfg.personal_data) return ""; // viewers, trainers, the wall: no button at all
    const p = A.personal[id];
    const button = '<button type="button" class="btn personal" data-act="personal"' + (p && p.loading ? " disabled" : "") + ">" +
      esc(t("adler.personal")) + '</button> <span class="muted small">' + esc(t("adler.personal_hint")) + "</span>";
    if (!p || p.loading) return '<div class="personal-box">' + button + "</div>";
    if (p.error) return '<div class="personal-box"><p class="status">' + esc(t("adler.personal_failed", { reason: p.error })) + "</p></div>";
    const person = p.data && p.data.person;
    if (!person) return '<div class="personal-box"><p class="muted">' + esc(t("adler.personal_none")) + "</p></div>";
    const rows = [
      [t("adler.age_group"), label("adler.age_group." + person.age_group, person.age_group)],
      [t("adler.mobility"), label("adler.mobility." + person.mobility, person.mobility)],
      [t("adler.needs"), (person.needs || []).map((n) => label("adler.need." + n, n)).join(", ") || "–"],
      [t("adler.medical"), person.medical || "–"],
      [t("adler.contact"), person.contact || "–"],
    ];
    return '<div class="personal-box shown"><h4>' + esc(t("adler.personal")) + '</h4><table class="facts">' +
      rows.map(([k, v]) => "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>").join("") + "</table></div>";
  }

  function candidatesHtml(d) {
    if (!OPEN_STATES.includes(d.state) || d.state === "on_scene") return "";
    const stale = C().staleAfter("person");
    // A Helfer's last report comes with its position (entity), which the stream keeps
    // fresh; the offer's own time is that of the last re-ranking. Too old: not offered.
    const seen = (c) => {
      const e = C().picture.entities.get(c.responder);
      return Math.max((e && e.observed_at) || 0, c.position_at || 0);
    };
    const maxAge = C().cfg.responder_max_age_s || 600;
    const list = (d.candidates || []).filter((c) => C().now() - seen(c) <= maxAge);
    // One more Helfer at a time (after one said no): once the detection is confirmed.
    const more = C().cfg.can_write && (d.state === "confirmed" || d.state === "dispatched");
    const alertCell = (c) => (more
      ? '<td class="alert-cell"><button type="button" class="btn alert-one" data-act="alert" data-responder="' + esc(c.responder) + '"' +
        (A.busy[d.id] ? " disabled" : "") + ">" + esc(t("adler.alert_one")) + "</button></td>"
      : "");
    const body = list.length
      ? '<table class="facts candidates"><thead><tr><th>' + esc(t("adler.callsign")) + "</th><th>" + esc(t("adler.distance")) +
        "</th><th>" + esc(t("adler.eta")) + "</th>" + (more ? "<th></th>" : "") + "</tr></thead><tbody>" +
        // Who (and what they are), how far (and how old that position is), how soon.
        list.map((c) => '<tr data-responder="' + esc(c.responder) + '"><td><b>' + esc(c.callsign) + '</b><br><span class="small">' +
          esc(quals(c.qualifications)) + '</span></td><td>' + esc(distance(c.distance_m)) + '<br><span class="small">' +
          esc(t("adler.position_age")) + " " + ageHtml(seen(c), stale) + "</span></td><td>" + esc(eta(c.eta_s)) + "</td>" +
          alertCell(c) + "</tr>").join("") +
        "</tbody></table>"
      : '<p class="muted">' + esc(t("adler.no_candidates")) + "</p>";
    return "<h4>" + esc(t("adler.candidates")) + "</h4>" + body;
  }

  function callsHtml(d) {
    const calls = Object.entries(d.calls || {});
    if (!calls.length) return d.state === "dispatched" ? '<h4>' + esc(t("adler.calls")) + '</h4><p class="muted">' + esc(t("adler.no_calls")) + "</p>" : "";
    calls.sort((x, y) => x[1].at - y[1].at);
    return "<h4>" + esc(t("adler.calls")) + '</h4><ul class="calls">' +
      calls.map(([rid, c]) => '<li data-responder="' + esc(rid) + '" class="call-row call-' + esc(c.state) + '"><b>' + esc(callsignOf(rid)) + "</b> " +
        callHtml(c.state) + " " + ageHtml(c.at, null, true) + "</li>").join("") + "</ul>";
  }

  function actionsHtml(d) {
    if (!C().cfg.can_write) return '<p class="muted">' + esc(t("adler.readonly")) + "</p>";
    const busy = A.busy[d.id];
    const steps = NEXT_STEPS[d.state] || [];
    const buttons = steps.map((to) => {
      const key = d.state === "dismissed" && to === "confirmed" ? "adler.reconfirm" : STEP_LABEL[to];
      const cls = to === "dismissed" || to === "closed" ? "btn step secondary" : "btn step primary";
      return '<button type="button" class="' + cls + " to-" + to + '" data-act="step" data-to="' + to + '"' + (busy ? " disabled" : "") + ">" +
        esc(t(key)) + "</button>";
    });
    const hint = d.state === "confirmed" ? '<p class="muted small">' + esc(t("adler.dispatch") + ": " + t("adler.dispatch_hint")) + "</p>" : "";
    return '<div class="actions">' + buttons.join("") + "</div>" + hint;
  }

  function popupHtml(d, ids) {
    const i = ids.indexOf(d.id);
    const nav = ids.length > 1
      ? '<div class="nav"><button type="button" class="btn" data-act="prev" aria-label="' + esc(t("adler.prev")) + '">‹</button><span class="of">' +
        esc(t("adler.of", { i: String(i + 1), n: String(ids.length) })) + '</span><button type="button" class="btn" data-act="next" aria-label="' +
        esc(t("adler.next")) + '">›</button></div>'
      : "";
    const st = A.status[d.id];
    const rows = [];
    const row = (k, v) => rows.push("<tr><th>" + esc(k) + "</th><td>" + v + "</td></tr>");
    if (d.floor) row(t("adler.floor"), esc(d.floor));
    if (d.access) row(t("adler.access"), '<span class="access">' + esc(d.access) + "</span>");
    row(t("adler.detected"), esc(C().time(d.first_seen)) + " " + ageHtml(d.first_seen, null, true));
    row(t("adler.confidence"), esc(Math.round((d.confidence == null ? 1 : d.confidence) * 100) + " %"));
    row(t("adler.reports"), esc(String(d.reports || 1)) + (d.reports > 1 ? " · " + ageHtml(d.updated_at, null, true) : ""));
    if (d.device) row(t("adler.device"), esc(d.device));
    if (d.summary) row(t("adler.summary"), esc(d.summary));
    return {
      head: '<div class="popup-head"><span class="kicker">' + esc(t(d.state === "new" ? "adler.popup" : "adler.one")) + "</span>" + nav +
        '<button type="button" class="btn close" data-act="close" aria-label="' + esc(t("adler.close")) + '">✕</button></div>' +
        '<h2 id="detection-popup-title"><span class="cat">' + esc(A.category(d.category)) + "</span> " + badge(d.state) + "</h2>" +
        '<p class="address">' + esc(d.address || t("adler.no_address")) + "</p>" +
        '<table class="facts">' + rows.join("") + "</table>",
      personal: personalHtml(d.id),
      calls: callsHtml(d),
      candidates: candidatesHtml(d),
      actions: actionsHtml(d),
      status: '<p class="status' + (st && st.error ? " error" : " ok") + '" role="status">' + esc(st ? st.text : "") +
        (st && st.detail ? '<br><span class="detail">' + esc(st.detail) + "</span>" : "") + "</p>",
    };
  }

  // The pop-up covers part of the map: the detection, and the Helfer called to it, are
  // fitted into the free part beside it. Only after someone's tap (opening it, a step):
  // a detection that arrives does not move the map under a commander's finger.
  function reveal(d, box) {
    const live = window.cockpitLive;
    const map = live && live.map;
    if (!map || d.lat == null) return;
    requestAnimationFrame(() => {
      const size = map.getSize();
      const mapBox = map.getContainer().getBoundingClientRect();
      const popup = box.getBoundingClientRect();
      const left = popup.left - mapBox.left, right = popup.right - mapBox.left;
      // The wider free strip: left of the pop-up, or right of it.
      const [x0, x1] = left >= size.x - right ? [0, left] : [right, size.x];
      if (x1 - x0 < 120) return; // no room beside it: leave the map as it is
      const points = [[d.lat, d.lon]];
      for (const [rid, c] of Object.entries(d.calls || {})) {
        const pos = LINE_STATES.includes(c.state) || c.state === "arrived" ? position(rid) : null;
        if (pos) points.push([pos.lat, pos.lon]);
      }
      const inside = points.every((q) => {
        const p = map.latLngToContainerPoint(q);
        return p.x > x0 + 40 && p.x < x1 - 40 && p.y > 60 && p.y < size.y - 40;
      });
      if (inside) return;
      map.fitBounds(L.latLngBounds(points), {
        paddingTopLeft: [x0 + 50, 70], paddingBottomRight: [size.x - x1 + 50, 50], maxZoom: 17, animate: false,
      });
    });
  }

  const PARTS = ["head", "personal", "calls", "candidates", "actions", "status"];

  function drawPopup() {
    const root = document.getElementById("adler-popup-root");
    if (!root || !C().picture) return;
    if (A.shown && !C().picture.detections.has(A.shown)) A.shown = null;
    if (!A.shown) {
      const next = pending()[0];
      if (next) A.shown = next.id;
    }
    const d = A.shown && C().picture.detections.get(A.shown);
    if (!d) {
      if (root.firstChild) root.innerHTML = "";
      return;
    }
    let box = document.getElementById("detection-popup");
    if (!box) {
      // The steps and their outcome stay in view at the bottom however long the rest is.
      const part = (p) => '<div class="part part-' + p + '"></div>';
      root.innerHTML = '<div id="detection-popup" class="adler-popup" role="dialog" aria-labelledby="detection-popup-title">' +
        ["head", "personal", "calls", "candidates"].map(part).join("") + '<div class="foot">' + part("status") + part("actions") + "</div></div>";
      box = document.getElementById("detection-popup");
    }
    if (box.getAttribute("data-detection") !== d.id) box.setAttribute("data-detection", d.id);
    if (A.reveal) { A.reveal = false; reveal(d, box); }
    box.className = "adler-popup state-" + d.state;
    const parts = popupHtml(d, queue());
    for (const p of PARTS) setHtml(box.querySelector(".part-" + p), parts[p]);
  }

  document.addEventListener("click", (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    if (!target) return;
    const inPopup = target.closest("#detection-popup");
    if (inPopup) {
      const btn = target.closest("button[data-act]");
      if (!btn || btn.disabled) return;
      const id = inPopup.getAttribute("data-detection");
      const act = btn.getAttribute("data-act");
      if (act === "close") A.close();
      else if (act === "prev") step(-1);
      else if (act === "next") step(1);
      else if (act === "personal") fetchPersonal(id);
      else if (act === "step") transition(id, btn.getAttribute("data-to"));
      else if (act === "alert") alertOne(id, btn.getAttribute("data-responder"));
      return;
    }
    const item = target.closest("[data-open-detection]");
    if (item) {
      const id = item.getAttribute("data-open-detection");
      A.open(id);
      const d = C().picture.detections.get(id);
      if (d && d.lat != null) window.dash_clientside.set_props("map", { viewport: { center: [d.lat, d.lon], zoom: 17, transition: "flyTo" } });
    }
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && A.shown) { A.close(); return; }
    // A list row is a button for the keyboard too.
    const item = ev.target instanceof Element && (ev.key === "Enter" || ev.key === " ") ? ev.target.closest("[data-open-detection]") : null;
    if (item) { ev.preventDefault(); item.click(); }
  });

  A.popup = {
    before: function () { drawSound(); arrivals(); },
    draw: drawPopup,
  };
})();
