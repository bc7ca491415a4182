/* Exercise mode (`cockpit replay RECORDING --as-live`). Every page of an exercise server
 * says so all the time: a yellow frame round the screen and "ÜBUNG" in the header with
 * the recording's name and whether it runs, so nobody takes it for a real incident,
 * least of all a wall display read from across the room. On /trainer this file also
 * drives the trainer's card: pause and go on, skip ahead, inject a journal entry or an
 * alert. Does nothing on other servers.
 */
(function () {
  "use strict";

  const POLL_MS = 2000;
  const SKIP_S = 300;

  const EX = { state: null };
  window.cockpitExercise = EX;

  const C = () => window.cockpit;
  const t = (key, params) => C().t(key, params);
  const $ = (id) => document.getElementById(id);
  const onTrainer = () => location.pathname.replace(/\/+$/, "") === "/trainer";

  function clockText(sec) {
    const lang = C().cfg.lang === "de" ? "de-DE" : "en-GB";
    return new Date(sec * 1000).toLocaleString(lang, { hour12: false });
  }

  function stateWord(s) {
    if (!s) return "";
    if (s.ended) return t("exercise.ended");
    return s.playing ? t("exercise.running") : t("exercise.paused");
  }

  function mark() {
    document.body.classList.add("exercise");
    const header = document.querySelector("header");
    if (header && !$("exercise-tag")) {
      const tag = document.createElement("div");
      tag.id = "exercise-tag";
      tag.className = "exercise-tag";
      tag.setAttribute("role", "status");
      header.insertBefore(tag, header.firstChild);
    }
    const tag = $("exercise-tag");
    if (!tag) return;
    const s = EX.state;
    const parts = [t("exercise.tag")];
    // The state before the name: a narrow header cuts the end, never "angehalten".
    if (s) parts.push(stateWord(s), t("exercise.of", { incident: s.recorded_incident }));
    const text = parts.join(" · ");
    if (tag.textContent !== text) tag.textContent = text;
    tag.classList.toggle("paused", !!(s && !s.playing));
  }

  function card() {
    const box = $("ex-card");
    if (!box) return;
    box.hidden = false;
    const s = EX.state;
    const line = $("ex-state");
    if (line && s) {
      line.textContent = t("exercise.position") + " " + clockText(s.position) + " · " + stateWord(s)
        + " · " + t("exercise.played", { n: String(s.played) });
    }
    const drive = !!C().cfg.can_drive;
    const set = (id, off) => { const el = $(id); if (el) el.disabled = off; };
    set("ex-pause", !drive || !s || !s.playing);
    set("ex-play", !drive || !s || s.playing || s.ended);
    set("ex-skip", !drive || !s || s.ended);
    for (const id of ["ex-kind", "ex-severity", "ex-text", "ex-send"]) set(id, !drive);
  }

  function said(text) {
    const el = $("ex-said");
    if (el) el.textContent = text || "";
  }

  async function read() {
    const a = await C().request("GET", "/api/v1/exercise");
    if (a.ok) EX.state = a.body;
    mark();
    if (onTrainer()) card();
  }

  async function control(path, body) {
    const a = await C().request("POST", "/api/v1/exercise/" + path, body || {});
    if (!a.ok) said(t("trainer.failed", { reason: a.reason }));
    else { said(""); EX.state = a.body; mark(); card(); }
  }

  async function inject() {
    const text = ($("ex-text").value || "").trim();
    if (!text) { $("ex-text").focus(); return; }
    const body = { kind: $("ex-kind").value, text: text };
    if (body.kind === "alert") body.severity = $("ex-severity").value;
    const a = await C().request("POST", "/api/v1/exercise/inject", body);
    if (!a.ok) { said(t("trainer.failed", { reason: a.reason })); return; }
    $("ex-text").value = "";
    said(t("exercise.injected", { text: text }));
  }

  function wire() {
    const on = (id, fn) => { const el = $(id); if (el) el.addEventListener("click", fn); };
    on("ex-pause", () => control("pause"));
    on("ex-play", () => control("play"));
    on("ex-skip", () => {
      const s = EX.state;
      if (s) control("skip", { t: Math.min(s.end, s.position + SKIP_S) });
    });
    on("ex-send", inject);
    const text = $("ex-text");
    if (text) text.addEventListener("keydown", (e) => { if (e.key === "Enter") inject(); });
  }

  function start() {
    const c = C();
    if (!c || !c.cfg || !document.querySelector("header")) { setTimeout(start, 50); return; }
    if (!c.cfg.exercise) return;
    mark();
    if (onTrainer()) wire();
    read();
    setInterval(read, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
