/* The side panel, drawn in the browser from the stores stream.js fills: alerts with
 * acknowledge, the selected entity with sparklines, the Einsatztagebuch with quick
 * entries. Writes go to the same REST routes as any client (the user is the session). */
(function () {
  "use strict";

  const H = "dash_html_components";
  const el = (type, props, children) => ({ namespace: H, type: type, props: Object.assign({}, props, children === undefined ? {} : { children: children }) });
  const C = () => window.cockpit;
  const t = (key, params) => C().t(key, params);
  const noUpdate = () => window.dash_clientside.no_update;

  // An age that tick() in stream.js keeps current once a second.
  function age(since, staleAfter) {
    const props = { className: "age", "data-since": String(since) };
    if (staleAfter) props["data-stale-after"] = String(staleAfter);
    const now = C().now();
    const stale = staleAfter && now - since > staleAfter;
    if (stale) props.className = "age stale";
    return el("Span", props, C().age(now - since));
  }

  function fmt(value) {
    if (typeof value !== "number") return String(value);
    const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
    return value.toLocaleString(C().cfg.lang === "de" ? "de-DE" : "en-GB", { maximumFractionDigits: digits });
  }

  // Five decimals: about a metre, what a crew can find on the ground.
  function coord(value) {
    return value.toLocaleString(C().cfg.lang === "de" ? "de-DE" : "en-GB", { minimumFractionDigits: 5, maximumFractionDigits: 5 });
  }

  const post = (url, body) => C().send("POST", url, body);

  // A known name in the page's language, else the name as it came.
  function label(key, fallback) {
    const text = t(key);
    return text === key ? fallback : text;
  }

  // The alert in the page's language: by rule and variant, else the fold's German text.
  function alertText(a) {
    let params = a.params || {};
    if (C().cfg.lang !== "de") {  // the fold writes numbers the German way: 35,9
      params = Object.fromEntries(Object.entries(params).map(([k, v]) => [k, /^-?\d+,\d+$/.test(v) ? v.replace(",", ".") : v]));
    }
    const variant = params.zone || params.state || params.kind;
    const key = "alert." + a.rule + (variant ? "." + variant : "");
    const text = t(key, params);
    return text === key ? a.text : text;
  }

  function triggered() {
    const ctx = window.dash_clientside.callback_context;
    const hit = (ctx.triggered || [])[0];
    if (!hit || !hit.value) return null; // a button drawn anew, not pressed
    return ctx.triggered_id;
  }

  const panels = {
    renderAlerts: function (alerts) {
      const cfg = C().cfg;
      if (!cfg) return noUpdate();
      if (!alerts || !alerts.length) return el("P", { className: "muted" }, t("alerts.none"));
      return alerts.map((a) => {
        const done = a.acknowledged_by;
        const action = done
          ? el("Span", { className: "acked" }, t("alerts.acked", { user: done }))
          : cfg.can_write
            ? el("Button", { id: { type: "ack", alert: a.id }, className: "btn ack", n_clicks: 0 }, t("alerts.ack"))
            : null;
        const props = { key: a.id, className: "alert sev-" + a.severity + (done ? " done" : "") + (a.active ? "" : " cleared"), "data-alert": a.id };
        if (a.entity) props["data-entity"] = a.entity;
        return el("Div", props, [
          el("Div", { className: "alert-head" }, [
            el("Span", { className: "sev" }, t("severity." + a.severity)),
            age(a.raised_at),
            a.active ? null : el("Span", { className: "muted" }, t("alerts.cleared")),
          ]),
          el("Div", { className: "alert-text" }, (a.who ? a.who + ": " : "") + alertText(a)),
          action,
        ]);
      });
    },

    // CAP warnings in force: what, how severe, until when, where (by name where a
    // warning names areas only by their codes).
    renderWarnings: function (warnings) {
      const cfg = C().cfg;
      if (!cfg) return noUpdate();
      if (!warnings || !warnings.length) return el("P", { className: "muted" }, t("warnings.none"));
      return warnings.map((w) => el("Div", { key: w.id, className: "warning cap-" + String(w.severity).toLowerCase(), "data-warning": w.id }, [
        el("Div", { className: "alert-head" }, [
          el("Span", { className: "sev" }, label("cap." + w.severity, w.severity)),
          w.expires ? el("Span", { className: "muted" }, t("warning.until", { time: C().time(Date.parse(w.expires) / 1000) })) : null,
        ]),
        el("Div", { className: "alert-text" }, w.label),
        w.places && w.places.length
          ? el("Div", { className: "places" }, t("warning.places", { names: w.places.slice(0, 20).join(", ") + (w.places.length > 20 ? " …" : "") }))
          : null,
      ]));
    },

    acknowledge: async function () {
      const id = triggered();
      if (!id || !id.alert) return noUpdate();
      const error = await post("/api/v1/alerts/" + encodeURIComponent(id.alert) + "/ack");
      return error ? t("alerts.ack_failed", { reason: error }) : "";
    },

    renderJournal: function (entries) {
      if (!C().cfg) return noUpdate();
      if (!entries || !entries.length) return el("P", { className: "muted" }, t("journal.empty"));
      return entries.map((j) => el("Div", { key: j.id, className: "entry cat-" + j.category, "data-entry": j.id }, [
        el("Span", { className: "when" }, C().time(j.t)),
        el("Span", { className: "author" }, j.author || t("system")),
        el("Span", { className: "text" }, j.text),
      ]));
    },

    writeJournal: async function (sendClicks, submits, quickClicks, text) {
      const id = triggered();
      if (!id) return [noUpdate(), noUpdate()];
      let entry = text;
      if (typeof id === "object" && id.type === "quick") entry = t("quick." + id.key);
      entry = (entry || "").trim();
      if (!entry) return [noUpdate(), noUpdate()];
      const error = await post("/api/v1/journal", { text: entry, category: "note" });
      if (error) return [t("journal.failed", { reason: error }), noUpdate()];
      return ["", typeof id === "object" ? noUpdate() : ""];
    },

    renderDetails: function (sel) {
      const hidden = { height: "150px", display: "none" };
      if (!C().cfg) return [noUpdate(), noUpdate(), noUpdate()];
      if (!sel) return [el("P", { className: "muted" }, t("details.none")), {}, hidden];
      const x = sel.item;
      if (sel.type === "detection") {
        return [el("Div", {}, [
          el("H3", {}, label("adler.cat." + x.category, x.category) + " · " + label("adler.state." + x.state, x.state)),
          el("P", {}, x.summary || ""),
          x.snapshot ? el("Img", { src: "/api/v1/files/" + x.snapshot, alt: x.summary || x.category, className: "snapshot" }) : null,
          el("P", { className: "muted" }, [age(x.updated_at)]),
        ]), {}, hidden];
      }
      const rows = [];
      const row = (label, value) => rows.push(el("Tr", {}, [el("Th", {}, label), el("Td", {}, value)]));
      row(t("details.kind"), t("kind." + x.kind));
      row(t("details.last"), [C().time(x.last_reported), " (", age(x.last_reported, sel.staleAfter), ")"]);
      if (x.lat != null) row(t("details.position"), coord(x.lat) + ", " + coord(x.lon));
      if (x.speed_mps != null) row(t("details.speed"), fmt(x.speed_mps * 3.6) + " km/h");
      if (x.status && x.status.battery_pct != null) row(t("details.battery"), fmt(x.status.battery_pct) + " %");
      if (x.status && x.status.link) row(t("details.link"), label("link." + x.status.link, x.status.link));
      for (const [name, r] of Object.entries(x.readings || {})) {
        row(label("reading." + name, name), [fmt(r.value) + " " + (r.unit || "") + " · ", age(r.observed_at, sel.staleAfter)]);
      }
      const stale = C().now() - x.last_reported > sel.staleAfter;
      const body = el("Div", {}, [
        el("Div", { className: "details-head" }, [
          el("Img", { src: "/assets/symbols/" + sel.symbol, alt: "", className: "details-sym" }),
          el("H3", {}, x.callsign || x.id),
          stale ? el("Span", { className: "badge stale" }, t("details.stale")) : null,
        ]),
        el("Table", { className: "facts" }, el("Tbody", {}, rows)),
      ]);
      // Sparklines: one small chart per numeric reading, values seen since the page opened.
      const names = Object.keys(sel.history || {}).filter((n) => (sel.history[n] || []).length > 1).slice(0, 4);
      if (!names.length) return [body, {}, hidden];
      const data = names.map((n, i) => ({
        type: "scatter", mode: "lines", name: label("reading." + n, n), line: { width: 2 },
        x: sel.history[n].map((p) => new Date(p[0] * 1000)), y: sel.history[n].map((p) => p[1]),
        xaxis: "x", yaxis: i ? "y" + (i + 1) : "y", hoverinfo: "skip",
      }));
      const layout = {
        margin: { l: 44, r: 8, t: 4, b: 22 }, showlegend: false, height: 40 * names.length + 40,
        xaxis: { tickformat: "%H:%M:%S", showgrid: false, nticks: 4 },
        grid: { rows: names.length, columns: 1, pattern: "coupled" },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { size: 11 },
        annotations: names.map((n, i) => ({ text: label("reading." + n, n), xref: "paper", yref: (i ? "y" + (i + 1) : "y") + " domain", x: 0.01, y: 1, showarrow: false, xanchor: "left", yanchor: "top", font: { size: 11 } })),
      };
      return [body, { data: data, layout: layout }, { height: layout.height + "px", display: "block" }];
    },

    toggleLanguage: function () {
      const next = C().cfg.lang === "de" ? "en" : "de";
      document.cookie = "cockpit_lang=" + next + "; path=/; max-age=31536000; samesite=lax";
      window.location.reload();
      return noUpdate();
    },

    logout: async function () {
      await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" });
      window.location.href = "/login";
      return noUpdate();
    },
  };

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.cockpit = panels;
  window.cockpitAlertText = alertText; // the wall's ticker words alerts the same way
})();
