// Bulwark console: progressive enhancement only; every page works without it.
// Loaded with the page's CSP nonce. No inline handlers: behaviour is attached here.
"use strict";
(function () {
  // A form with data-confirm asks before it submits (revoking a session, deleting a record).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });
})();
