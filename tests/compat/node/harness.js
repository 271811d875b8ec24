/*
 * What every driver of the official SendPulse Node SDK (npm sendpulse-api@1.1.7) shares.
 *
 * The SDK hard-codes https://api.sendpulse.com:443, so https.request is patched to plain http
 * on 127.0.0.1:<port> before the SDK is loaded (compat Appendix Z); every request is recorded
 * in `out.requests` with its status. `run(main)` runs a driver's steps and prints ONE JSON
 * object (`out`: every result the driver put there, and the requests seen), exiting 0, or 1
 * with the exception; if the SDK never calls back, a guard (DRIVE_GUARD_MS, default 20 s)
 * prints what it has and exits 3.
 */
'use strict';

const http = require('http');
const https = require('https');

function connect(port) {
  const out = { requests: [] };
  https.request = function (options, callback) {
    const entry = { method: options.method, path: options.path, status: null };
    out.requests.push(entry);
    const target = Object.assign({}, options, {
      protocol: 'http:',
      hostname: '127.0.0.1',
      host: '127.0.0.1',
      port: Number(port),
    });
    return http.request(target, function (response) {
      entry.status = response.statusCode;
      callback(response);
    });
  };
  const sendpulse = require('sendpulse-api');

  function finish(code) {
    process.stdout.write(JSON.stringify(out) + '\n', function () {
      process.exit(code);
    });
  }

  // One callback-style SDK call as a promise (the SDK's callbacks take one argument).
  function call(fn) {
    return new Promise(function (resolve) {
      fn(resolve);
    });
  }

  function run(main) {
    const guard = setTimeout(function () {
      out.timeout = true;
      finish(3);
    }, Number(process.env.DRIVE_GUARD_MS || 20000));
    main().then(
      function () {
        clearTimeout(guard);
        finish(0);
      },
      function (error) {
        clearTimeout(guard);
        out.exception = String(error && error.stack ? error.stack : error);
        finish(1);
      }
    );
  }

  return { sendpulse: sendpulse, out: out, call: call, run: run };
}

module.exports = { connect: connect };
