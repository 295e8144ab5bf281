#!/usr/bin/env node
/*
 * js_sdk.js — drives the UNMODIFIED @cloudbase/js-sdk (Node build, dist/index.node.cjs.js)
 * against a WeDa-compatible server: init -> point every endpoint at WEDA_DOMAIN ->
 * auth().signInWithPassword -> app.models[WEDA_MODEL].create / get / list, with value checks.
 *
 * Endpoint redirection (app instance methods, @cloudbase/js-sdk app/src/index.ts):
 *   app.registerEndPointWithKey({ key: 'GATEWAY',   url: '//host[:port]/v1',  protocol })
 *   app.registerEndPointWithKey({ key: 'CLOUD_API', url: '//host[:port]/web', protocol })
 *   app.registerEndPoint('//host[:port]/web', protocol)        (same as the CLOUD_API line)
 *   - models use  `${protocol}${GATEWAY}/model/...` and `/sql/...`
 *   - auth uses   ORIGIN of GATEWAY (protocol + host:port, path dropped) + '/auth/v1/...'
 *
 * Env (required): WEDA_ENV_ID WEDA_DOMAIN WEDA_USERNAME WEDA_PASSWORD WEDA_MODEL
 * Env (set by the test, see report): TENCENTCLOUD=true (skips the SDK's cloud-metadata probe),
 *   NO_PROXY=127.0.0.1,localhost
 * Env (optional): WEDA_ENV_TYPE=pre to address /v1/model/pre/...; JS_SDK_TRACE=1 logs every
 *   HTTP exchange (method, url, status, request headers of interest) to stderr.
 * Do NOT set CLOUDBASE_APIKEY / TENCENTCLOUD_SECRETID / TENCENTCLOUD_SECRETKEY: the SDK would
 * then use them instead of the signed-in user (see report).
 *
 * Output: one JSON object on stdout; exit 0 on success, 1 on the first failed check, 2 = missing env.
 */
