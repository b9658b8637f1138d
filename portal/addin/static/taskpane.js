/*
 * sealmail "Secure options" task pane: sign in once with a mailed code (the add-in token is
 * kept in the add-in's roaming settings), show whether the message is marked, and write the
 * per-message option headers of SPEC §3 (X-Sealmail-Expires, -Receipt, -Reply, -Forward) and
 * the reference of a passphrase registered with the portal (X-Sealmail-Passphrase-Ref).
 * Uses window.sealmailCommands from commands.js. Outside Outlook (office.js did not load, or
 * no mailbox) the page only says to open it from Outlook.
 */
(function (root) {
  "use strict";
  var doc = root.document;
  var $ = function (id) { return doc.getElementById(id); };
  var pending = "";

  function show(id, on) { $(id).hidden = !on; }
  function say(id, text) { $(id).textContent = text || ""; }

  function post(path, data) {
    return root.fetch(root.sealmailCommands.apiUrl(path), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(data),
    }).then(function (r) {
      return r.json().then(function (body) { return { status: r.status, body: body }; });
    });
  }

  /* The passphrase goes to the portal, never into the message: the header carries only the
   * reference the portal answers with. */
  function registerPassphrase(passphrase, hint) {
    var token = root.sealmailCommands.getToken();
    return root.fetch(root.sealmailCommands.apiUrl("/addin/api/passphrase"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify({ passphrase: passphrase, hint: hint }),
    }).then(function (r) {
      return r.json().then(function (body) {
        if (r.status !== 200) throw new Error(body.error || "the passphrase was not accepted");
        return body.ref;
      });
    });
  }

  function refreshMarked() {
    return root.sealmailCommands.isMarked().then(function (marked) {
      say("marked-state", marked
        ? "This message is marked: it will be sent securely."
        : "This message is not marked yet. Select Send Secure to send it securely.");
      $("mark-button").hidden = marked;
    });
  }

  function signedIn() {
    var has = !!root.sealmailCommands.getToken();
    show("signin", !has);
    show("options", has);
    if (has) refreshMarked();
  }

  function wire() {
    $("email-form").addEventListener("submit", function (e) {
      e.preventDefault();
      say("signin-error", "");
      post("/addin/api/code", { email: $("email").value }).then(function (got) {
        if (got.status !== 200) { say("signin-error", got.body.error || "Could not send a code."); return; }
        pending = got.body.pending;
        say("code-sent", got.body.says);
        show("code-form", true);
        $("code").focus();
      });
    });
    $("code-form").addEventListener("submit", function (e) {
      e.preventDefault();
      say("signin-error", "");
      post("/addin/api/token", { pending: pending, code: $("code").value }).then(function (got) {
        if (got.status !== 200) { say("signin-error", got.body.error || "That code did not work."); return; }
        root.sealmailCommands.saveToken(got.body.token).then(signedIn);
      });
    });
    $("mark-button").addEventListener("click", function () {
      root.sealmailCommands.mark().then(refreshMarked);
    });
    $("options-form").addEventListener("submit", function (e) {
      e.preventDefault();
      var headers = { "X-Sealmail-Encrypt": "yes" };
      var expires = $("expires").value;
      if (expires) headers["X-Sealmail-Expires"] = expires;
      if ($("receipt").checked) headers["X-Sealmail-Receipt"] = "yes";
      if ($("reply").value) headers["X-Sealmail-Reply"] = $("reply").value;
      if ($("forward").value) headers["X-Sealmail-Forward"] = $("forward").value;
      var item = root.Office.context.mailbox.item;
      var passphrase = $("passphrase").value;
      var registered = passphrase
        ? registerPassphrase(passphrase, $("passphrase-hint").value).then(function (ref) {
            headers["X-Sealmail-Passphrase-Ref"] = ref;
          })
        : Promise.resolve();
      registered.then(function () {
        return root.sealmailCommands.call(item.internetHeaders, "setAsync", headers);
      }).then(function () {
        $("passphrase").value = "";
        say("options-saved", passphrase
          ? "Saved for this message, with your passphrase. Remember to tell the recipients it yourself."
          : "Saved for this message. It will be sent securely with these options.");
        return refreshMarked();
      }, function (err) {
        say("options-saved", "Could not save the options: " + ((err && err.message) || err));
      });
    });
    $("signout").addEventListener("click", function () {
      root.sealmailCommands.saveToken("").then(signedIn);
    });
  }

  function start() {
    var office = root.Office;
    if (!office || !office.onReady) return; // office.js did not load: the page says why
    office.onReady(function (info) {
      if (!info || info.host !== office.HostType.Outlook || !office.context.mailbox) return;
      show("outside", false);
      wire();
      signedIn();
    });
  }
  start();
})(window);
