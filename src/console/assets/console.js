// Bulwark console: progressive enhancement only; every page but passkeys works without it.
// Loaded with the page's CSP nonce. No inline handlers: behaviour is attached here.
"use strict";
(function () {
  // A form with data-confirm asks before it submits (revoking, removing, deactivating).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Links from account mails carry their token in the fragment (never sent to a server):
  // copied into the form, then dropped from the address bar.
  var fromLink = document.querySelector("input.from-link");
  var hash = new URLSearchParams(window.location.hash.slice(1));
  if (fromLink && hash.get("token")) {
    fromLink.value = hash.get("token");
    history.replaceState(null, "", window.location.pathname);
  }

  // --- passkeys: the API's WebAuthn ceremonies through navigator.credentials -------------
  if (!window.PublicKeyCredential) {
    return;
  }
  function bytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); }).buffer;
  }
  function text(buffer) {
    var raw = String.fromCharCode.apply(null, new Uint8Array(buffer));
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function post(url, body, csrf) {
    var headers = { "content-type": "application/json" };
    if (csrf) {
      headers["x-csrf-token"] = csrf;
    }
    return fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("The server refused (" + response.status + ").");
        }
        return response.json();
      });
  }
  function fail(id) {
    return function (error) {
      var box = document.getElementById(id);
      if (box) {
        box.textContent = error.message || String(error);
        box.hidden = false;
      }
    };
  }
  Array.prototype.forEach.call(document.querySelectorAll(".needs-script"), function (el) {
    el.hidden = false;
  });

  var add = document.getElementById("add-passkey");
  if (add) {
    add.addEventListener("click", function () {
      var csrf = add.getAttribute("data-csrf");
      post("/account/security/passkeys/start", {}, csrf).then(function (options) {
        var key = options.publicKey;
        key.challenge = bytes(key.challenge);
        key.user.id = bytes(key.user.id);
        (key.excludeCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
        return navigator.credentials.create({ publicKey: key }).then(function (credential) {
          return post("/account/security/passkeys/finish", {
            challenge_id: options.challenge_id,
            name: "Passkey",
            credential: {
              id: credential.id,
              rawId: text(credential.rawId),
              type: credential.type,
              extensions: {},
              response: {
                attestationObject: text(credential.response.attestationObject),
                clientDataJSON: text(credential.response.clientDataJSON)
              }
            }
          }, csrf);
        });
      }).then(function (done) {
        window.location.assign(done.redirect);
      }).catch(fail("passkey-error"));
    });
  }

  var signIn = document.getElementById("passkey-sign-in");
  if (signIn) {
    signIn.addEventListener("click", function () {
      var ticket = signIn.getAttribute("data-mfa-token") || null;
      var next = signIn.getAttribute("data-next") || "/";
      post("/login/passkey/start", { mfa_token: ticket }).then(function (options) {
        var key = options.publicKey;
        key.challenge = bytes(key.challenge);
        (key.allowCredentials || []).forEach(function (c) { c.id = bytes(c.id); });
        return navigator.credentials.get({ publicKey: key }).then(function (credential) {
          var response = credential.response;
          return post("/login/passkey/finish", {
            challenge_id: options.challenge_id,
            next: next,
            credential: {
              id: credential.id,
              rawId: text(credential.rawId),
              type: credential.type,
              extensions: {},
              response: {
                authenticatorData: text(response.authenticatorData),
                clientDataJSON: text(response.clientDataJSON),
                signature: text(response.signature),
                userHandle: response.userHandle ? text(response.userHandle) : null
              }
            }
          });
        });
      }).then(function (done) {
        window.location.assign(done.redirect);
      }).catch(fail("passkey-error"));
    });
  }
})();
