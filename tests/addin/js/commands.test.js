// The add-in's own commands.js, run in Node with Microsoft's Office.js mock (office-addin-mock)
// as the global Office, talking to a REAL running portal. Started by tests/addin/test_addin.py
// with SEALMAIL_PORTAL (the portal's URL), SEALMAIL_TENANT (tenant A), SEALMAIL_TOKEN (a user
// token of tenant A, got through the mailed-code flow) and SEALMAIL_OTHER_TOKEN (a user token
// of tenant B). Without them (run by hand) the tests that need the portal are skipped.
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { OfficeMockObject } = require("office-addin-mock");

const ADDIN = path.resolve(__dirname, "../../../portal/addin/static/commands.js");
const PORTAL = process.env.SEALMAIL_PORTAL || "";
const CARD = "4111 1111 1111 1111";

// The mailbox item of a draft, as Office.js shows it: callback APIs answering AsyncResults.
function mailboxFor(draft, token) {
  const state = { headers: {}, notices: [], roaming: { sealmailAddinToken: token } };
  const ok = (value) => ({ status: "succeeded", value });
  const recipients = (list) => ({
    getAsync: (cb) => cb(ok(list.map((e) => ({ emailAddress: e, displayName: e })))),
  });
  const mock = new OfficeMockObject({
    host: "outlook",
    context: {
      mailbox: {
        item: {
          to: recipients(draft.to || []),
          cc: recipients(draft.cc || []),
          bcc: recipients([]),
          subject: { getAsync: (cb) => cb(ok(draft.subject || "")) },
          body: { getAsync: (_type, cb) => cb(ok(draft.body || "")) },
          getAttachmentsAsync: (cb) => cb(ok(draft.attachments || [])),
          internetHeaders: {
            setAsync: (headers, cb) => {
              Object.assign(state.headers, headers);
              cb(ok(undefined));
            },
            getAsync: (names, cb) => {
              const out = {};
              for (const n of names) if (n in state.headers) out[n] = state.headers[n];
              cb(ok(out));
            },
          },
          notificationMessages: {
            replaceAsync: (key, message, cb) => {
              state.notices.push({ key, ...message });
              cb(ok(undefined));
            },
          },
        },
      },
      roamingSettings: {
        get: (k) => state.roaming[k],
        set: (k, v) => {
          state.roaming[k] = v;
        },
        remove: (k) => {
          delete state.roaming[k];
        },
        saveAsync: (cb) => cb(ok(undefined)),
      },
    },
    MailboxEnums: { SendModeOverride: { PromptUser: "promptUser" } },
    CoercionType: { Text: "text" },
  });
  return { mock, state };
}

// Load the add-in's file fresh with this Office and this portal configuration.
function loadAddin(office, tenant) {
  global.Office = office;
  global.sealmailAddin = { base: PORTAL, tenant };
  delete require.cache[ADDIN];
  return require(ADDIN);
}

function sendEvent() {
  const seen = [];
  return { seen, event: { completed: (options) => seen.push(options) } };
}

test("Send Secure sets the X-Sealmail-Encrypt header and says the message is marked", async () => {
  const { mock, state } = mailboxFor({ to: ["bob@recipient.test"] }, "");
  const addin = loadAddin(mock, "t");
  const { seen, event } = sendEvent();
  await addin.markSecure(event);
  assert.deepEqual(state.headers, { "X-Sealmail-Encrypt": "yes" });
  assert.equal(state.notices.length, 1);
  assert.equal(state.notices[0].type, "informationalMessage");
  assert.match(state.notices[0].message, /sent securely/);
  assert.equal(seen.length, 1, "the command completes its event");
  assert.equal(await addin.isMarked(), true);
});

test("the functions are registered with Office.actions when Office has it", () => {
  const { mock } = mailboxFor({}, "");
  const associated = {};
  mock.addMock("actions");
  mock.actions.associate = (name, fn) => {
    associated[name] = fn;
  };
  const addin = loadAddin(mock, "t");
  assert.equal(associated.markSecure, addin.markSecure);
  assert.equal(associated.onMessageSendHandler, addin.onMessageSendHandler);
});

