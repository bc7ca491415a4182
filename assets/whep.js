/* Video tiles: one WHEP player per live stream, with the picture's age.
 *
 * The server forwards each drone's packets unchanged (cockpit/media); this page asks for
 * a stream with an SDP offer (POST /whep/<stream>, the session cookie identifies the
 * user) and plays the answer in a <video>. Every presented frame is timed
 * (requestVideoFrameCallback), so the tile says how old its picture is ("Bild 0,3 s alt")
 * and turns STALE when frames stop. Players reconnect by themselves with backoff. */
(function () {
  "use strict";

  const STALE_S = 2.0;
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 10000;
  const players = new Map(); // stream -> player

  const now = () => (performance.timeOrigin + performance.now()) / 1000;
  const t = (key, params) => (window.cockpit ? window.cockpit.t(key, params) : key);

  function waitIce(pc) {
    // The server takes no trickled candidates (WHIP/WHEP without PATCH): send them all.
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (pc.iceGatheringState === "complete") { pc.removeEventListener("icegatheringstatechange", done); resolve(); } };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 2000); // loopback and LAN gather in milliseconds; don't hang
    });
  }

  function fmtAge(s) {
    const lang = (window.cockpit && window.cockpit.cfg && window.cockpit.cfg.lang) || "de";
    return s.toLocaleString(lang === "de" ? "de-DE" : "en-GB", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  }

  class Player {
    constructor(stream, label, container) {
      this.stream = stream;
      this.retry = RETRY_MIN_MS;
      this.lastFrame = null; // browser time the last frame arrived
      this.frames = 0;
      this.closed = false;
      this.el = document.createElement("figure");
      this.el.className = "video-tile connecting";
      this.el.dataset.stream = stream;
      this.video = document.createElement("video");
      Object.assign(this.video, { muted: true, autoplay: true, playsInline: true });
      this.video.setAttribute("aria-label", label);
      this.caption = document.createElement("figcaption");
      this.name = document.createElement("span");
      this.name.className = "name";
      this.age = document.createElement("span");
      this.age.className = "frame-age";
      this.caption.append(this.name, this.age);
      this.el.append(this.video, this.caption);
      this.el.addEventListener("click", () => this.el.classList.toggle("big"));
      this.setLabel(label);
      container.append(this.el);
      this.watchFrames();
      this.connect();
    }

    setLabel(label) { this.name.textContent = label; }

    watchFrames() {
      if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
      const onFrame = (_when, meta) => {
        if (this.closed) return;
        // receiveTime: when the frame's last packet arrived (WebRTC), on the page clock.
        const arrived = meta && meta.receiveTime ? (performance.timeOrigin + meta.receiveTime) / 1000 : now();
        this.lastFrame = arrived;
        this.frames += 1;
        this.video.requestVideoFrameCallback(onFrame);
      };
      this.video.requestVideoFrameCallback(onFrame);
    }

    async connect() {
      if (this.closed) return;
      this.el.className = this.el.className.replace(/\b(live|stale|failed)\b/g, "").trim() + " connecting";
      const pc = new RTCPeerConnection({ iceServers: [] });
      this.pc = pc;
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.ontrack = (ev) => { this.video.srcObject = ev.streams[0] || new MediaStream([ev.track]); };
      pc.onconnectionstatechange = () => {
        if (pc !== this.pc) return;
        if (pc.connectionState === "failed" || pc.connectionState === "closed") this.again();
      };
      try {
        await pc.setLocalDescription(await pc.createOffer());
        await waitIce(pc);
        // The media process's own route, or an SFU's behind the proxy (video_whep_url).
        const cfg = (window.cockpit && window.cockpit.cfg) || {};
        const url = (cfg.whep_url || "/whep/{stream}").replace("{stream}", encodeURIComponent(this.stream));
        const r = await fetch(url, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/sdp" }, body: pc.localDescription.sdp,
        });
        if (r.status !== 201) throw new Error("WHEP " + r.status);
        const where = r.headers.get("Location");
        // Relative to the URL it answered (an SFU's may be), not to the page.
        this.location = where ? new URL(where, new URL(url, window.location.href)).href : null;
        await pc.setRemoteDescription({ type: "answer", sdp: await r.text() });
        this.retry = RETRY_MIN_MS;
      } catch (err) {
        this.again();
      }
    }

    again() {
      if (this.closed || this.timer) return;
      this.hangUp();
      const delay = this.retry * (0.75 + Math.random() * 0.5);
      this.retry = Math.min(this.retry * 2, RETRY_MAX_MS);
      this.timer = setTimeout(() => { this.timer = null; this.connect(); }, delay);
    }

    hangUp() {
      if (this.pc) { this.pc.close(); this.pc = null; }
      if (this.location) {
        fetch(this.location, { method: "DELETE", credentials: "same-origin", keepalive: true }).catch(() => {});
        this.location = null;
      }
    }

    tick() {
      const age = this.lastFrame == null ? null : Math.max(0, now() - this.lastFrame);
      const stale = age == null || age > STALE_S;
      this.el.classList.toggle("stale", stale && this.frames > 0);
      this.el.classList.toggle("live", !stale);
      this.el.classList.toggle("connecting", this.frames === 0);
      this.age.textContent = age == null
        ? t("video.waiting")
        : stale ? t("video.stale", { age: fmtAge(age) }) : t("video.age", { age: fmtAge(age) });
    }

    close() {
      this.closed = true;
      clearTimeout(this.timer);
      this.hangUp();
      this.el.remove();
    }
  }

  // Called by stream.js with the picture's videos and a label function.
  function sync(videos, labelOf) {
    const container = document.getElementById("video-tiles");
    if (!container) return;
    const wanted = new Map();
    for (const v of videos) if (v.live) wanted.set(v.stream, v);
    for (const [stream, player] of players) {
      if (!wanted.has(stream)) { player.close(); players.delete(stream); }
    }
    for (const [stream, v] of wanted) {
      const label = labelOf(v);
      const player = players.get(stream);
      if (player) player.setLabel(label);
      else players.set(stream, new Player(stream, label, container));
    }
  }

  // A drone's stream is named after the drone (its entity id).
  function open(entity) {
    const player = players.get(entity);
    if (!player) return false;
    player.el.classList.add("big");
    player.el.scrollIntoView({ block: "nearest" });
    return true;
  }

  setInterval(() => { for (const p of players.values()) p.tick(); }, 250);
  window.cockpitVideo = { sync, open, players };
})();
