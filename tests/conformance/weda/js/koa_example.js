/*
 * koa_example.js — WeDa private-deployment guide, "2.1 Node.js 实现示例"
 * (Koa + node-fetch: clientCredential token -> DescribeInstanceApproverList).
 *
 * SOURCE: https://docs.cloudbase.net/lowcode/private/develop/openapi-call
 *         (English: https://docs.cloudbase.net/en/lowcode/private/develop/openapi-call)
 *
 * PROVENANCE — READ THIS BEFORE TREATING THE FILE AS "THE OFFICIAL EXAMPLE":
 *   The stored copies of that page (searched with ~12 different queries in the
 *   `pages`, `docs` and `code` corpora, in both languages, plus exact-string
 *   searches for "DescribeInstanceApproverList" in the GitHub index: 0 hits)
 *   only ever show the page up to the start of section 2.1. The code block
 *   itself was NOT retrievable. So NO line of this file is verbatim.
 *
 *   What the page text DOES fix, and what this file follows exactly:
 *     - token URL  : POST {domain}/auth/v1/token/clientCredential
 *     - headers    : Content-Type: application/json
 *                    Authorization: Basic <Base64(SecretId:SecretKey)>
 *     - body       : {"grant_type": "client_credentials"}
 *     - response   : {"token_type":"Bearer","access_token":"...","expires_in":259200}
 *     - API call   : {domain}/weda/workflow/v1/{EnvType}/DescribeInstanceApproverList
 *                    with "Authorization: Bearer <access_token>",
 *                    Content-Type application/json (the page says "application/json;utf-8",
 *                    the newer zh revision "application/json;charset=utf-8")
 *     - EnvType    : prod (正式环境) or dev (体验环境)
 *     - libraries  : Koa + node-fetch (the section title of the task brief; node-fetch@2
 *                    is used because it is the CommonJS line).
 *
 *   RECONSTRUCTED (my choices, not from the page):
 *     - the four constants domain / SecretId / SecretKey / EnvType read
 *       process.env.WEDA_DOMAIN / WEDA_SECRET_ID / WEDA_SECRET_KEY / WEDA_ENV_TYPE
 *       (this substitution is the one change the brief asked for);
 *     - single Koa middleware answering every request (no koa-router, since the
 *       example's dependency list is koa + node-fetch only);
 *     - the InstanceId is taken from the query string (?InstanceId=... or ?instanceId=...);
 *     - on error the middleware answers 500 {message};
 *     - listen port: process.env.KOA_PORT || 3000 (the page's port is unknown; 3000 is
 *       the usual Koa doc default; KOA_PORT lets run_koa_example.js pick a free port).
 */
const Koa = require('koa');
const fetch = require('node-fetch');

const domain = process.env.WEDA_DOMAIN; // 软件化部署后访问 WeDa 的地址, e.g. http://ip:port
const SecretId = process.env.WEDA_SECRET_ID;
const SecretKey = process.env.WEDA_SECRET_KEY;
const EnvType = process.env.WEDA_ENV_TYPE; // prod(正式环境) 或 dev(体验环境)

const app = new Koa();

// 获取 Access Token
async function getAccessToken() {
  const res = await fetch(`${domain}/auth/v1/token/clientCredential`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Basic ${Buffer.from(`${SecretId}:${SecretKey}`).toString('base64')}`,
    },
    body: JSON.stringify({ grant_type: 'client_credentials' }),
  });
  const data = await res.json();
  return data.access_token;
}

// 查询流程实例审批人列表
async function describeInstanceApproverList(accessToken, instanceId) {
  const res = await fetch(`${domain}/weda/workflow/v1/${EnvType}/DescribeInstanceApproverList`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Bearer ${accessToken}`,
    },
    body: JSON.stringify({ InstanceId: instanceId }),
  });
  return res.json();
}

app.use(async (ctx) => {
  try {
    const accessToken = await getAccessToken();
    const instanceId = ctx.query.InstanceId || ctx.query.instanceId;
    ctx.body = await describeInstanceApproverList(accessToken, instanceId);
  } catch (err) {
    ctx.status = 500;
    ctx.body = { message: err.message };
  }
});

const port = process.env.KOA_PORT || 3000;
app.listen(port, () => {
  console.log(`Server running at http://localhost:${port}`);
});