test("each on-send setting decides as documented", () => {
  const { mock } = mailboxFor({}, "");
  const addin = loadAddin(mock, "t");
  const answer = (on_send) => ({ action: "encrypt", rule: "cards", says: "S.", on_send });
  assert.deepEqual(addin.decide(answer("off"), false), { allowEvent: true });
  assert.deepEqual(addin.decide(answer("block"), true), { allowEvent: true });
  const warn = addin.decide(answer("warn"), false);
  assert.equal(warn.allowEvent, false);
  assert.equal(warn.sendModeOverride, "promptUser", "warn lets the sender send anyway");
  assert.equal(addin.decide(answer("offer"), false).mark, true);
  const block = addin.decide(answer("block"), false);
  assert.equal(block.allowEvent, false);
  assert.equal(block.sendModeOverride, undefined, "block gives no way around it");
  assert.match(block.errorMessage, /Send Secure/);
  assert.deepEqual(addin.decide({ action: "pass", on_send: "block" }, false), { allowEvent: true });
});

test("without a sign-in the send handler lets the message go", async () => {
  const { mock } = mailboxFor({ to: ["bob@recipient.test"], body: CARD }, "");
  const addin = loadAddin(mock, "t");
  const { seen, event } = sendEvent();
  await addin.onMessageSendHandler(event);
  assert.deepEqual(seen, [{ allowEvent: true }]);
});

const live = { skip: PORTAL ? false : "SEALMAIL_PORTAL not set" };

test("a draft with a card number gets encrypt, rule 'cards', and the warning", live, async () => {
  const draft = {
    to: ["bob@recipient.test"],
    subject: "Payment details",
    body: `Please charge card ${CARD} today.`,
    attachments: [{ name: "invoice.pdf", size: 52000, attachmentType: "file" }],
  };
  const { mock, state } = mailboxFor(draft, process.env.SEALMAIL_TOKEN);
  const addin = loadAddin(mock, process.env.SEALMAIL_TENANT);
  const { seen, event } = sendEvent();
  const outcome = await addin.onMessageSendHandler(event);
  assert.equal(outcome.status, 200, JSON.stringify(outcome));
  assert.equal(outcome.answer.action, "encrypt");
  assert.equal(outcome.answer.rule, "cards");
  assert.equal(outcome.answer.on_send, "offer");
  assert.equal(seen.length, 1);
  assert.equal(seen[0].allowEvent, false, "the sender is stopped and told");
  assert.match(seen[0].errorMessage, /sent securely under the rule 'cards'/);
  assert.deepEqual(state.headers, { "X-Sealmail-Encrypt": "yes" }, "offer marks it");
  // sent again, now marked: it goes
  const again = sendEvent();
  await addin.onMessageSendHandler(again.event);
  assert.deepEqual(again.seen, [{ allowEvent: true }]);
});

test("a draft with nothing sensitive goes without a word", live, async () => {
  const draft = { to: ["bob@recipient.test"], subject: "Lunch", body: "At noon?" };
  const { mock, state } = mailboxFor(draft, process.env.SEALMAIL_TOKEN);
  const addin = loadAddin(mock, process.env.SEALMAIL_TENANT);
  const { seen, event } = sendEvent();
  const outcome = await addin.onMessageSendHandler(event);
  assert.equal(outcome.answer.action, "pass");
  assert.deepEqual(seen, [{ allowEvent: true }]);
  assert.deepEqual(state.headers, {});
});

test("another tenant's user token gets 401", live, async () => {
  const draft = { to: ["bob@recipient.test"], body: CARD };
  const { mock, state } = mailboxFor(draft, process.env.SEALMAIL_OTHER_TOKEN);
  const addin = loadAddin(mock, process.env.SEALMAIL_TENANT);
  const { seen, event } = sendEvent();
  const outcome = await addin.onMessageSendHandler(event);
  assert.equal(outcome.status, 401);
  assert.equal(seen.length, 1);
  assert.match(seen[0].errorMessage, /sign in again/);
  assert.equal(state.roaming.sealmailAddinToken, undefined, "the dead token is forgotten");
});

test("every Office.js member the add-in calls is in Microsoft's Office.js API", () => {
  const dts = fs.readFileSync(require.resolve("@microsoft/office-js/dist/office.d.ts"), "utf8");
  const used = ["internetHeaders", "setAsync", "getAsync", "notificationMessages",
    "replaceAsync", "getAttachmentsAsync", "roamingSettings", "saveAsync", "associate",
    "informationalMessage", "completed"];
  for (const name of used) assert.ok(dts.includes(name), `${name} is not in office.d.ts`);
});
