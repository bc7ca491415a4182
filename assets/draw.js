/* Marking a hazard on the map (roles that may write): the button arms the map, the next
 * tap places the hazard's source (its danger area and downwind sector follow from the
 * server's rules); a drawn hazard's pop-up lifts it again. Same REST routes as any client. */
(function () {
  "use strict";

  const C = () => window.cockpit;
  let armed = false;
  let button = null;

  const send = (method, url, body) => C().send(method, url, body);

  function report(error) {
    if (error) window.alert(C().t("hazard.failed", { reason: error }));
  }

  function arm(on) {
    armed = on;
    button.textContent = C().t(on ? "hazard.cancel" : "hazard.draw");
    button.classList.toggle("armed", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    window.cockpitLive.map.getContainer().classList.toggle("placing", on);
    const hint = document.getElementById("hazard-hint");
    if (hint) hint.hidden = !on;
  }

  function place(ev) {
    if (!armed) return;
    arm(false);
    const geometry = { type: "Point", coordinates: [ev.latlng.lng, ev.latlng.lat] };
    send("POST", "/api/v1/hazards", { label: C().t("hazard.default_label"), severity: "critical", geometry: geometry }).then(report);
  }

  function install(map) {
    const Control = L.Control.extend({
      options: { position: "topleft" },
      onAdd: function () {
        const box = L.DomUtil.create("div", "leaflet-bar hazard-draw");
        button = L.DomUtil.create("button", "btn hazard-btn", box);
        button.type = "button";
        button.id = "hazard-draw";
        const hint = L.DomUtil.create("div", "hazard-hint", box);
        hint.id = "hazard-hint";
        hint.hidden = true;
        hint.textContent = C().t("hazard.placing");
        L.DomEvent.disableClickPropagation(box);
        L.DomEvent.on(button, "click", () => arm(!armed));
        return box;
      },
    });
    new Control().addTo(map);
    arm(false);
    map.on("click", place);
  }

  // A drawn hazard's pop-up: its label and, for writers, a button that lifts it.
  function popup(p) {
    const box = document.createElement("div");
    box.className = "hazard-popup";
    const title = document.createElement("div");
    title.textContent = C().t("hazard.area") + (p.label ? ": " + p.label : "");
    box.appendChild(title);
    if (C().cfg && C().cfg.can_write) {
      const lift = document.createElement("button");
      lift.type = "button";
      lift.className = "btn hazard-lift";
      lift.textContent = C().t("hazard.lift");
      lift.addEventListener("click", () => {
        window.cockpitLive.map.closePopup();
        send("DELETE", "/api/v1/hazards/" + encodeURIComponent(p.id)).then(report);
      });
      box.appendChild(lift);
    }
    return box;
  }

  window.cockpitDraw = { popup: popup };

  // The map and the page's configuration arrive after this script: wait for both.
  (function wait() {
    const live = window.cockpitLive;
    const c = window.cockpit;
    if (!live || !live.map || !c || !c.cfg || !window.L) { setTimeout(wait, 50); return; }
    if (c.cfg.can_write) install(live.map);
  })();
})();
