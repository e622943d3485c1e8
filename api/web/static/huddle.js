// Progressive enhancement only: every form works without this file.
(function () {
  "use strict";
  var tz = "UTC";
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* keep UTC */ }

  // Tell the server the browser's zone (used only to show times), and pre-fill zone fields.
  if (document.cookie.indexOf("huddle_tz=" + encodeURIComponent(tz)) === -1) {
    document.cookie = "huddle_tz=" + encodeURIComponent(tz) + "; path=/; max-age=31536000; samesite=lax";
  }
  document.querySelectorAll("[data-detect-zone]").forEach(function (el) {
    if (!el.dataset.touched) { el.value = tz; }
    var note = document.getElementById(el.id + "-detected");
    if (note) { note.textContent = "Detected from your browser: " + tz; }
  });

  // Countdowns to a moment (hold expiry): "12 min 05 s left".
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  var countdowns = document.querySelectorAll("[data-countdown]");
  if (countdowns.length) {
    var tick = function () {
      countdowns.forEach(function (el) {
        var left = Math.max(0, Math.floor((Date.parse(el.dataset.countdown) - Date.now()) / 1000));
        var text = left >= 60 ? Math.floor(left / 60) + " min " + pad(left % 60) + " s left" : left + " s left";
        el.textContent = left > 0 ? text : "time is up";
      });
    };
    tick();
    setInterval(tick, 1000);
  }

  // Live status: poll the booking (XRPC, with this browser's session) and reload when it changes.
  var live = document.querySelector("[data-booking-poll]");
  if (live && window.fetch) {
    var every = Math.max(1, parseFloat(live.dataset.pollSeconds || "2")) * 1000;
    var seen = live.dataset.state + "|" + (live.dataset.awaiting || "");
    var poll = function () {
      fetch("/xrpc/com.huddle.getBooking?booking=" + encodeURIComponent(live.dataset.bookingPoll),
            { credentials: "same-origin", headers: { "accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (b) {
          if (b && b.state + "|" + (b.awaiting || []).join(",") !== seen) { window.location.reload(); return; }
          setTimeout(poll, every);
        })
        .catch(function () { setTimeout(poll, every * 2); });
    };
    setTimeout(poll, every);
  }
})();
