#!/usr/bin/env node
/*
 * Drives the official SendPulse Node SDK (npm sendpulse-api@1.1.7) against a mailpulse server.
 *
 *   node drive.js <port> <token_storage_dir> <client_id> <client_secret> [<email_json>]
 *
 * Each argument may come from the environment instead: MAILPULSE_PORT, TOKEN_STORAGE,
 * SENDPULSE_ID, SENDPULSE_SECRET, MAILPULSE_EMAIL. MAILPULSE_LIST_RECIPIENT is the recipient
 * filter of the list call (default: the first To address).
 *
 * The SDK hard-codes https://api.sendpulse.com:443, so harness.js patches https.request to plain http on
 * 127.0.0.1:<port> before the SDK is loaded (compat Appendix Z). Steps: init (token), then with
 * an email: smtpSendMail, smtpListEmails (recipient filter: a JSON body on a GET),
 * smtpGetEmailInfoById, and the raw GET /smtp/emails/total and POST /smtp/emails/info.
 * Prints ONE JSON object with every callback's result and the requests seen, then exits 0.
 * If something never calls back, a guard prints what it has and exits 3.
 */
'use strict';

const { connect } = require('./harness');

const argv = process.argv.slice(2);
const port = Number(argv[0] || process.env.MAILPULSE_PORT);
const storage = argv[1] || process.env.TOKEN_STORAGE;
const clientId = argv[2] || process.env.SENDPULSE_ID;
const clientSecret = argv[3] || process.env.SENDPULSE_SECRET;
const emailJson = argv[4] || process.env.MAILPULSE_EMAIL || '';

if (!port || !storage || !clientId || !clientSecret) {
  process.stderr.write('usage: node drive.js <port> <token_storage> <client_id> <client_secret> [<email_json>]\n');
  process.exit(2);
}

const { sendpulse, out, call, run } = connect(port);

async function main() {
  const init = await call(function (cb) {
    sendpulse.init(clientId, clientSecret, storage, cb);
  });
  out.init = typeof init === 'string' ? { token: init } : init;
  if (typeof init !== 'string' || !emailJson) {
    return;
  }

  const email = JSON.parse(emailJson);
  const recipient = process.env.MAILPULSE_LIST_RECIPIENT || email.to[0].email;

  out.send = await call(function (cb) {
    sendpulse.smtpSendMail(cb, email);
  });
  out.list = await call(function (cb) {
    sendpulse.smtpListEmails(cb, 10, 0, undefined, undefined, undefined, recipient);
  });
  const id = out.send && typeof out.send.id === 'string' ? out.send.id : '';
  out.info = await call(function (cb) {
    sendpulse.smtpGetEmailInfoById(cb, id);
  });
  out.total = await call(function (cb) {
    sendpulse.sendRequest('smtp/emails/total', 'GET', {}, cb);
  });
  out.info_many = await call(function (cb) {
    sendpulse.sendRequest('smtp/emails/info', 'POST', { emails: [id] }, cb);
  });
}

run(main);
