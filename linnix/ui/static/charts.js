// linnix dashboard: the overview's charts, drawn with uPlot from /ui/host.json, and a
// process's, from its /ui/processes/PID/history.json (the page's data-chart-source).
// No inline script anywhere (the Content-Security-Policy forbids it): this file finds its
// charts by their data-chart attribute and refreshes them every few seconds.
(function () {
  "use strict";
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

  function width(el) { return Math.max(240, el.clientWidth || 300); }

  function columns(data, spec) {
    var out = [data.t || []];
    spec.forEach(function (s) { out.push(data[s[0]] || []); });
    return out;
  }

  function make(el, name, data) {
    var spec = CHARTS[name];
    var series = [{}];
    spec.forEach(function (s) {
      series.push({ label: s[1], stroke: s[2], width: 1.5, spanGaps: false,
                    value: function (u, v) { return v == null ? "—" : v.toFixed(1); } });
    });
    var opts = { width: width(el), height: 200, series: series,
                 scales: { y: { range: function (u, lo, hi) { return [0, Math.max(10, hi || 0)]; } } },
                 axes: [{}, { size: 44 }], legend: { show: true } };
    return new uPlot(opts, columns(data, spec), el);
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
    fetch(source, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/ui/signin"); return null; }
        if (r.status === 404 && holder) { ended(); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (data) { if (data) { draw(data); } })
      .catch(function () { /* the next round tries again */ });
  }

  window.addEventListener("resize", function () {
    Object.keys(plots).forEach(function (name) {
      var el = document.querySelector("[data-chart=" + name + "] .plot");
      if (el) { plots[name].setSize({ width: width(el), height: 200 }); }
    });
  });
  refresh();
  if (source) { timer = setInterval(refresh, EVERY_MS); }
})();

// An incident's charts: one per name its rule's condition read, drawn from the
// incident's values.json (the values before it opened, then while it was open), fetched
// again every data-values-every seconds while the incident is open.
(function () {
  "use strict";
  var box = document.querySelector("[data-values-url]");
  if (!box || typeof uPlot === "undefined") { return; }
  var url = box.getAttribute("data-values-url");
  var every = parseInt(box.getAttribute("data-values-every") || "0", 10);
  var plots = [];

  function width(el) { return Math.max(240, el.clientWidth || 300); }

  function shown(u, v) {
    if (v == null) { return "—"; }
    return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2);
  }

  function columns(data, name) {
    var s = (data.names || {})[name] || {};
    return [data.t || [], s.before || [], s.open || []];
  }

  function make(el, data, name) {
    var opts = { width: width(el), height: 180, legend: { show: true }, axes: [{}, { size: 50 }],
                 series: [{}, { label: "before it opened", stroke: "#9a6700", width: 1.5, value: shown },
                          { label: "while open", stroke: "#cf222e", width: 1.5, value: shown }] };
    return new uPlot(opts, columns(data, name), el);
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

  function load() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/ui/signin"); return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (data) { if (data) { draw(data); } })
      .catch(function () { /* the next round tries again */ });
  }

  window.addEventListener("resize", function () {
    plots.forEach(function (p) { p.plot.setSize({ width: width(p.el), height: 180 }); });
  });
  load();
  if (every > 0) { setInterval(load, every * 1000); }
})();
