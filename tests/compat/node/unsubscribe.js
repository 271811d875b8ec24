#!/usr/bin/env node
/*
 * Drives the official SendPulse Node SDK (npm sendpulse-api@1.1.7) through the unsubscribe list.
 *
 *   node unsubscribe.js <port> <token_storage_dir> <client_id> <client_secret>
 *
 * As drive.js, https.request is patched to plain http on 127.0.0.1:<port> before the SDK is
 * loaded. Steps: init; smtpUnsubscribeEmails (the list PHP-serialize()d in a JSON body); the
 * raw GET /smtp/unsubscribe (a JSON body on a GET) and GET /smtp/unsubscribe/search (its
 * `email` in a JSON body); smtpRemoveFromUnsubscribe (serialized in a DELETE body); search and
 * list again. Prints ONE JSON object with every callback's result and the requests seen.
 */
'use strict';

const { connect } = require('./harness');

const [port, storage, clientId, clientSecret] = process.argv.slice(2);
if (!port || !storage || !clientId || !clientSecret) {
  process.stderr.write('usage: node unsubscribe.js <port> <token_storage> <client_id> <client_secret>\n');
  process.exit(2);
}

const { sendpulse, out, call, run } = connect(port);

async function main() {
  out.init = await call(function (cb) {
    sendpulse.init(clientId, clientSecret, storage, cb);
  });
  out.add = await call(function (cb) {
    sendpulse.smtpUnsubscribeEmails(cb, [
      { email: 'Anna@example.com', comment: 'Отписка 👋 "quoted"' },
      { email: 'bob@example.org', comment: '' },
    ]);
  });
  out.list = await call(function (cb) {
    sendpulse.sendRequest('smtp/unsubscribe', 'GET', { limit: 10, offset: 0 }, cb);
  });
  out.search = await call(function (cb) {
    sendpulse.sendRequest('smtp/unsubscribe/search', 'GET', { email: 'anna@example.com' }, cb);
  });
  out.remove = await call(function (cb) {
    sendpulse.smtpRemoveFromUnsubscribe(cb, ['anna@example.com']);
  });
  out.search_after = await call(function (cb) {
    sendpulse.sendRequest('smtp/unsubscribe/search', 'GET', { email: 'anna@example.com' }, cb);
  });
  out.list_after = await call(function (cb) {
    sendpulse.sendRequest('smtp/unsubscribe', 'GET', {}, cb);
  });
  out.empty = await call(function (cb) {
    sendpulse.sendRequest('smtp/unsubscribe', 'POST', { emails: [] }, cb);
  });
}

run(main);
