/* Palermo officer console: live arrival on the inbox page (server-sent events).
 * Served by the node; no inline script anywhere (the Content-Security-Policy forbids it).
 * An "arrival" event carries only a report id and whether it is urgent: the rows are fetched
 * again through the normal, role-checked handler with the filters the officer chose. */
(function () {
  "use strict";
  var rows = document.getElementById("inbox-rows");
  var form = document.querySelector("form.filters");
  if (!rows || !form || !window.EventSource) {
    return;
  }
  var live = document.getElementById("live");
  var source = new EventSource(rows.getAttribute("data-events"));

  function refresh() {
    // POSTed with the officer's filters and the form's CSRF token: search terms stay out of
    // URLs (the server's handler for the rows is the same role-checked one). X-Palermo-Live:
    // a refresh the page made by itself does not count as activity for the idle timeout.
    return window.htmx.ajax("POST", "/inbox/rows", {
      source: form,
      headers: { "X-Palermo-Live": "1" },
      values: Object.fromEntries(new FormData(form)),
      target: "#inbox-rows",
      swap: "innerHTML"
    });
  }

  source.addEventListener("open", function () {
    rows.setAttribute("data-live", "connected");
  });
  source.addEventListener("arrival", function (event) {
    var data = JSON.parse(event.data);
    refresh().then(function () {
      if (live) {
        live.textContent = data.urgent ? "An urgent report arrived." : "A report arrived.";
      }
      var row = rows.querySelector('tr[data-report="' + data.id.replace(/[^0-9a-f-]/g, "") + '"]');
      if (row) {
        row.classList.add("arrived");
      }
    });
  });
  window.addEventListener("pagehide", function () {
    source.close();
  });
})();