const env = process.env;
const missing = ['WEDA_ENV_ID', 'WEDA_DOMAIN', 'WEDA_USERNAME', 'WEDA_PASSWORD', 'WEDA_MODEL'].filter((k) => !env[k]);
if (missing.length) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: `missing env: ${missing.join(', ')}` })}\n`);
  process.exit(2);
}

// Observe (not modify) what the SDK sends: wrap the global fetch the Node adapter uses.
const http = [];
const origFetch = globalThis.fetch;
globalThis.fetch = async (url, opts = {}) => {
  const h = opts.headers || {};
  const pick = (k) => h[k] ?? h[k.toLowerCase()];
  const entry = {
    method: String(opts.method || 'GET').toUpperCase(),
    url: String(url),
    contentType: pick('Content-Type') ?? pick('content-type') ?? null,
    authorization: (pick('Authorization') || '').replace(/(Bearer|Basic)\s+.+/, '$1 <redacted>') || null,
  };
  try {
    const res = await origFetch(url, opts);
    entry.status = res.status;
    http.push(entry);
    if (env.JS_SDK_TRACE === '1') process.stderr.write(`${entry.method} ${entry.url} -> ${res.status} (ct=${entry.contentType}, auth=${entry.authorization})\n  > ${typeof opts.body === 'string' ? opts.body.slice(0, 500) : ''}\n`);
    return res;
  } catch (e) {
    entry.error = String(e && (e.cause ? `${e.message}: ${e.cause.code || e.cause.message}` : e.message));
    http.push(entry);
    if (env.JS_SDK_TRACE === '1') process.stderr.write(`${entry.method} ${entry.url} -> ERROR ${entry.error}\n`);
    throw e;
  }
};

const cloudbaseModule = require('@cloudbase/js-sdk');
const cloudbase = cloudbaseModule.default || cloudbaseModule;

const results = {};
class Fail extends Error {}
let current = '';
function expect(cond, msg, actual) {
  if (!cond) throw new Fail(`${msg}${actual !== undefined ? ` — got ${JSON.stringify(actual)}` : ''}`);
}
const redact = (o) => JSON.parse(JSON.stringify(o ?? null, (k, v) => (
  ['access_token', 'refresh_token', 'id_token'].includes(k) && typeof v === 'string' ? `<${v.length} chars>` : v)));
const isId = (v) => typeof v === 'string' && v.length > 0;

async function main() {
  const domain = new URL(env.WEDA_DOMAIN);
  const protocol = domain.protocol.replace(':', ''); // 'http' | 'https'
  const hostPath = `//${domain.host}${domain.pathname.replace(/\/+$/, '')}`;
  const envType = env.WEDA_ENV_TYPE === 'pre' ? 'pre' : undefined;

  current = 'init';
  const app = cloudbase.init({ env: env.WEDA_ENV_ID });
  app.registerEndPoint(`${hostPath}/web`, protocol);
  app.registerEndPointWithKey({ key: 'CLOUD_API', url: `${hostPath}/web`, protocol });
  app.registerEndPointWithKey({ key: 'GATEWAY', url: `${hostPath}/v1`, protocol });
  results.endpoints = {
    GATEWAY: app.getEndPointWithKey('GATEWAY'),
    CLOUD_API: app.getEndPointWithKey('CLOUD_API'),
  };

  current = 'signInWithPassword';
  const auth = app.auth();
  const signIn = await auth.signInWithPassword({ username: env.WEDA_USERNAME, password: env.WEDA_PASSWORD });
  results.signInWithPassword = redact({ data: signIn.data, error: signIn.error && { message: signIn.error.message, code: signIn.error.code, category: signIn.error.category } });
  expect(!signIn.error, 'signInWithPassword returned an error', signIn.error && (signIn.error.message || String(signIn.error)));
  expect(signIn.data && signIn.data.session && isId(signIn.data.session.access_token), 'session.access_token', results.signInWithPassword);

  current = 'getUser';
  const user = await auth.getUser();
  results.getUser = redact({ data: user.data, error: user.error && user.error.message });
  expect(!user.error && user.data && user.data.user, 'auth.getUser()', results.getUser);

  const model = app.models[env.WEDA_MODEL];
  const title = `zida-jssdk-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const withEnv = (p) => (envType ? { ...p, envType } : p);

  current = 'create';
  const created = await model.create(withEnv({ data: { title, amount: 42, kind: '餐饮' } }));
  results.create = created;
  expect(created && created.data && isId(created.data.id), 'create: data.id', created);
  expect(isId(created.requestId), 'create: requestId', created);
  const id = created.data.id;

  current = 'get';
  const got = await model.get(withEnv({ filter: { where: { _id: { $eq: id } } } }));
  results.get = got;
  expect(got.data && got.data._id === id && got.data.title === title && got.data.amount === 42 && got.data.kind === '餐饮',
    'get: record values (SDK unwraps data.record)', got.data);

  current = 'list';
  const listed = await model.list(withEnv({ filter: { where: { title: { $eq: title } } }, getCount: true, pageSize: 10, pageNumber: 1 }));
  results.list = listed;
  expect(Array.isArray(listed.data.records) && listed.data.records.length === 1 && listed.data.records[0]._id === id,
    'list: exactly the created record', listed.data);
  expect(listed.data.total === 1, 'list: total', listed.data.total);

  // tidy up (not part of the required flow; failure here is still reported)
  current = 'delete';
  const del = await model.delete(withEnv({ filter: { where: { _id: { $eq: id } } } }));
  results.delete = del;
  expect(del.data && del.data.count === 1, 'delete: data.count 1', del.data);
}

main().then(() => {
  process.stdout.write(`${JSON.stringify({ ok: true, results, http }, null, 2)}\n`);
  process.exit(0);
}, (err) => {
  process.stdout.write(`${JSON.stringify({
    ok: false,
    failedStep: current,
    error: err instanceof Fail ? err.message : String(err && (err.stack || err)),
    sdkError: err && err.name === 'WxCloudSDKError'
      ? { message: err.message, code: err.code, originError: err.originError && { message: err.originError.message, code: err.originError.code, requestId: err.originError.requestId } }
      : undefined,
    results,
    http,
  }, null, 2)}\n`);
  process.exit(1);
});
