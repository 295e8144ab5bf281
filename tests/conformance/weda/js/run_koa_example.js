#!/usr/bin/env node
/*
 * run_koa_example.js — drives koa_example.js non-interactively.
 *
 *   1. picks a free TCP port (or uses $KOA_PORT if set and != "0"),
 *   2. spawns `node koa_example.js` with KOA_PORT=<port> (all WEDA_* env passed through),
 *   3. waits until the Koa server accepts connections (max 15 s),
 *   4. sends the one request the example expects:
 *        GET http://127.0.0.1:<port>/?InstanceId=<$WEDA_INSTANCE_ID>
 *   5. prints the JSON body the example returned to stdout,
 *   6. kills the child it started (by pid) and exits
 *        0  if HTTP 200, body is JSON with Response.RequestId and no non-empty Response.Error.Code
 *        1  otherwise (connection error, timeout, non-JSON, 500 from the example, WeDa error…).
 *
 * Env: WEDA_DOMAIN WEDA_SECRET_ID WEDA_SECRET_KEY WEDA_ENV_TYPE (read by koa_example.js),
 *      WEDA_INSTANCE_ID (sent as InstanceId), optional KOA_PORT, KOA_TIMEOUT_MS (default 15000).
 */
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const fetch = require('node-fetch');

const TIMEOUT_MS = Number(process.env.KOA_TIMEOUT_MS || 15000);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

async function main() {
  const port = process.env.KOA_PORT && process.env.KOA_PORT !== '0'
    ? Number(process.env.KOA_PORT)
    : await freePort();

  const child = spawn(process.execPath, [path.join(__dirname, 'koa_example.js')], {
    env: { ...process.env, KOA_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let childExit = null;
  let childStderr = '';
  child.on('exit', (code, signal) => { childExit = { code, signal }; });
  child.stdout.on('data', (d) => process.stderr.write(`[koa_example] ${d}`));
  child.stderr.on('data', (d) => { childStderr += d; process.stderr.write(`[koa_example] ${d}`); });

  const stop = () => { if (childExit === null) { try { process.kill(child.pid, 'SIGTERM'); } catch (e) { /* already gone */ } } };

  try {
    const deadline = Date.now() + TIMEOUT_MS;
    // wait for the Koa server
    for (;;) {
      if (childExit !== null) throw new Error(`koa_example.js exited early ${JSON.stringify(childExit)}: ${childStderr}`);
      if (await canConnect(port)) break;
      if (Date.now() > deadline) throw new Error(`koa_example.js did not listen on ${port} within ${TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const instanceId = process.env.WEDA_INSTANCE_ID || '';
    const url = `http://127.0.0.1:${port}/?InstanceId=${encodeURIComponent(instanceId)}`;
    const res = await fetch(url, { timeout: Math.max(1000, deadline - Date.now()) });
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      throw new Error(`example returned non-JSON (HTTP ${res.status}): ${text.slice(0, 500)}`);
    }
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);

    if (res.status !== 200) throw new Error(`example answered HTTP ${res.status}`);
    if (!body || typeof body !== 'object' || !body.Response) throw new Error('JSON has no Response envelope');
    if (!body.Response.RequestId) throw new Error('Response.RequestId missing');
    if (body.Response.Error && body.Response.Error.Code) {
      throw new Error(`WeDa error ${body.Response.Error.Code}: ${body.Response.Error.Message}`);
    }
    stop();
    return 0;
  } catch (err) {
    stop();
    process.stderr.write(`run_koa_example: FAIL: ${err.message}\n`);
    return 1;
  }
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`run_koa_example: FAIL: ${err && err.stack}\n`);
  process.exit(1);
});
