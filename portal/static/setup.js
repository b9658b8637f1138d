// The setup page: copy buttons on the command blocks, and the live check, which asks the
// server for its steps every second and a half while it waits (without JavaScript the page
// has a refresh link instead).
(function () {
  "use strict";
  document.querySelectorAll("pre[data-copy]").forEach(function (pre) {
    if (!navigator.clipboard) return;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary small-button copy-button";
    var title = document.getElementById(pre.id + "-title");
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy " + (title ? title.textContent : "the commands"));
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(pre.textContent).then(function () {
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = "Copy"; }, 2000);
      });
    });
    pre.insertAdjacentElement("afterend", button);
  });

  var box = document.getElementById("check-state");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-poll");
  var every = Math.max(1000, 1000 * parseFloat(box.getAttribute("data-every") || "1.5"));
  var last = box.innerHTML;
  function state() {
    var el = box.querySelector("[data-state]");
    return el ? el.getAttribute("data-state") : "";
  }
  function tick() {
    if (state() !== "waiting") return;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last) { box.innerHTML = html; last = html; }
        setTimeout(tick, every);
      })
      .catch(function () { setTimeout(tick, every * 2); });
  }
  setTimeout(tick, every);
})();
