// linnix dashboard: the charts, drawn with uPlot. The overview's from /ui/host.json, a
// process's from its /ui/processes/PID/history.json (the page's data-chart-source), and an
// incident's from its values.json (data-values-url).
// No inline script anywhere (the Content-Security-Policy forbids it): this file finds its
// charts by their data-chart and data-values attributes and refreshes them.
(function () {
  "use strict";

  // ---- what every chart shares ----

  function width(el) { return Math.max(240, el.clientWidth || 300); }

  // a legend's value: "—" when not measured (null), else with `digits` decimals (none
  // from `whole` up, when given)
  function shown(digits, whole) {
    return function (u, v) {
      if (v == null) { return "—"; }
      return whole && Math.abs(v) >= whole ? v.toFixed(0) : v.toFixed(digits);
    };
  }

  // the JSON at `url` to `draw`; a 401 sends the browser to sign in, a 404 calls `gone`
  // (when given); any other failure waits for the next round
  function fetchJson(url, draw, gone) {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/ui/signin"); return null; }
        if (r.status === 404 && gone) { gone(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (data) { if (data) { draw(data); } })
      .catch(function () { /* the next round tries again */ });
  }

  // every chart drawn, resized with the window: {el, plot, height}
  var sized = [];
  window.addEventListener("resize", function () {
    sized.forEach(function (c) { c.plot.setSize({ width: width(c.el), height: c.height }); });
  });

  // a chart's options: its size, its y axis's width, its series (after the time's)
  function options(el, height, axis, series) {
    return { width: width(el), height: height, series: [{}].concat(series),
             axes: [{}, { size: axis }], legend: { show: true } };
  }

  // the chart drawn in `el`, resized with the window from now on
  function drawn(el, opts, columns) {
    var made = new uPlot(opts, columns, el);
    sized.push({ el: el, plot: made, height: opts.height });
    return made;
  }

  // ---- the host's and a process's charts ----

  function hostCharts() {
    var EVERY_MS = 5000;
    var CHARTS = {
      cpu: [["cpu_pct", "CPU %", "#0969da"]],
      memory: [["mem_used_pct", "Memory %", "#8250df"]],
      pressure: [["psi_cpu_some", "CPU some", "#0969da"], ["psi_mem_some", "Memory some", "#8250df"],
                 ["psi_mem_full", "Memory full", "#bf3989"], ["psi_io_some", "I/O some", "#1a7f37"],
                 ["psi_io_full", "I/O full", "#9a6700"]],
      process_cpu: [["cpu_pct", "CPU %", "#0969da"]],
      process_rss: [["rss_mb", "RSS MB", "#8250df"]]
    };
    var plots = {};
    if (!document.querySelector("[data-chart]")) { return; }  // no host chart on this page
    // where the page's charts come from: the host's, unless the page names its own (a
    // process's page; "" when nothing is kept for it: the charts stay empty, nothing is fetched)
    var holder = document.querySelector("[data-chart-source]");
    var source = holder ? holder.getAttribute("data-chart-source") : "/ui/host.json";
    if (source && source.indexOf("/ui/") !== 0) { source = ""; }
    var timer = null;

    function columns(data, spec) {
      var out = [data.t || []];
      spec.forEach(function (s) { out.push(data[s[0]] || []); });
      return out;
    }

    function make(el, name, data) {
      var series = CHARTS[name].map(function (s) {
        return { label: s[1], stroke: s[2], width: 1.5, spanGaps: false, value: shown(1) };
      });
      var opts = options(el, 200, 44, series);
      opts.scales = { y: { range: function (u, lo, hi) { return [0, Math.max(10, hi || 0)]; } } };
      return drawn(el, opts, columns(data, CHARTS[name]));
    }

    function draw(data) {
      document.querySelectorAll("[data-chart]").forEach(function (fig) {
        var name = fig.getAttribute("data-chart");
        var el = fig.querySelector(".plot");
        if (!CHARTS[name] || !el) { return; }
        if (plots[name]) { plots[name].setData(columns(data, CHARTS[name])); }
        else { plots[name] = make(el, name, data); }
      });
    }

    // the process has exited (its samples are no more): keep what is drawn, say so
    function ended() {
      if (timer !== null) { clearInterval(timer); timer = null; }
      if (Object.keys(plots).length === 0) { draw({}); }
      var note = document.querySelector("[data-chart-note]");
      if (note) { note.textContent = "No more samples: the process has exited."; }
    }

    function refresh() {
      if (!source) { draw({}); return; }
      fetchJson(source, draw, holder ? ended : null);
    }

    refresh();
    if (source) { timer = setInterval(refresh, EVERY_MS); }
  }

  // ---- an incident's charts ----

  // one per name its rule's condition read, drawn from the incident's values.json (the
  // values before it opened, then while it was open), fetched again every
  // data-values-every seconds while the incident is open
  function incidentCharts() {
    var box = document.querySelector("[data-values-url]");
    if (!box || typeof uPlot === "undefined") { return; }
    var url = box.getAttribute("data-values-url");
    var every = parseInt(box.getAttribute("data-values-every") || "0", 10);
    var plots = [];

    function columns(data, name) {
      var s = (data.names || {})[name] || {};
      return [data.t || [], s.before || [], s.open || []];
    }

    function make(el, data, name) {
      var opts = options(el, 180, 50, [
        { label: "before it opened", stroke: "#9a6700", width: 1.5, value: shown(2, 100) },
        { label: "while open", stroke: "#cf222e", width: 1.5, value: shown(2, 100) }]);
      return drawn(el, opts, columns(data, name));
    }

    function draw(data) {
      box.querySelectorAll("[data-values]").forEach(function (fig) {
        var name = fig.getAttribute("data-values");
        var el = fig.querySelector(".plot");
        if (!el) { return; }
        var found = plots.filter(function (p) { return p.el === el; })[0];
        if (found) { found.plot.setData(columns(data, name)); }
        else { plots.push({ el: el, plot: make(el, data, name) }); }
      });
    }

    function load() { fetchJson(url, draw, null); }

    load();
    if (every > 0) { setInterval(load, every * 1000); }
  }

  hostCharts();
  incidentCharts();
})();
