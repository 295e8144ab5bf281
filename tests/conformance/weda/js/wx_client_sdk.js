#!/usr/bin/env node
/*
 * wx_client_sdk.js — drives the UNMODIFIED @cloudbase/wx-cloud-client-sdk HTTP ORM client
 * (generateHTTPClient) against a WeDa-compatible server, exercising every model operation
 * with value assertions.
 *
 * generateHTTPClient(callFunction, fetch, baseUrl, { sqlBaseUrl })   [lib/index.d.ts, lib/orm/http-orm-client.d.ts]
 *   - fetch is called as fetch({ url, body, method }) — no headers — and must resolve to the
 *     PARSED JSON BODY (not a Response)   [lib/wxCloudClientSDK.cjs.js, function `g`]
 *   - url    = [baseUrl, envType === 'pre' ? 'pre' : 'prod', `${model}/${op}`].join('/')
 *   - body   = JSON.stringify({ ...defaults, ...params })  (params incl. envType if given)
 *   - method = 'post' | 'put' (lower case); runSQLTemplate uses 'POST'
 * This script supplies that transport: it adds Content-Type: application/json and
 * Authorization: Bearer <clientCredential token> and returns the parsed body whatever the
 * HTTP status (same as @cloudbase/js-sdk's transport does).
 *
 * Env (required): WEDA_DOMAIN  WEDA_SECRET_ID  WEDA_SECRET_KEY  WEDA_MODEL; optional WEDA_SQL_TEMPLATE (unset: the
 * runSQLTemplate step is skipped and reported in `skipped`)
 * Env (optional): WEDA_ENV_TYPE ('pre' => SDK sends /pre/, anything else => SDK sends /prod/)
 *                 WX_SDK_TRACE=1 prints every HTTP exchange to stderr
 * Model WEDA_MODEL must have fields: title (text), amount (number), kind (单选: 差旅/餐饮/办公).
 * SQL template WEDA_SQL_TEMPLATE must take one STRING parameter `kind` and return the rows of
 * WEDA_MODEL whose kind equals it (e.g. SELECT * FROM <model> WHERE kind = {{kind}}).
 *
 * Output: one JSON object on stdout. Exit 0 = all assertions passed, 1 = first failure
 * (the JSON then has ok:false, failedStep, error), 2 = missing env.
 */
const fetch = require('node-fetch');
const { generateHTTPClient } = require('@cloudbase/wx-cloud-client-sdk');

const env = process.env;
const DOMAIN = (env.WEDA_DOMAIN || '').replace(/\/+$/, '');
const MODEL = env.WEDA_MODEL;
const SQL_TEMPLATE = env.WEDA_SQL_TEMPLATE;
const ENV_TYPE = env.WEDA_ENV_TYPE === 'pre' ? 'pre' : undefined; // SDK: only 'pre' is distinguished
const TRACE = env.WX_SDK_TRACE === '1';

const missing = ['WEDA_DOMAIN', 'WEDA_SECRET_ID', 'WEDA_SECRET_KEY', 'WEDA_MODEL']
  .filter((k) => !env[k]);
if (missing.length) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: `missing env: ${missing.join(', ')}` })}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------- transport
const http = []; // log of exchanges (method, url, status)
let token = null;
let tokenExpiresAt = 0;

