// Fleetjobs console: the little the pages need beyond HTML and htmx. No inline scripts
// anywhere (the content security policy refuses them), so everything is wired here.
(function () {
  "use strict";

  // Live regions: <el data-sse="URL" data-sse-event="NAME"> gets its contents replaced by each
  // NAME event (server-rendered, escaped HTML). The page's [data-live] badge shows the state.
  function startLive(el) {
    var badge = document.querySelector("[data-live]");
    var setState = function (s) { if (badge) { badge.setAttribute("data-live", s); } };
    var source = new EventSource(el.getAttribute("data-sse"));
    source.addEventListener("open", function () { setState("open"); });
    var prepend = el.getAttribute("data-sse-mode") === "prepend";
    source.addEventListener(el.getAttribute("data-sse-event") || "message", function (e) {
      if (prepend) {
        // A log: newest first, at most 200 entries kept.
        el.insertAdjacentHTML("afterbegin", e.data);
        while (el.children.length > 200) { el.removeChild(el.lastElementChild); }
      } else {
        el.innerHTML = e.data;
      }
      el.setAttribute("data-updated", String(Date.now()));
      setState("open");
    });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        // Refused. Signed out or expired: reload, and the sign-in page says so. Otherwise
        // (too many live pages open) the badge says "closed" and the page stays as it is.
        setState("closed");
        fetch(window.location.href, { headers: { "HX-Request": "true" }, redirect: "manual" })
          .then(function (r) { if (r.status === 401) { window.location.reload(); } });
      } else {
        setState("connecting");
      }
    });
  }

  function init() {
    document.querySelectorAll("[data-sse]").forEach(startLive);

    // Filters apply as soon as a choice changes. Delegated: a live region's re-render
    // replaces its filter's <select>, which a listener on the element would not follow.
    document.addEventListener("change", function (e) {
      var s = e.target;
      if (s && s.matches && s.matches("select[data-autosubmit]") && s.form) { s.form.requestSubmit(); }
    });

    // Destructive forms ask first.
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) { e.preventDefault(); }
      });
    });

    // A job document file is read into the JSON field (no upload of its own).
    document.querySelectorAll("input[type=file][data-load-into]").forEach(function (input) {
      input.addEventListener("change", function () {
        var file = input.files && input.files[0];
        var target = document.getElementById(input.getAttribute("data-load-into"));
        if (!file || !target) { return; }
        file.text().then(function (text) {
          target.value = text;
          target.dispatchEvent(new Event("input", { bubbles: true }));
        });
      });
    });

    // Create job: a search result's button adds its name to the things or thing groups (once);
    // Enter in the search box searches instead of submitting the form.
    document.addEventListener("click", function (e) {
      var b = e.target.closest && e.target.closest("button[data-add-target]");
      if (!b || !b.form) { return; }
      var field = b.form.elements[b.getAttribute("data-add-target")];
      var name = b.getAttribute("data-name");
      if (!field || !name) { return; }
      var names = field.value.split(/[\s,]+/).filter(function (n) { return n; });
      if (names.indexOf(name) < 0) { names.push(name); }
      field.value = names.join("\n");
      field.dispatchEvent(new Event("input", { bubbles: true }));
      b.setAttribute("data-added", "yes");
    });
    document.querySelectorAll("input[data-no-enter]").forEach(function (input) {
      input.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); } });
    });

    // The document is checked as it is typed (the server checks it again).
    var doc = document.getElementById("document");
    var check = document.getElementById("document-check");
    if (doc && check) {
      var validate = function () {
        if (!doc.value.trim()) { check.textContent = ""; check.className = "hint"; return; }
        try {
          var v = JSON.parse(doc.value);
          var ok = v !== null && typeof v === "object" && !Array.isArray(v);
          check.textContent = ok ? "Valid JSON object." : "A job document must be a JSON object.";
          check.className = ok ? "hint ok" : "hint bad";
        } catch (err) {
          check.textContent = "Not valid JSON: " + err.message;
          check.className = "hint bad";
        }
      };
      doc.addEventListener("input", validate);
      validate();
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
