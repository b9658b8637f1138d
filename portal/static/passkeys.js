// Passkeys on the portal's pages (a static file: the CSP allows no inline script).
//
// A form with data-passkey="register" | "signin" | "confirm" is shown only where the
// browser can use passkeys. On submit it posts its fields to data-options and gets
// {ticket, options}, asks the browser (navigator.credentials.create or .get), posts its
// fields, the ticket and the credential (JSON) to the form's action, and goes to the
// answer's redirect (or data-return when given). A failure is a sentence in the form's
// [data-passkey-error] element. Elements with data-dismiss hide their data-dismiss target
// for good (remembered in this browser).
(function () {
  "use strict";

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) { response.userHandle = toB64url(r.userHandle); }
    }
    return JSON.stringify({
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {},
      authenticatorAttachment: cred.authenticatorAttachment || undefined
    });
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: body
    }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok || data.error) {
          throw new Error(data.error || "Something went wrong. Please try again.");
        }
        return data;
      });
    });
  }

  var CANCELLED = "Your browser did not use a passkey. You can try again.";

  function run(form) {
    var kind = form.getAttribute("data-passkey");
    var errorBox = form.querySelector("[data-passkey-error]");
    var button = form.querySelector("button[type=submit]");
    if (errorBox) { errorBox.hidden = true; errorBox.textContent = ""; }
    if (button) { button.disabled = true; }
    var fields = new URLSearchParams(new FormData(form));
    post(form.getAttribute("data-options"), fields.toString())
      .then(function (answer) {
        var ask = kind === "register"
          ? navigator.credentials.create({ publicKey: creationOptions(answer.options) })
          : navigator.credentials.get({ publicKey: requestOptions(answer.options) });
        return ask.then(function (cred) {
          if (!cred) { throw new Error(CANCELLED); }
          fields.set("ticket", answer.ticket);
          fields.set("credential", credentialJSON(cred));
          return post(form.action, fields.toString());
        }, function (err) {
          if (err && (err.name === "NotAllowedError" || err.name === "AbortError")) {
            throw new Error(CANCELLED);
          }
          if (err && err.name === "InvalidStateError") {
            throw new Error("This passkey is already added.");
          }
          throw err;
        });
      })
      .then(function (done) {
        window.location.assign(form.getAttribute("data-return") || done.redirect || "/");
      })
      .catch(function (err) {
        if (button) { button.disabled = false; }
        if (errorBox) {
          errorBox.textContent = (err && err.message) || CANCELLED;
          errorBox.hidden = false;
          errorBox.focus();
        }
      });
  }

  function start() {
    var usable = !!(window.PublicKeyCredential && navigator.credentials);
    document.querySelectorAll("form[data-passkey]").forEach(function (form) {
      if (!usable) { return; }
      form.hidden = false;
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        run(form);
      });
    });
    document.querySelectorAll("[data-passkey-only]").forEach(function (el) {
      el.hidden = !usable;
    });
    document.querySelectorAll("[data-no-passkey]").forEach(function (el) {
      el.hidden = usable;
    });
    document.querySelectorAll("[data-dismiss]").forEach(function (button) {
      var target = document.getElementById(button.getAttribute("data-dismiss"));
      if (!target) { return; }
      var key = "sealmail-dismissed-" + target.id;
      try {
        if (window.localStorage.getItem(key)) { target.hidden = true; return; }
      } catch (e) { /* storage refused: the suggestion stays */ }
      button.hidden = false;
      button.addEventListener("click", function () {
        target.hidden = true;
        try { window.localStorage.setItem(key, "1"); } catch (e) { /* nothing to keep */ }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