async function getToken() {
  if (token && Date.now() < tokenExpiresAt) return token;
  const url = `${DOMAIN}/auth/v1/token/clientCredential`;
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Basic ${Buffer.from(`${env.WEDA_SECRET_ID}:${env.WEDA_SECRET_KEY}`).toString('base64')}`,
    },
    body: JSON.stringify({ grant_type: 'client_credentials' }),
  });
  const text = await res.text();
  http.push({ method: 'POST', url, status: res.status });
  let json;
  try { json = JSON.parse(text); } catch (e) { throw new Error(`token: non-JSON HTTP ${res.status}: ${text.slice(0, 300)}`); }
  if (res.status !== 200 || !json.access_token) {
    throw new Error(`token: HTTP ${res.status} ${text.slice(0, 300)}`);
  }
  if (json.token_type !== 'Bearer') throw new Error(`token: token_type is ${JSON.stringify(json.token_type)}, expected "Bearer"`);
  if (!(typeof json.expires_in === 'number' && json.expires_in > 0)) throw new Error(`token: bad expires_in ${JSON.stringify(json.expires_in)}`);
  token = json.access_token;
  tokenExpiresAt = Date.now() + (json.expires_in - 60) * 1000;
  return token;
}

async function transport({ url, body, method, headers }) {
  const bearer = await getToken();
  const m = String(method || 'POST').toUpperCase();
  const res = await fetch(url, {
    method: m,
    headers: { 'Content-Type': 'application/json', ...(headers || {}), Authorization: `Bearer ${bearer}` },
    body,
  });
  const text = await res.text();
  http.push({ method: m, url, status: res.status });
  if (TRACE) process.stderr.write(`${m} ${url}\n  > ${body}\n  < ${res.status} ${text.slice(0, 2000)}\n`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`non-JSON response HTTP ${res.status} for ${m} ${url}: ${text.slice(0, 300)}`);
  }
}

const callFunction = async () => { throw new Error('callFunction is not available in this harness'); };

const models = generateHTTPClient(callFunction, transport, `${DOMAIN}/v1/model`, { sqlBaseUrl: `${DOMAIN}/v1/sql` });
const m = models[MODEL];

// ---------------------------------------------------------------- assertions
const results = {};
class Fail extends Error {}
function expect(cond, msg, actual) {
  if (!cond) throw new Fail(`${msg}${actual !== undefined ? ` — got ${JSON.stringify(actual)}` : ''}`);
}
const withEnv = (p) => (ENV_TYPE ? { ...p, envType: ENV_TYPE } : p);
let current = '';
async function step(name, fn) {
  current = name;
  results[name] = await fn();
}
const amounts = (res) => res.data.records.map((r) => r.amount);
const isId = (v) => typeof v === 'string' && v.length > 0;

const tag = `zida-wx-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const T = (s) => `${tag}-${s}`;
const mine = { title: { $search: tag } };
const ids = {};

async function main() {
  // create -------------------------------------------------------------------
  await step('create', async () => {
    const res = await m.create(withEnv({ data: { title: T('a'), amount: 100, kind: '差旅' } }));
    expect(res && res.data && isId(res.data.id), 'create: data.id must be a non-empty string', res);
    expect(isId(res.requestId), 'create: requestId must be a non-empty string', res);
    ids.a = res.data.id;
    return res;
  });

  // createMany ---------------------------------------------------------------
  await step('createMany', async () => {
    const res = await m.createMany(withEnv({
      data: [
        { title: T('b'), amount: 200, kind: '餐饮' },
        { title: T('c'), amount: 300, kind: '办公' },
        { title: T('d'), amount: 50, kind: '差旅' },
      ],
    }));
    const list = res && res.data && res.data.idList;
    expect(Array.isArray(list) && list.length === 3 && list.every(isId), 'createMany: data.idList must be 3 ids', res);
    expect(new Set([ids.a, ...list]).size === 4, 'createMany: ids must be distinct', list);
    [ids.b, ids.c, ids.d] = list;
    return res;
  });

  // get ----------------------------------------------------------------------
  await step('get', async () => {
    const res = await m.get(withEnv({ filter: { where: { _id: { $eq: ids.a } } } }));
    // the SDK replaces res.data with res.data.record
    const r = res.data;
    expect(r && r._id === ids.a, 'get: record _id', r);
    expect(r.title === T('a') && r.amount === 100 && r.kind === '差旅', 'get: record values', r);
    expect(isId(res.requestId), 'get: requestId', res);
    return res;
  });

  // list: $eq + getCount -------------------------------------------------------
  await step('list_eq', async () => {
    const res = await m.list(withEnv({ filter: { where: { title: { $eq: T('b') } } }, getCount: true }));
    expect(Array.isArray(res.data.records) && res.data.records.length === 1, 'list $eq: 1 record', res.data);
    expect(res.data.total === 1, 'list $eq: total 1', res.data.total);
    const r = res.data.records[0];
    expect(r._id === ids.b && r.amount === 200 && r.kind === '餐饮', 'list $eq: values', r);
    expect(isId(res.requestId), 'list: requestId', res);
    return res;
  });

  // list: $gt + orderBy asc ------------------------------------------------------
  await step('list_gt_orderBy', async () => {
    const res = await m.list(withEnv({
      filter: { where: { $and: [mine, { amount: { $gt: 150 } }] } },
      orderBy: [{ amount: 'asc' }],
      getCount: true,
    }));
    expect(JSON.stringify(amounts(res)) === '[200,300]', 'list $gt: amounts asc', amounts(res));
    expect(res.data.total === 2, 'list $gt: total', res.data.total);
    return res;
  });

  // list: $in + orderBy desc -----------------------------------------------------
  await step('list_in', async () => {
    const res = await m.list(withEnv({
      filter: { where: { title: { $search: tag }, kind: { $in: ['差旅', '办公'] } } },
      orderBy: [{ amount: 'desc' }],
      getCount: true,
    }));
    expect(JSON.stringify(amounts(res)) === '[300,100,50]', 'list $in: amounts desc', amounts(res));
    expect(res.data.total === 3, 'list $in: total', res.data.total);
    return res;
  });

  // list: $search + paging -------------------------------------------------------
  await step('list_search_page1', async () => {
    const res = await m.list(withEnv({
      filter: { where: mine }, orderBy: [{ amount: 'asc' }], pageSize: 2, pageNumber: 1, getCount: true,
    }));
    expect(JSON.stringify(amounts(res)) === '[50,100]', 'list $search p1: amounts', amounts(res));
    expect(res.data.total === 4, 'list $search p1: total counts all matches', res.data.total);
    return res;
  });
  await step('list_search_page2', async () => {
    const res = await m.list(withEnv({
      filter: { where: mine }, orderBy: [{ amount: 'asc' }], pageSize: 2, pageNumber: 2, getCount: true,
    }));
    expect(JSON.stringify(amounts(res)) === '[200,300]', 'list $search p2: amounts', amounts(res));
    expect(res.data.total === 4, 'list $search p2: total', res.data.total);
    return res;
  });

  // list: nested $and / $or --------------------------------------------------------
  await step('list_and_or', async () => {
    const res = await m.list(withEnv({
      filter: { where: { $and: [mine, { $or: [{ amount: { $lt: 60 } }, { kind: { $eq: '餐饮' } }] }] } },
      orderBy: [{ amount: 'asc' }],
      getCount: true,
    }));
    expect(JSON.stringify(amounts(res)) === '[50,200]', 'list $and/$or: amounts', amounts(res));
    expect(res.data.total === 2, 'list $and/$or: total', res.data.total);
    return res;
  });

  // update ---------------------------------------------------------------------
  await step('update', async () => {
    const res = await m.update(withEnv({ filter: { where: { _id: { $eq: ids.a } } }, data: { amount: 110 } }));
    expect(res.data && res.data.count === 1, 'update: data.count 1', res.data);
    const after = await m.get(withEnv({ filter: { where: { _id: { $eq: ids.a } } } }));
    expect(after.data.amount === 110 && after.data.title === T('a') && after.data.kind === '差旅',
      'update: get after update (only amount changed)', after.data);
    return { update: res, getAfter: after };
  });

  // updateMany -----------------------------------------------------------------
  await step('updateMany', async () => {
    const res = await m.updateMany(withEnv({
      filter: { where: { $and: [mine, { kind: { $eq: '差旅' } }] } }, data: { amount: 120 },
    }));
    expect(res.data && res.data.count === 2, 'updateMany: data.count 2', res.data);
    const after = await m.list(withEnv({ filter: { where: { $and: [mine, { kind: { $eq: '差旅' } }] } }, getCount: true }));
    expect(after.data.total === 2 && amounts(after).every((a) => a === 120), 'updateMany: list after', after.data);
    return { updateMany: res, listAfter: after };
  });

  // upsert: create branch ------------------------------------------------------
  await step('upsert_create', async () => {
    const res = await m.upsert(withEnv({
      filter: { where: { title: { $eq: T('e') } } },
      create: { title: T('e'), amount: 500, kind: '办公' },
      update: { amount: 501 },
    }));
    expect(res.data && isId(res.data.id), 'upsert(create): data.id non-empty', res.data);
    expect(!res.data.count, 'upsert(create): data.count must be 0/absent', res.data);
    ids.e = res.data.id;
    const after = await m.get(withEnv({ filter: { where: { _id: { $eq: ids.e } } } }));
    expect(after.data.title === T('e') && after.data.amount === 500 && after.data.kind === '办公',
      'upsert(create): get after', after.data);
    return { upsert: res, getAfter: after };
  });

  // upsert: update branch ------------------------------------------------------
  await step('upsert_update', async () => {
    const res = await m.upsert(withEnv({
      filter: { where: { title: { $eq: T('e') } } },
      create: { title: T('e'), amount: 500, kind: '办公' },
      update: { amount: 501 },
    }));
    expect(res.data && res.data.count === 1, 'upsert(update): data.count 1', res.data);
    expect(!res.data.id, 'upsert(update): data.id must be empty/absent', res.data);
    const after = await m.list(withEnv({ filter: { where: { title: { $eq: T('e') } } }, getCount: true }));
    expect(after.data.total === 1 && after.data.records[0]._id === ids.e && after.data.records[0].amount === 501,
      'upsert(update): exactly one record, amount 501', after.data);
    return { upsert: res, listAfter: after };
  });

  // runSQLTemplate ----------------------------------------------------------------
  if (!SQL_TEMPLATE) results.skipped = ['runSQLTemplate'];
  else await step('runSQLTemplate', async () => {
    // params {kind:'差旅'} => body {"parameter":[{"key":"kind","type":"STRING","value":"差旅"}]}
    const res = await m.runSQLTemplate(withEnv({ templateName: SQL_TEMPLATE, params: { kind: '差旅' } }));
    const records = res && res.data && res.data.records;
    expect(Array.isArray(records), 'runSQLTemplate: data.records (Response.Data.records) array', res);
    expect(isId(res.RequestId), 'runSQLTemplate: Response.RequestId', res);
    expect(records.every((r) => !('kind' in r) || r.kind === '差旅'), 'runSQLTemplate: every kind is 差旅', records);
    const titles = records.map((r) => r.title);
    expect(titles.includes(T('a')) && titles.includes(T('d')), 'runSQLTemplate: contains this run\'s 差旅 rows', titles);
    expect(!titles.includes(T('b')) && !titles.includes(T('c')) && !titles.includes(T('e')),
      'runSQLTemplate: no non-差旅 rows of this run', titles);
    return res;
  });

  // delete -----------------------------------------------------------------------
  await step('delete', async () => {
    const res = await m.delete(withEnv({ filter: { where: { _id: { $eq: ids.b } } } }));
    expect(res.data && res.data.count === 1, 'delete: data.count 1', res.data);
    const after = await m.list(withEnv({ filter: { where: { _id: { $eq: ids.b } } }, getCount: true }));
    expect(after.data.total === 0 && after.data.records.length === 0, 'delete: list after is empty', after.data);
    const got = await m.get(withEnv({ filter: { where: { _id: { $eq: ids.b } } } }));
    expect(!(got.data && got.data._id), 'delete: get after returns no record', got.data);
    return { delete: res, listAfter: after, getAfter: got };
  });

  // deleteMany -------------------------------------------------------------------
  await step('deleteMany', async () => {
    const res = await m.deleteMany(withEnv({ filter: { where: mine } }));
    expect(res.data && res.data.count === 4, 'deleteMany: data.count 4 (a,c,d,e)', res.data);
    const after = await m.list(withEnv({ filter: { where: mine }, getCount: true }));
    expect(after.data.total === 0 && after.data.records.length === 0, 'deleteMany: nothing left', after.data);
    return { deleteMany: res, listAfter: after };
  });

  // error path: body with `code` must make the SDK reject -----------------------------
  await step('error_unknown_model', async () => {
    let err = null;
    try {
      await models[`zida_no_such_model_${tag.replace(/-/g, '_')}`].list(withEnv({ getCount: true }));
    } catch (e) {
      err = e;
    }
    expect(err && err.name === 'WxCloudSDKError', 'unknown model: SDK must reject with WxCloudSDKError', err && String(err));
    // generateHTTPClient wraps its own error: the server's code/requestId sit on originError
    const inner = err.originError || {};
    return { name: err.name, message: err.message, code: err.code, originError: { name: inner.name, code: inner.code, requestId: inner.requestId } };
  });
}

main().then(() => {
  process.stdout.write(`${JSON.stringify({ ok: true, tag, ids, results, http }, null, 2)}\n`);
  process.exit(0);
}, (err) => {
  const out = {
    ok: false,
    failedStep: current,
    error: err instanceof Fail ? err.message : String(err && (err.stack || err)),
    sdkError: err && err.name === 'WxCloudSDKError'
      ? { message: err.message, code: err.code, requestId: err.requestId, originError: err.originError && { message: err.originError.message, code: err.originError.code, requestId: err.originError.requestId } }
      : undefined,
    tag,
    ids,
    results,
    http,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  process.exit(1);
});
