// Theme toggle. Purely cosmetic: every page works without JavaScript.
(function () {
  "use strict";
  var root = document.documentElement;
  var key = "lindenbrook-theme";

  function stored() {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function current() {
    var t = root.getAttribute("data-theme");
    if (t === "dark" || t === "light") { return t; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  var saved = stored();
  if (saved === "dark" || saved === "light") { root.setAttribute("data-theme", saved); }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) { return; }
    function label() {
      var dark = current() === "dark";
      button.textContent = dark ? "Light" : "Dark";
      button.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
    }
    label();
    button.hidden = false;
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { window.localStorage.setItem(key, next); } catch (e) { /* private mode: keep it for this page only */ }
      label();
    });
  });
})();
