/* The trainer's replay page (/trainer): timeline, play/pause/speed, seek by tap or drag,
 * the big replay clock, bookmarks and the incident library. Does nothing on other pages.
 *
 * The map and panels need nothing from here: on a replay server the push stream carries
 * the picture at the replay time, and after a seek it says `resync`, so stream.js joins
 * again and shows the new picture. This file only talks to /api/v1/replay* and
 * /api/v1/recordings, as any client would.
 */
(function () {
  "use strict";

  if (location.pathname.replace(/\/+$/, "") !== "/trainer") return;

  const POLL_MS = 1000; // the replay's state, read again once a second (clock in between)
  const DRAG_SEEK_MS = 200; // while dragging: at most one seek this often
  const KEY_STEP_S = 10;
  const LANES = { alert: 0, detection: 1, journal: 2, bookmark: 3 };
  const SYMBOL = { alert: "▲", detection: "◆", journal: "●", bookmark: "⚑" };
  const HIT_PX = 12; // a tap this close to a mark picks the mark

  const TR = {
    mode: null, // "replay" | "live"
    state: null,
    stateAt: 0, // performance.now() when `state` arrived
    timeline: null,
    bookmarks: [],
    seeking: null, // the time a seek is under way to (the playhead shows it)
    lastSeek: null, // the last answered seek {t, seq}
    drag: null,
  };
  window.cockpitTrainer = TR;

  const C = () => window.cockpit;
  const t = (key, params) => C().t(key, params);
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const locale = () => (C().cfg.lang === "de" ? "de-DE" : "en-GB");

  // --- time -------------------------------------------------------------------------

  TR.position = function () {
    const s = TR.state;
    if (!s) return null;
    if (TR.seeking != null) return TR.seeking;
    if (!s.playing) return s.position;
    return Math.min(s.end, s.position + (s.speed * (performance.now() - TR.stateAt)) / 1000);
  };

  function clockText(t) {
    return new Date(t * 1000).toLocaleTimeString(locale(), { hour12: false });
  }

  function dateText(t) {
    return new Date(t * 1000).toLocaleDateString(locale(), { year: "numeric", month: "2-digit", day: "2-digit" });
  }

  function duration(s) {
    const m = Math.floor(s / 60);
    const h = Math.floor(m / 60);
    const pad = (n) => String(n).padStart(2, "0");
    return (h ? h + ":" + pad(m % 60) : String(m)) + ":" + pad(Math.floor(s % 60)) + (h ? " h" : " min");
  }

  // --- talking to the server ----------------------------------------------------------

  function say(text) {
    const box = $("tr-status");
    if (box) box.textContent = text || "";
  }

  async function control(path, body) {
    const a = await C().request("POST", "/api/v1/replay/" + path, body);
    if (!a.ok) say(t("trainer.failed", { reason: a.reason }));
    else { say(""); took(a.body); }
    return a;
  }

  function took(state) {
    TR.state = state;
    TR.stateAt = performance.now();
    drawControls();
    drawPlayhead();
  }

  async function readState() {
    const a = await C().request("GET", "/api/v1/replay");
    if (a.status === 409) { live(); return; }
    if (!a.ok) return;
    if (TR.mode !== "replay") {
      TR.mode = "replay";
      // The connection badge says "Wiedergabe", not "Live" (stream.js reads liveLabel).
      C().liveLabel = "trainer.conn";
      document.body.classList.add("tr-replay");
      const badge = $("conn-state");
      if (badge && C().connected) badge.textContent = t("trainer.conn");
      enable();
    }
    if (TR.seeking == null && !TR.drag) took(a.body);
  }

  async function readTimeline() {
    const bar = $("tr-timeline");
    const buckets = Math.max(20, Math.min(400, Math.floor((bar ? bar.clientWidth : 800) / 8)));
    const a = await C().request("GET", "/api/v1/replay/timeline?buckets=" + buckets);
    if (!a.ok) return;
    TR.timeline = a.body;
    drawTimeline();
  }

  async function readBookmarks() {
    const a = await C().request("GET", "/api/v1/replay/bookmarks");
    if (!a.ok) return;
    TR.bookmarks = a.body.bookmarks || [];
    drawBookmarks();
    drawTimeline();
  }

  async function readLibrary() {
    const a = await C().request("GET", "/api/v1/recordings");
    if (!a.ok) return;
    drawLibrary(a.body.recordings || []);
  }

  // A seek: the playhead goes there at once; the picture follows when the server has
  // rebuilt it (the push stream resyncs). During a drag only the latest position counts.
  let seekBusy = false;
  let seekNext = null;
  async function seek(to) {
    TR.seeking = to;
    drawPlayhead();
    if (seekBusy) { seekNext = to; return; }
    seekBusy = true;
    const a = await C().request("POST", "/api/v1/replay/seek", { t: to });
    seekBusy = false;
    if (!a.ok) say(t("trainer.failed", { reason: a.reason }));
    if (seekNext != null) { const next = seekNext; seekNext = null; seek(next); return; }
    TR.seeking = null;
    if (a.ok) {
      if (!a.body.superseded) TR.lastSeek = { t: to, seq: a.body.seq, position: a.body.position };
      took(a.body);
    }
  }

  // --- drawing ------------------------------------------------------------------------

  function live() {
    if (TR.mode === "live") return;
    TR.mode = "live";
    // An exercise server is live too; its own card (assets/exercise.js) drives it.
    const why = C().cfg.exercise ? t("trainer.exercise_note") : t("trainer.live_note");
    const note = $("tr-note");
    if (note) { note.textContent = why; note.hidden = false; }
    say(why);
    for (const id of ["tr-play", "tr-pause", "tr-speed", "tr-bm-add", "tr-bm-title", "tr-bm-note"]) {
      const el = $(id);
      if (el) el.disabled = true;
    }
    const bar = $("tr-timeline");
    if (bar) bar.setAttribute("aria-disabled", "true");
    document.body.classList.add("tr-live");
  }

  function enable() {
    const drive = !!C().cfg.can_drive;
    for (const id of ["tr-play", "tr-pause", "tr-speed", "tr-bm-add", "tr-bm-title", "tr-bm-note"]) {
      const el = $(id);
      if (el) el.disabled = !drive;
    }
    if (!drive) say(t("trainer.viewer_note"));
    readTimeline();
    readBookmarks();
  }

  function drawControls() {
    const s = TR.state;
    if (!s) return;
    const play = $("tr-play");
    const pause = $("tr-pause");
    if (play) play.classList.toggle("on", s.playing);
    if (pause) pause.classList.toggle("on", !s.playing);
    const speed = $("tr-speed");
    if (speed && document.activeElement !== speed) {
      const want = String(s.speed);
      if (![...speed.options].some((o) => o.value === want)) speed.add(new Option(want + "×", want));
      speed.value = want;
    }
  }

  const frac = (at) => {
    const s = TR.state;
    if (!s || s.end <= s.start) return 0;
    return Math.max(0, Math.min(1, (at - s.start) / (s.end - s.start)));
  };

  function drawPlayhead() {
    const at = TR.position();
    if (at == null) return;
    const clock = $("tr-clock");
    if (clock) {
      clock.textContent = clockText(at);
      clock.dataset.t = String(at);
      clock.title = dateText(at);
    }
    const head = $("tr-head");
    if (head) head.style.left = (frac(at) * 100).toFixed(3) + "%";
    const bar = $("tr-timeline");
    if (bar) {
      bar.setAttribute("aria-valuenow", String(Math.round(frac(at) * 100)));
      bar.setAttribute("aria-valuetext", dateText(at) + " " + clockText(at));
    }
  }

  function marks() {
    const tl = TR.timeline;
    const list = tl ? tl.marks.map((m) => ({ kind: m.kind, t: m.t, text: m.text })) : [];
    for (const b of TR.bookmarks) list.push({ kind: "bookmark", t: b.t, text: b.title });
    return list;
  }

  function drawTimeline() {
    const bar = $("tr-timeline");
    const tl = TR.timeline;
    if (!bar || !tl || !TR.state) return;
    const counts = tl.density.events;
    const most = Math.max(1, ...counts);
    const w = 1000 / counts.length;
    const rects = counts.map((n, i) => {
      const h = n ? Math.max(2, (60 * n) / most) : 0;
      return `<rect x="${(i * w).toFixed(2)}" y="${(60 - h).toFixed(2)}" width="${Math.max(0.5, w - 0.6).toFixed(2)}" height="${h.toFixed(2)}"></rect>`;
    }).join("");
    // One symbol per lane and 3 px: a busy incident's thousands of marks stay a few
    // hundred elements (a tap still finds every mark, from the list, not the DOM).
    const columns = Math.max(1, bar.clientWidth / 3);
    const drawn = new Set();
    const pins = marks().map((m) => {
      const key = m.kind + Math.round(frac(m.t) * columns);
      if (drawn.has(key)) return "";
      drawn.add(key);
      const left = (frac(m.t) * 100).toFixed(3);
      return `<span class="tr-pin pin-${m.kind}" style="left:${left}%;top:${LANES[m.kind] * 12}px" aria-hidden="true">${SYMBOL[m.kind]}</span>`;
    }).join("");
    const range = $("tr-range");
    if (range) range.textContent = dateText(tl.start) + " " + clockText(tl.start) + " – " + clockText(tl.end);
    bar.innerHTML =
      `<div class="tr-lanes">${pins}</div>` +
      `<svg class="tr-density" viewBox="0 0 1000 60" preserveAspectRatio="none" aria-hidden="true">${rects}</svg>` +
      `<div class="tr-head" id="tr-head"></div>`;
    drawPlayhead();
  }

  function drawBookmarks() {
    const box = $("tr-bm-list");
    if (!box) return;
    if (!TR.bookmarks.length) { box.innerHTML = `<p class="muted">${esc(t("trainer.bookmarks.none"))}</p>`; return; }
    const me = C().cfg.user;
    const admin = C().cfg.role === "admin";
    box.innerHTML = TR.bookmarks.map((b) => {
      const del = (b.author === me || admin) && C().cfg.can_drive
        ? `<button class="btn tr-btn tr-bm-del" data-id="${esc(b.id)}">${esc(t("trainer.bookmark.delete"))}</button>` : "";
      return `<div class="tr-bm" data-id="${esc(b.id)}">` +
        `<button class="btn tr-btn tr-bm-go" data-t="${b.t}"><span class="pin-bookmark">⚑</span> ${esc(clockText(b.t))} · ${esc(t("trainer.bookmark.goto"))}</button>` +
        `<div class="tr-bm-text"><strong>${esc(b.title)}</strong>` +
        (b.note ? `<div>${esc(b.note)}</div>` : "") +
        `<div class="muted">${esc(t("trainer.bookmark.by", { author: b.author }))}</div></div>${del}</div>`;
    }).join("");
  }

  function drawLibrary(recordings) {
    const box = $("tr-library");
    if (!box) return;
    if (!recordings.length) { box.innerHTML = `<p class="muted">${esc(t("trainer.library.none"))}</p>`; return; }
    const num = (n) => Number(n || 0).toLocaleString(locale());
    box.innerHTML = recordings.map((r) => {
      if (r.error) return `<div class="tr-rec error"><strong>${esc(r.file)}</strong><div class="muted">${esc(r.error)}</div></div>`;
      const start = Date.parse(r.start_at) / 1000;
      return `<div class="tr-rec${r.current ? " current" : ""}">` +
        `<div class="tr-rec-head"><strong>${esc(r.incident || r.file)}</strong>` +
        (r.current ? ` <span class="tr-badge">${esc(t("trainer.library.current"))}</span>` : "") + `</div>` +
        `<div>${isFinite(start) ? esc(dateText(start)) + " " + esc(clockText(start)) : "–"} · ${esc(duration(r.duration_s || 0))}</div>` +
        `<div class="muted">${esc(t("trainer.library.counts", { events: num(r.events), alerts: num(r.alerts), detections: num(r.detections), journal: num(r.journal) }))}` +
        (r.bookmarks ? " · " + esc(t("trainer.library.marks", { n: num(r.bookmarks) })) : "") + `</div>` +
        `<div class="muted tr-file">${esc(r.file)}</div></div>`;
    }).join("");
  }

  // A tapped mark is named under the timeline (no hover tooltip), with a jump button.
  function showMark(m) {
    const box = $("tr-mark");
    if (!box) return;
    box.innerHTML = `<span class="pin-${m.kind}">${SYMBOL[m.kind]}</span> ` +
      `<strong>${esc(t("trainer.mark." + m.kind))} ${esc(clockText(m.t))}</strong> ${esc(m.text || "")} ` +
      (C().cfg.can_drive ? `<button class="btn tr-btn tr-mark-go" data-t="${m.t}">${esc(t("trainer.mark.goto"))}</button>` : "");
  }

  // --- input --------------------------------------------------------------------------

  function timeAt(ev) {
    const r = $("tr-timeline").getBoundingClientRect();
    const s = TR.state;
    const f = Math.max(0, Math.min(1, (ev.clientX - r.left) / r.width));
    return s.start + f * (s.end - s.start);
  }

  function markNear(ev) {
    const bar = $("tr-timeline");
    const r = bar.getBoundingClientRect();
    const y = ev.clientY - r.top;
    if (y > 4 * 12 + 4) return null; // below the lanes: the density, a seek
    let best = null;
    let bestDx = HIT_PX;
    for (const m of marks()) {
      const lane = LANES[m.kind];
      if (Math.abs(y - (lane * 12 + 6)) > 12) continue;
      const dx = Math.abs(r.left + frac(m.t) * r.width - ev.clientX);
      if (dx <= bestDx) { best = m; bestDx = dx; }
    }
    return best;
  }

  function canSeek() {
    return TR.mode === "replay" && TR.state && C().cfg.can_drive;
  }

  function onDown(ev) {
    if (TR.mode !== "replay" || !TR.state) return;
    const m = markNear(ev);
    if (m) { showMark(m); return; }
    if (!canSeek()) return;
    ev.preventDefault();
    $("tr-timeline").setPointerCapture(ev.pointerId);
    TR.drag = { id: ev.pointerId, at: timeAt(ev), sentAt: 0, timer: null };
    TR.seeking = TR.drag.at;
    drawPlayhead();
  }

  function onMove(ev) {
    const d = TR.drag;
    if (!d || ev.pointerId !== d.id) return;
    d.at = timeAt(ev);
    TR.seeking = d.at;
    drawPlayhead();
    // Debounced: one seek per DRAG_SEEK_MS at most while the finger moves.
    if (!d.timer) {
      d.timer = setTimeout(() => { d.timer = null; if (TR.drag === d) seek(d.at); }, DRAG_SEEK_MS);
    }
  }

  function onUp(ev) {
    const d = TR.drag;
    if (!d || ev.pointerId !== d.id) return;
    if (d.timer) clearTimeout(d.timer);
    TR.drag = null;
    seek(timeAt(ev));
  }

  function onKey(ev) {
    if (!canSeek()) return;
    const step = ev.shiftKey ? 6 * KEY_STEP_S : KEY_STEP_S;
    const at = TR.position();
    let to = null;
    if (ev.key === "ArrowLeft") to = at - step;
    else if (ev.key === "ArrowRight") to = at + step;
    else if (ev.key === "Home") to = TR.state.start;
    else if (ev.key === "End") to = TR.state.end;
    if (to == null) return;
    ev.preventDefault();
    seek(Math.max(TR.state.start, Math.min(TR.state.end, to)));
  }

  async function addBookmark() {
    const title = $("tr-bm-title");
    const note = $("tr-bm-note");
    const status = $("tr-bm-status");
    const a = await C().request("POST", "/api/v1/replay/bookmarks", {
      title: title.value.trim(), note: note.value.trim(), t: TR.position(),
    });
    status.textContent = a.ok ? "" : t("trainer.failed", { reason: a.reason });
    if (a.ok) {
      // dcc.Input keeps its value in React: empty it there, not in the DOM.
      window.dash_clientside.set_props("tr-bm-title", { value: "" });
      window.dash_clientside.set_props("tr-bm-note", { value: "" });
      readBookmarks();
    }
  }

  document.addEventListener("click", (ev) => {
    const target = ev.target.closest && ev.target.closest("button, select");
    if (!target || !window.cockpit || !C().cfg) return;
    if (target.id === "tr-play") control("play", { speed: Number($("tr-speed").value) });
    else if (target.id === "tr-pause") control("pause", {});
    else if (target.id === "tr-bm-add") addBookmark();
    else if (target.classList.contains("tr-bm-go") || target.classList.contains("tr-mark-go")) seek(Number(target.dataset.t));
    else if (target.classList.contains("tr-bm-del")) {
      C().request("DELETE", "/api/v1/replay/bookmarks/" + encodeURIComponent(target.dataset.id)).then((a) => {
        $("tr-bm-status").textContent = a.ok ? "" : t("trainer.failed", { reason: a.reason });
        readBookmarks();
      });
    }
  });

  document.addEventListener("change", (ev) => {
    if (ev.target && ev.target.id === "tr-speed") control("speed", { speed: Number(ev.target.value) });
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.id === "tr-bm-title" && ev.key === "Enter") addBookmark();
  });

  // A recording may be from anywhere: the map goes to its units once, when the first
  // picture with positions has come (after that the trainer's own zoom stays).
  let fitted = false;
  function fitOnce() {
    const map = window.cockpitLive && window.cockpitLive.map;
    const picture = C().picture;
    if (fitted || !map || !picture || !window.L) return;
    const points = [];
    for (const e of picture.entities.values()) if (e.lat != null && e.lon != null) points.push([e.lat, e.lon]);
    if (!points.length) return;
    fitted = true;
    map.fitBounds(L.latLngBounds(points).pad(0.2), { maxZoom: 17, animate: false });
  }

  // --- start --------------------------------------------------------------------------

  function start() {
    const bar = $("tr-timeline");
    if (!window.cockpit || !C().cfg || !bar) { setTimeout(start, 50); return; }
    bar.addEventListener("pointerdown", onDown);
    bar.addEventListener("pointermove", onMove);
    bar.addEventListener("pointerup", onUp);
    bar.addEventListener("pointercancel", onUp);
    bar.addEventListener("keydown", onKey);
    readState();
    readLibrary();
    setInterval(() => { if (TR.mode !== "live") readState(); }, POLL_MS);
    setInterval(drawPlayhead, 100);
    const fitter = setInterval(() => { fitOnce(); if (fitted) clearInterval(fitter); }, 250);
    let width = bar.clientWidth;
    window.addEventListener("resize", () => {
      if (Math.abs(bar.clientWidth - width) > 40) { width = bar.clientWidth; if (TR.mode === "replay") readTimeline(); }
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
