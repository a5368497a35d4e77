// Progressive enhancement for the Berth UI; every page works without it.
// - "Copy" buttons next to pull commands.
// - Relative times ("3 minutes ago") kept current while the page stays open.
// - Filter selects submit their form when changed.
(function () {
  "use strict";

  function relative(then) {
    var seconds = Math.round((Date.now() - then) / 1000);
    if (seconds < 0) return "in the future";
    if (seconds < 45) return "just now";
    var steps = [[31536000, "year"], [2592000, "month"], [604800, "week"],
                 [86400, "day"], [3600, "hour"], [60, "minute"]];
    for (var i = 0; i < steps.length; i++) {
      if (seconds >= steps[i][0]) {
        var n = Math.max(1, Math.round(seconds / steps[i][0]));
        return n + " " + steps[i][1] + (n === 1 ? "" : "s") + " ago";
      }
    }
    return "1 minute ago";
  }

  function refreshTimes() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var then = Date.parse(el.getAttribute("datetime"));
      if (!isNaN(then)) el.textContent = relative(then);
    });
  }

  function setUpCopyButtons() {
    if (!navigator.clipboard) return;
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(button.getAttribute("data-copy")).then(function () {
          button.textContent = "Copied";
          button.classList.add("done");
          setTimeout(function () {
            button.textContent = "Copy";
            button.classList.remove("done");
          }, 1500);
        });
      });
    });
  }

  function setUpAutosubmit() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.form) select.form.submit();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setUpCopyButtons();
    setUpAutosubmit();
    setInterval(refreshTimes, 60000);
  });
})();
