/* The trainer's recorded drone video (/trainer on `cockpit replay RECORDING`).
 *
 * One tile per stream that has recorded segments (GET /api/v1/replay/video), each a
 * plain <video> playing the segment that covers the replay time T (from trainer.js's
 * clock), at T - segment.start. Seeks and every change of the replay's state are
 * followed at once; while playing the video runs at the replay's speed up to the 16×
 * Chromium plays, faster it shows one still a second; drift over 0.3 s is corrected. In
 * a gap the tile says so, with the nearest segment's time and how far it lies from T.
 * On a replay server these tiles replace the live players (assets/whep.js): there is no
 * live video to ask for, and a tap on a drone still brings its video up large.
 */
(function () {
  "use strict";

  if (location.pathname.replace(/\/+$/, "") !== "/trainer") return;

  const TICK_MS = 100;
  const MAX_RATE = 16; // Chromium's highest playbackRate
  const DRIFT_S = 0.3; // playing: correct a larger drift from the replay clock
  const STILL_S = 0.04; // paused: the frame at the replay time (about one frame interval)
  const STEP_MS = 1000; // faster than MAX_RATE: one still this often
  const SETTLE_MS = 1000; // after a correction while playing, let the video run this long
  const TAIL_S = 0.1; // a segment's last frame is shown a frame interval past its end

  const V = {
    streams: [], // [{stream, segments: [...]}]
    tiles: new Map(), // stream -> Tile
    selected: null,
    labels: new Map(), // stream -> label (callsign) from the picture
  };
  window.cockpitTrainerVideo = V;

  const C = () => window.cockpit;
  const TR = () => window.cockpitTrainer;
  const t = (key, params) => C().t(key, params);
  const locale = () => (C().cfg.lang === "de" ? "de-DE" : "en-GB");
  const num = (x, digits) => x.toLocaleString(locale(), { minimumFractionDigits: digits, maximumFractionDigits: digits });

  function clockText(s) {
    const d = new Date(s * 1000);
    return d.toLocaleTimeString(locale(), { hour12: false }) + (C().cfg.lang === "de" ? "," : ".") + Math.floor((s % 1) * 10);
  }

  function span(s) {
    s = Math.abs(s);
    if (s < 60) return t("age.s", { n: num(s, 1) });
    if (s < 3600) return t("age.min", { n: num(s / 60, 1) });
    return t("age.h", { n: num(s / 3600, 1) });
  }

  class Tile {
    constructor(entry, box) {
      this.stream = entry.stream;
      this.segments = entry.segments;
      this.seg = null; // the segment loaded into the <video>
      this.correctedAt = -Infinity;
      this.serial = -1;
      this.shown = null; // server time of the frame last presented
      this.el = document.createElement("figure");
      this.el.className = "video-tile tr-vtile";
      this.el.dataset.stream = this.stream;
      this.el.tabIndex = 0;
      this.el.setAttribute("role", "button");
      this.video = document.createElement("video");
      this.video.muted = true;
      this.video.playsInline = true;
      this.video.preload = "auto";
      this.video.disablePictureInPicture = true;
      this.note = document.createElement("div");
      this.note.className = "tr-vnote";
      this.note.setAttribute("role", "status");
      const cap = document.createElement("figcaption");
      this.name = document.createElement("span");
      this.state = document.createElement("span");
      this.state.className = "frame-age";
      cap.append(this.name, this.state);
      this.el.append(this.video, this.note, cap);
      box.append(this.el);
      this.el.addEventListener("click", () => select(this.stream));
      this.el.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(this.stream); } });
      for (const name of ["loadedmetadata", "seeked", "ended", "canplay"]) this.video.addEventListener(name, () => tick());
      this.video.addEventListener("error", () => this.failed());
      this.watchFrames();
      this.label();
    }

    label() {
      const text = V.labels.get(this.stream) || this.stream;
      this.name.textContent = text;
      this.el.setAttribute("aria-label", t("trainer.video.show", { stream: text }));
    }

    // The server time of each presented frame (requestVideoFrameCallback: the picture
    // itself, not where the element is heading).
    watchFrames() {
      if (!this.video.requestVideoFrameCallback) return;
      const onFrame = (_now, meta) => {
        if (this.seg) this.shown = this.seg.start + meta.mediaTime;
        this.video.requestVideoFrameCallback(onFrame);
      };
      this.video.requestVideoFrameCallback(onFrame);
    }

    covering(T) {
      for (const s of this.segments) if (s.start <= T && T <= s.end + TAIL_S) return s;
      return null;
    }

    failed() {
      if (!this.seg) return;
      this.el.classList.add("gap");
      this.note.textContent = t("trainer.video.not_playable", { codec: this.seg.codec });
    }

    gap(T) {
      if (!this.video.paused) this.video.pause();
      this.el.classList.add("gap");
      let before = null;
      let after = null;
      for (const s of this.segments) {
        if (s.end < T && (!before || s.end > before.end)) before = s;
        if (s.start > T && (!after || s.start < after.start)) after = s;
      }
      const lines = [t("trainer.video.none")];
      if (before) lines.push(t("trainer.video.before", { time: clockText(before.end), age: span(T - before.end) }));
      if (after) lines.push(t("trainer.video.after", { time: clockText(after.start), age: span(after.start - T) }));
      this.note.textContent = lines.join(" · ");
      this.state.textContent = "";
    }

    // Bring the <video> to replay time T; `hard`: the replay's state changed just now.
    sync(T, s, hard, nowMs) {
      const seg = this.covering(T);
      if (!seg) { this.gap(T); return; }
      if (this.video.canPlayType(seg.type) === "") {
        this.seg = seg;
        this.failed();
        return;
      }
      if (seg !== this.seg) {
        this.seg = seg;
        this.shown = null;
        this.el.classList.remove("gap");
        this.note.textContent = "";
        this.video.src = seg.url;
        this.correctedAt = -Infinity;
        return; // loadedmetadata calls again
      }
      const video = this.video;
      if (video.error) { this.failed(); return; } // stays said until another segment
      this.el.classList.remove("gap");
      this.note.textContent = "";
      if (video.readyState < 1) return;
      const want = Math.max(0, Math.min(T - seg.start, Number.isFinite(video.duration) ? video.duration : Infinity));
      const drift = video.currentTime - want;
      if (!s.playing) {
        if (!video.paused) video.pause();
        if (Math.abs(drift) > STILL_S) video.currentTime = want;
      } else if (s.speed <= MAX_RATE) {
        if (video.playbackRate !== s.speed) video.playbackRate = s.speed;
        const settled = !video.seeking && nowMs - this.correctedAt > SETTLE_MS;
        if (Math.abs(drift) > DRIFT_S && (hard || settled)) {
          video.currentTime = want;
          this.correctedAt = nowMs;
        }
        if (video.paused && !video.ended) video.play().catch(() => {});
      } else {
        if (!video.paused) video.pause();
        if (hard || (nowMs - this.correctedAt >= STEP_MS && !video.seeking)) {
          video.currentTime = want;
          this.correctedAt = nowMs;
        }
      }
      this.caption(T, s);
    }

    caption(T, s) {
      if (!this.seg) return;
      const at = this.shown != null ? this.shown : this.seg.start + this.video.currentTime;
      const off = at - T;
      const text = t("trainer.video.frame", { time: clockText(at), offset: (off >= 0 ? "+" : "−") + num(Math.abs(off), 1) });
      this.state.textContent = s.playing && s.speed > MAX_RATE ? text + " · " + t("trainer.video.stills") : text;
    }

    // The server time the <video> is at (where it was told to go, while seeking).
    position() {
      return this.seg ? this.seg.start + this.video.currentTime : null;
    }

    close() {
      this.video.removeAttribute("src");
      this.video.load();
      this.el.remove();
    }
  }

  function select(stream) {
    if (!V.tiles.has(stream)) return false;
    V.selected = stream;
    for (const [name, tile] of V.tiles) {
      tile.el.classList.toggle("big", name === stream);
      tile.el.setAttribute("aria-pressed", String(name === stream));
    }
    return true;
  }

  // --- following the replay clock -----------------------------------------------------

  let last = null; // what the replay's state was at the previous tick
  function tick() {
    const tr = TR();
    if (!tr || tr.mode !== "replay" || !tr.state || !V.tiles.size) return;
    const s = tr.state;
    const T = tr.position();
    if (T == null) return;
    const now = { playing: s.playing, speed: s.speed, seeking: tr.seeking, seek: tr.lastSeek, position: s.position };
    const hard = !last || now.playing !== last.playing || now.speed !== last.speed
      || now.seeking !== last.seeking || now.seek !== last.seek
      || (!s.playing && now.position !== last.position);
    last = now;
    const nowMs = performance.now();
    for (const tile of V.tiles.values()) tile.sync(T, s, hard, nowMs);
  }

  V.position = (stream) => { const tile = V.tiles.get(stream); return tile ? tile.position() : null; };
  V.shown = (stream) => { const tile = V.tiles.get(stream); return tile ? tile.shown : null; };
  V.tick = tick;

  // --- in place of the live players --------------------------------------------------

  const replacement = {
    players: new Map(),
    sync(videos, labelOf) { // the picture's streams: their callsigns label the tiles
      for (const v of videos) V.labels.set(v.stream, labelOf(v));
      for (const tile of V.tiles.values()) tile.label();
    },
    open(entity) { return select(entity); }, // a drone's stream is named after it
  };

  function takeOver() {
    const live = window.cockpitVideo;
    if (live && live !== replacement && live.players) {
      for (const p of live.players.values()) p.close();
      live.players.clear();
    }
    window.cockpitVideo = replacement;
  }

  async function load() {
    const a = await C().request("GET", "/api/v1/replay/video");
    if (!a.ok) return;
    V.streams = a.body.streams || [];
    const box = document.getElementById("tr-video");
    for (const entry of V.streams) if (entry.segments.length) V.tiles.set(entry.stream, new Tile(entry, box));
    if (V.tiles.size) select(V.tiles.keys().next().value);
    tick();
  }

  function start() {
    const tr = TR();
    if (!window.cockpit || !C().cfg || !document.getElementById("tr-video") || !tr || !tr.mode) {
      setTimeout(start, 100);
      return;
    }
    if (tr.mode !== "replay") return; // live: the live players stay
    takeOver();
    load();
    setInterval(tick, TICK_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
