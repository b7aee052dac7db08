// linnix dashboard: live parts refreshed by server push.
// A page's live parts are the elements with data-live-events="alert action ...": each is
// fetched again by htmx (its hx-trigger has "linnix-live") when an event of a kind it
// lists comes on /ui/events.  The server says only that something changed (a count per
// kind), so nothing of what it sends is ever read as markup.  Every push passes through
// one document event, "linnix-push", which is debounced per part: a burst of events is
// one fetch.  The browser reconnects by itself after a stream that ended; after a
// refusal (not signed in, too many streams) this script tries again, backing off.
// Meanwhile each part's slow poll keeps it fresh and #live-status says updates paused.
// A hidden tab holds no stream (a browser opens few connections to one server at once)
// and catches up when it is shown again.  No inline script anywhere, no eval.
(function () {
  "use strict";
  var DEBOUNCE_MS = 300;
  var BACKOFF_MS = [2000, 5000, 10000, 30000];
  var KINDS = ["alert", "action", "incident", "pause"];
  var parts = Array.prototype.slice.call(document.querySelectorAll("[data-live-events]"));
  var status = document.getElementById("live-status");
  var source = null;
  var failures = 0;
  var retry = null;
  var missed = false;  // the stream was down: something may have changed meanwhile

  if (!parts.length) { return; }

  function paused(yes) { if (status) { status.hidden = !yes; } }

  function refresh(part) {
    if (part.linnixTimer) { return; }  // a fetch is already due: it will show this too
    part.linnixTimer = setTimeout(function () {
      part.linnixTimer = null;
      if (window.htmx) { window.htmx.trigger(part, "linnix-live"); }
    }, DEBOUNCE_MS);
  }

  document.addEventListener("linnix-push", function (e) {
    var kind = e.detail || "*";
    parts.forEach(function (part) {
      var wants = (part.getAttribute("data-live-events") || "").split(/\s+/);
      if (kind === "*" || wants.indexOf(kind) >= 0) { refresh(part); }
    });
  });

  function push(kind) {
    document.dispatchEvent(new CustomEvent("linnix-push", { detail: kind }));
  }

  function stop() {
    if (source) { source.close(); source = null; }
  }

  function later() {
    missed = true;
    paused(true);
    if (retry === null) {
      retry = setTimeout(connect, BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]);
      failures += 1;
    }
  }

  function connect() {
    retry = null;
    if (source || document.visibilityState === "hidden" || !window.EventSource) { return; }
    source = new EventSource("/ui/events");
    source.addEventListener("open", function () {
      failures = 0;
      paused(false);
      if (missed) { missed = false; push("*"); }
    });
    KINDS.forEach(function (kind) {
      source.addEventListener(kind, function () { push(kind); });
    });
    source.addEventListener("missed", function () { push("*"); });  // the server lost some
    source.addEventListener("ended", function () {  // signed out, idle, revoked
      stop();
      window.location.assign("/ui/signin");
    });
    source.addEventListener("busy", function () { stop(); later(); });
    source.addEventListener("error", function () {
      missed = true;
      paused(true);
      // refused (401, 503): the browser gives up, so this script tries again; otherwise
      // the browser reconnects by itself
      if (source && source.readyState === EventSource.CLOSED) { stop(); later(); }
    });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") {
      if (source) { stop(); missed = true; }
    } else {
      connect();
    }
  });
  window.addEventListener("pagehide", stop);
  connect();
})();
