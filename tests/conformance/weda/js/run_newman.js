#!/usr/bin/env node
/*
 * run_newman.js — runs weda.postman_collection.json with newman (programmatic API).
 *
 * The collection's own variables (host, secretId, secretKey, envType, model, instanceId) are
 * overwritten in the loaded collection object from the environment, so the collection-level
 * pre-request script (which uses pm.collectionVariables) sees them unchanged:
 *   WEDA_DOMAIN -> host, WEDA_SECRET_ID -> secretId, WEDA_SECRET_KEY -> secretKey,
 *   WEDA_ENV_TYPE -> envType (default prod), WEDA_MODEL -> model, WEDA_INSTANCE_ID -> instanceId
 *
 * Prints a JSON summary on stdout; exit code 0 only if there were no assertion failures,
 * no script errors and no request errors (connection refused etc.).
 * Optional: NEWMAN_TIMEOUT_MS (default 30000), NEWMAN_CLI=1 adds newman's cli reporter on stderr.
 */
const path = require('path');
const fs = require('fs');
const newman = require('newman');

const collection = JSON.parse(fs.readFileSync(path.join(__dirname, 'weda.postman_collection.json'), 'utf8'));

const overrides = {
  host: process.env.WEDA_DOMAIN,
  secretId: process.env.WEDA_SECRET_ID,
  secretKey: process.env.WEDA_SECRET_KEY,
  envType: process.env.WEDA_ENV_TYPE || 'prod',
  model: process.env.WEDA_MODEL,
  instanceId: process.env.WEDA_INSTANCE_ID,
};
for (const v of collection.variable) {
  if (overrides[v.key] !== undefined) v.value = overrides[v.key];
}
const missing = ['host', 'secretId', 'secretKey', 'model'].filter((k) => !overrides[k]);
if (missing.length) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: `missing env for: ${missing.join(', ')}` })}\n`);
  process.exit(2);
}

const reporters = process.env.NEWMAN_CLI === '1' ? ['cli'] : [];

newman.run({
  collection,
  reporters,
  reporter: { cli: { noSummary: false } },
  timeout: Number(process.env.NEWMAN_TIMEOUT_MS || 30000),
  timeoutRequest: Number(process.env.NEWMAN_TIMEOUT_MS || 30000),
  timeoutScript: Number(process.env.NEWMAN_TIMEOUT_MS || 30000),
  insecure: true,
}, (err, summary) => {
  if (err) {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(err && err.stack || err) })}\n`);
    process.exit(1);
  }
  const { run } = summary;
  const executions = run.executions.map((ex) => ({
    item: ex.item.name,
    request: ex.request && { method: ex.request.method, url: ex.request.url.toString() },
    response: ex.response && {
      code: ex.response.code,
      status: ex.response.status,
      body: (() => {
        const text = ex.response.stream ? ex.response.stream.toString() : '';
        try { return JSON.parse(text); } catch (e) { return text.slice(0, 2000); }
      })(),
    },
    requestError: ex.requestError ? String(ex.requestError.message || ex.requestError) : undefined,
    assertions: (ex.assertions || []).map((a) => ({
      assertion: a.assertion,
      passed: !a.error,
      error: a.error ? a.error.message : undefined,
    })),
  }));
  const failures = run.failures.map((f) => ({
    at: f.at,
    source: f.source && f.source.name,
    error: f.error && (f.error.message || f.error.name),
  }));
  const out = {
    ok: failures.length === 0 && run.stats.assertions.failed === 0 && run.stats.requests.failed === 0
      && run.stats.prerequestScripts.failed === 0 && run.stats.testScripts.failed === 0,
    stats: run.stats,
    failures,
    executions,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  process.exit(out.ok ? 0 : 1);
});
