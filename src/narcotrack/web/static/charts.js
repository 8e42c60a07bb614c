/* Draw every Vega-Lite chart of the page: elements with a data-spec (the spec as JSON) or a data-spec-url.
   vega, vega-lite and vega-embed are served by narcotrack itself (static/vendor); specs carry their data
   inline, so drawing fetches nothing. A chart that cannot be drawn says so in its place; nothing throws. */
(function () {
  "use strict";
  var OPTIONS = { actions: false, renderer: "svg" };

  function fail(el, err) {
    el.setAttribute("data-chart-error", String(err && err.message ? err.message : err));
    el.textContent = el.getAttribute("data-error-text") || "The chart could not be drawn.";
    if (window.console && console.warn) { console.warn("chart:", err); }
  }

  function embed(el, spec) {
    try {
      window.vegaEmbed(el, spec, OPTIONS).then(function () {
        el.setAttribute("data-chart-ready", "1");
      }).catch(function (err) { fail(el, err); });
    } catch (err) { fail(el, err); }
  }

  function draw(el) {
    if (typeof window.vegaEmbed !== "function") { fail(el, "vega-embed is not loaded"); return; }
    var inline = el.getAttribute("data-spec");
    if (inline) {
      var spec;
      try { spec = JSON.parse(inline); } catch (err) { fail(el, err); return; }
      embed(el, spec);
      return;
    }
    var url = el.getAttribute("data-spec-url");
    if (!url || !window.fetch) { return; }
    window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (spec) { embed(el, spec); })
      .catch(function (err) { fail(el, err); });
  }

  function start() {
    var nodes = document.querySelectorAll("[data-spec], [data-spec-url]");
    for (var i = 0; i < nodes.length; i++) { draw(nodes[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
