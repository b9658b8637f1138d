/*
 * sealmail "Send Secure" for Outlook: the function commands and the Smart Alerts handler.
 *
 * Loaded three ways, one file: by commands.html (Outlook on the web, new Outlook, Mac), as the
 * JavaScript-only runtime of classic Outlook on Windows (the manifest's Override), and by the
 * tests in Node with Microsoft's Office.js mock as global Office. No build step, no imports.
 *
 * The portal serves this file as /addin/commands.js with one line in front that sets
 * globalThis.sealmailAddin = {base, tenant}: where the portal is and which tenant this copy of
 * the add-in belongs to.
 *
 * - markSecure(event): sets the internet header X-Sealmail-Encrypt: yes (Mailbox 1.8) and
 *   shows an information bar "This message will be sent securely".
 * - onMessageSendHandler(event): reads the draft (recipients, subject, body, attachment names
 *   and sizes), asks the portal's check endpoint with the user's add-in token, and per the
 *   tenant's setting (off | warn | offer | block) lets the message go, warns (the user may
 *   send anyway), marks it and says so, or stops it until it is marked.
 */
(function (root) {
  "use strict";

  var HEADER = "X-Sealmail-Encrypt";
  var TOKEN_KEY = "sealmailAddinToken";
  var NOTICE_KEY = "sealmailSecure";
  var CHECK_TIMEOUT_MS = 20000;
  var MAX_BODY = 1000000;

  function config() {
    var c = root.sealmailAddin || {};
    var base = c.base || (root.location ? root.location.origin : "");
    return { base: String(base).replace(/\/$/, ""), tenant: c.tenant || "" };
  }

  function apiUrl(path) {
    var c = config();
    return c.base + path + (c.tenant ? "?tenant=" + encodeURIComponent(c.tenant) : "");
  }

  /* Office's callback APIs as promises: resolve with the value, reject with the error. */
  function call(target, method) {
    var args = Array.prototype.slice.call(arguments, 2);
    return new Promise(function (resolve, reject) {
      args.push(function (result) {
        if (result && result.status === "failed") {
          reject(result.error || new Error(method + " failed"));
        } else {
          resolve(result ? result.value : undefined);
        }
      });
      target[method].apply(target, args);
    });
  }

  function mailbox() {
    return root.Office.context.mailbox;
  }

  /* The user's add-in token: kept in the add-in's roaming settings (per mailbox, readable
     by this add-in only), which every runtime of the add-in can read. */
  function getToken() {
    var settings = root.Office.context.roamingSettings;
    var value = settings && settings.get ? settings.get(TOKEN_KEY) : "";
    return value ? String(value) : "";
  }

  function saveToken(token) {
    var settings = root.Office.context.roamingSettings;
    if (!settings || !settings.set) return Promise.resolve();
    if (token) settings.set(TOKEN_KEY, token);
    else settings.remove(TOKEN_KEY);
    return settings.saveAsync ? call(settings, "saveAsync") : Promise.resolve();
  }

  function isMarked() {
    var item = mailbox().item;
    return call(item.internetHeaders, "getAsync", [HEADER]).then(
      function (headers) {
        var value = headers ? headers[HEADER] || headers[HEADER.toLowerCase()] : "";
        return String(value || "").trim().toLowerCase() === "yes";
      },
      function () {
        return false;
      }
    );
  }

  function showMarked() {
    return call(mailbox().item.notificationMessages, "replaceAsync", NOTICE_KEY, {
      type: "informationalMessage",
      message: "This message will be sent securely.",
      icon: "Icon.16",
      persistent: false,
    });
  }

  function mark() {
    var headers = {};
    headers[HEADER] = "yes";
    return call(mailbox().item.internetHeaders, "setAsync", headers).then(showMarked);
  }

  /* The "Send Secure" button. */
  function markSecure(event) {
    return mark().then(
      function () {
        if (event && event.completed) event.completed();
      },
      function (err) {
        var message = "Could not mark this message: " + ((err && err.message) || err);
        return call(mailbox().item.notificationMessages, "replaceAsync", NOTICE_KEY, {
          type: "errorMessage",
          message: message.slice(0, 150),
        }).then(
          function () {
            if (event && event.completed) event.completed();
          },
          function () {
            if (event && event.completed) event.completed();
          }
        );
      }
    );
  }

  function addresses(list) {
    return (list || []).map(function (r) {
      return r.emailAddress || String(r);
    });
  }

  /* What the check needs of the draft, read through Office.js. */
  function readDraft() {
    var item = mailbox().item;
    var coercion = (root.Office.CoercionType && root.Office.CoercionType.Text) || "text";
    return Promise.all([
      call(item.to, "getAsync"),
      call(item.cc, "getAsync"),
      item.bcc ? call(item.bcc, "getAsync") : Promise.resolve([]),
      call(item.subject, "getAsync"),
      call(item.body, "getAsync", coercion),
      item.getAttachmentsAsync ? call(item, "getAttachmentsAsync") : Promise.resolve([]),
      isMarked(),
    ]).then(function (v) {
      return {
        to: addresses(v[0]),
        cc: addresses(v[1]),
        bcc: addresses(v[2]),
        subject: v[3] || "",
        body: String(v[4] || "").slice(0, MAX_BODY),
        attachments: (v[5] || []).map(function (a) {
          return { name: a.name, size: a.size };
        }),
        marked: v[6],
      };
    });
  }

  /* POST the draft to the portal's check; resolves with {status, answer}. */
  function askPolicy(draft, token) {
    var controller = typeof AbortController !== "undefined" ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, CHECK_TIMEOUT_MS) : null;
    return root
      .fetch(apiUrl("/addin/api/check"), {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
        body: JSON.stringify(draft),
        signal: controller ? controller.signal : undefined,
      })
      .then(function (response) {
        return response.json().then(
          function (answer) {
            return { status: response.status, answer: answer };
          },
          function () {
            return { status: response.status, answer: {} };
          }
        );
      })
      .finally(function () {
        if (timer) clearTimeout(timer);
      });
  }

  function promptUser() {
    var e = root.Office.MailboxEnums;
    return e && e.SendModeOverride ? e.SendModeOverride.PromptUser : "promptUser";
  }

  /* What the send handler decides, from the check's answer: the event.completed options. */
  function decide(answer, marked) {
    var protect = answer.action === "encrypt";
    var onSend = answer.on_send || "off";
    if (answer.action === "reject") {
      return { allowEvent: false, errorMessage: answer.says };
    }
    if (!protect || marked || onSend === "off") return { allowEvent: true };
    if (onSend === "warn") {
      return {
        allowEvent: false,
        errorMessage: answer.says + " Choose Send anyway to send it as it is.",
        sendModeOverride: promptUser(),
      };
    }
    if (onSend === "offer") {
      return {
        allowEvent: false,
        errorMessage: answer.says + " We marked it Send Secure for you: send it again.",
        mark: true,
      };
    }
    return {
      allowEvent: false,
      errorMessage: answer.says + " Select Send Secure, then send it again.",
    };
  }

  /* The Smart Alerts OnMessageSend handler. Never leaves the user stuck: without a sign-in,
     or when the portal cannot be reached, the message goes (the gateway applies the policy
     all the same). */
  function onMessageSendHandler(event) {
    var token = getToken();
    if (!token) {
      event.completed({ allowEvent: true });
      return Promise.resolve({ allowEvent: true, reason: "not signed in" });
    }
    var marked = false;
    return readDraft()
      .then(function (draft) {
        marked = draft.marked;
        return askPolicy(draft, token);
      })
      .then(function (got) {
        if (got.status === 401) {
          return saveToken("").then(function () {
            var options = {
              allowEvent: false,
              errorMessage:
                "Your sign-in to secure mail is not valid any more. Open Secure options to sign in again, then send.",
              sendModeOverride: promptUser(),
            };
            event.completed(options);
            return Object.assign({ status: 401 }, options);
          });
        }
        if (got.status !== 200) {
          event.completed({ allowEvent: true });
          return { allowEvent: true, status: got.status };
        }
        var options = decide(got.answer, marked);
        var marking = options.mark ? mark() : Promise.resolve();
        delete options.mark;
        return marking.then(function () {
          event.completed(options);
          return Object.assign({ status: 200, answer: got.answer }, options);
        });
      })
      .catch(function (err) {
        event.completed({ allowEvent: true });
        return { allowEvent: true, error: String((err && err.message) || err) };
      });
  }

  var api = {
    markSecure: markSecure,
    onMessageSendHandler: onMessageSendHandler,
    decide: decide,
    readDraft: readDraft,
    isMarked: isMarked,
    mark: mark,
    getToken: getToken,
    saveToken: saveToken,
    apiUrl: apiUrl,
    call: call,
  };
  root.sealmailCommands = api;

  if (root.Office && root.Office.actions && root.Office.actions.associate) {
    root.Office.actions.associate("markSecure", markSecure);
    root.Office.actions.associate("onMessageSendHandler", onMessageSendHandler);
  }
  if (typeof module !== "undefined" && module.exports) {
    module.exports = api;
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
