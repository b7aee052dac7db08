// linnix dashboard: the process tree's branches, fetched by htmx when they are opened.
// A branch (or a "more" row) whose process has exited since the page was drawn answers
// 404 with a line that says so: it is shown in place of the branch's contents rather
// than taken for an error (htmx would leave the branch empty).  What is swapped in is
// HTML the server rendered and escaped.  No inline script anywhere, no eval.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (e) {
    var d = e.detail;
    var from = d.requestConfig && d.requestConfig.elt;
    if (d.xhr && d.xhr.status === 404 && from && from.closest && from.closest("#tree")) {
      d.shouldSwap = true;
      d.isError = false;
    }
  });
})();
