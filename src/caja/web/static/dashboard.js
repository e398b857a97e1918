// Pages with deliveries still pending reload themselves until they settle.
(function () {
  "use strict";
  var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (every > 0) {
    window.setTimeout(function () {
      if (!document.querySelector("details.attempt[open]:focus-within")) {
        window.location.reload();
      }
    }, every);
  }
})();
