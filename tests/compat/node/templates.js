#!/usr/bin/env node
/*
 * Drives the template calls of the official SendPulse Node SDK (npm sendpulse-api@1.1.7)
 * against a mailpulse server: init, listEmailTemplates, getEmailTemplate(<id>), and
 * smtpSendMail with {template: {id, variables}} when an email is given.
 *
 *   node templates.js <port> <token_storage_dir> <client_id> <client_secret> <template_id> [<email_json>]
 *
 * https.request is patched to plain http on 127.0.0.1:<port> before the SDK is loaded, as in
 * drive.js. Prints ONE JSON object with every callback's result and the requests seen; a guard
 * prints what it has and exits 3 if the SDK never calls back.
 */
'use strict';

const { connect } = require('./harness');

const [port, storage, clientId, clientSecret, templateId, emailJson] = process.argv.slice(2);
if (!port || !storage || !clientId || !clientSecret || !templateId) {
  process.stderr.write('usage: node templates.js <port> <storage> <id> <secret> <template_id> [<email_json>]\n');
  process.exit(2);
}

const { sendpulse, out, call, run } = connect(port);

async function main() {
  const init = await call(function (cb) {
    sendpulse.init(clientId, clientSecret, storage, cb);
  });
  out.init = typeof init === 'string' ? { token: init } : init;
  if (typeof init !== 'string') {
    return;
  }
  out.list = await call(function (cb) {
    sendpulse.listEmailTemplates(cb);
  });
  out.get = await call(function (cb) {
    sendpulse.getEmailTemplate(cb, templateId);
  });
  if (emailJson) {
    out.send = await call(function (cb) {
      sendpulse.smtpSendMail(cb, JSON.parse(emailJson));
    });
  }
}

run(main);
