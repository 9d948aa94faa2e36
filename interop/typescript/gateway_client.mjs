// @ts-check
/**
 * Gateway interop: the official MCP TypeScript SDK client against mcp-auth-server in gateway
 * mode.
 *
 * The server runs with `--upstream <an MCP server>/mcp --upstream-header "NAME: VALUE"
 * --tool-scope "headers=mcp:admin"`, in front of `upstream_server.mjs` or
 * `upstream_server.py` (tools `echo`, `headers`, `progress`). The SDK's `auth()` (driven by
 * `StreamableHTTPClientTransport`) does every protocol step; this script plays the user at
 * the sign-in page through `MemoryProvider` of `sign_in.mjs` (the `OAuthClientProvider`
 * interface in memory), as `client.mjs` does.
 *
 *     node gateway_client.mjs --server http://127.0.0.1:PORT --user NAME --password PASSWORD \
 *         --expect-header NAME=VALUE
 *
 * Steps, each reported on stderr; any failure exits 1 with a message naming the step:
 * 1. connect to <server>/mcp: 401, discovery, registration, sign-in for `mcp:tools`,
 *    `finishAuth(code)`; reconnect and initialize (an `Mcp-Session-Id` session the gateway
 *    must carry to the upstream);
 * 2. `tools/list` holds `echo`, `headers` and `progress`; `echo` returns its text;
 * 3. `progress(3)` with `onprogress`: all three notifications arrive before the result, in
 *    order, and the result is "done"; the first arrives at least 100 ms before the result (the
 *    upstream sleeps 100 ms after each, so only a gateway that buffers the upstream's SSE
 *    response instead of streaming it brings them all at once);
 * 4. `headers`, which needs `mcp:admin`: the gateway answers 403 `insufficient_scope` naming
 *    `mcp:admin`. This SDK version (1.32.2) answers that by refreshing its token, which cannot
 *    widen the scope, and gives up when the same 403 comes back; so the script steps up the
 *    way an interactive client of this SDK must: it drops its tokens and runs the SDK's
 *    `auth()` for the challenged scope (the user signs in a second time), then the code
 *    exchange, and calls `headers` again on the same session. (Should a later SDK re-authorize
 *    by itself, the script accepts that too and says so.) The headers the upstream received:
 *    no `authorization`, no `cookie` (the client sent one), `x-mcp-auth-subject` the user,
 *    `x-mcp-auth-client-id` the registered client, `x-mcp-auth-scopes` both scopes (the
 *    client's own forged `X-MCP-Auth-*` copies must be gone), and the `--expect-header` the
 *    gateway was configured to add.
 */

import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';

import { InteropError, MemoryProvider, SIGN_IN_OPTIONS, bounded, closeConnection, reportOutcome, signInOnFirstConnection } from './sign_in.mjs';

/** Nothing listens here: the sign-in answer is a 302 whose Location we read, not follow. */
const REDIRECT_URI = 'http://127.0.0.1:33420/callback';
const BASE_SCOPE = 'mcp:tools';
const ADMIN_SCOPE = 'mcp:admin';
const TOOLS = ['echo', 'headers', 'progress'];
const PROGRESS_STEPS = 3;
/**
 * The upstream sleeps 100 ms after each notification, so a streamed response brings the first
 * one about 300 ms before the result, and a buffered one brings all at once; a loaded machine
 * only widens the gap.
 */
const MIN_STREAM_SPREAD_MS = 100;
/** What the client sends to see that the gateway removes it: a cookie, and forged identity. */
const FORGED_HEADERS = {
  cookie: 'interop-session=from-the-client',
  'x-mcp-auth-subject': 'forged-by-the-client',
  'x-mcp-auth-scopes': 'forged:scope'
};

/** @param {string} message */
function step(message) {
  process.stderr.write(`typescript-sdk gateway: ${message}\n`);
}

// --- the MCP client -------------------------------------------------------------------------

/**
 * The `name="value"` parameters of a `Bearer` challenge (RFC 6750 §3).
 * @param {string} header
 */
function challengeParams(header) {
  /** @type {Record<string, string>} */
  const params = {};
  for (const [, name, value] of header.replace(/^\s*bearer\s*/i, '').matchAll(/([\w-]+)\s*=\s*"([^"]*)"/g)) {
    params[name] = value;
  }
  return params;
}

/**
 * The text blocks of a tool result, failing on a tool error.
 * @param {any} result
 * @param {string} tool
 * @returns {string[]}
 */
function textsOf(result, tool) {
  if (result.isError) throw new InteropError(`${tool} returned a tool error: ${JSON.stringify(result)}`);
  return (result.content ?? []).map((/** @type {any} */ block) => block.text ?? '');
}

/**
 * The JSON object `headers` returned in its text block.
 * @param {any} result
 * @returns {Record<string, string>}
 */
function headersOf(result) {
  const texts = textsOf(result, 'headers');
  if (texts.length !== 1) throw new InteropError(`headers returned ${texts.length} content blocks, expected one`);
  const seen = JSON.parse(texts[0]);
  if (!seen || typeof seen !== 'object' || Array.isArray(seen)) throw new InteropError(`headers returned ${texts[0]}`);
  return seen;
}

/**
 * What the upstream received: the verified principal and the configured header, no secrets.
 * @param {Record<string, string>} seen
 * @param {string} username
 * @param {string} clientId
 * @param {string[]} scopes
 * @param {[string, string]} expected
 */
function checkHeaders(seen, username, clientId, scopes, expected) {
  for (const name of ['authorization', 'cookie']) {
    if (name in seen) throw new InteropError(`the upstream received '${name}': ${JSON.stringify(seen[name])}`);
  }
  if (seen['x-mcp-auth-subject'] !== username) {
    throw new InteropError(`x-mcp-auth-subject is ${JSON.stringify(seen['x-mcp-auth-subject'])}, expected '${username}'`);
  }
  if (seen['x-mcp-auth-client-id'] !== clientId) {
    throw new InteropError(`x-mcp-auth-client-id is ${JSON.stringify(seen['x-mcp-auth-client-id'])}, expected '${clientId}'`);
  }
  const received = seen['x-mcp-auth-scopes'];
  if (typeof received !== 'string' || [...new Set(received.split(' '))].sort().join(' ') !== [...scopes].sort().join(' ')) {
    throw new InteropError(`x-mcp-auth-scopes is ${JSON.stringify(received)}, expected the space-separated ${scopes}`);
  }
  const [name, value] = expected;
  if (seen[name.toLowerCase()] !== value) {
    throw new InteropError(`${name.toLowerCase()} is ${JSON.stringify(seen[name.toLowerCase()])}, expected '${value}' (--upstream-header)`);
  }
}

/**
 * @param {string} server
 * @param {MemoryProvider} provider
 * @param {{ status: number, url: string, challenge: string }[]} [responses] every response, recorded
 */
function connectTo(server, provider, responses) {
  /** @type {typeof fetch} */
  const recording = async (input, init) => {
    const response = await fetch(input, init);
    responses?.push({ status: response.status, url: String(input), challenge: response.headers.get('www-authenticate') ?? '' });
    return response;
  };
  const transport = new StreamableHTTPClientTransport(new URL(`${server}/mcp`), {
    authProvider: provider,
    requestInit: { headers: FORGED_HEADERS },
    fetch: recording
  });
  const client = new Client({ name: 'mcp-auth-gateway-interop', version: '0.0.0' });
  return { client, transport };
}

/**
 * @param {string} server
 * @param {string} username
 * @param {string} password
 * @param {[string, string]} expected
 */
async function run(server, username, password, expected) {
  const provider = new MemoryProvider({
    username,
    password,
    redirectUri: REDIRECT_URI,
    clientName: 'mcp-auth gateway interop (TypeScript SDK)',
    step
  });

  // 1. The first connection is refused with 401; the SDK discovers, registers and sends the
  //    user to sign in, then reports that the authorization must be finished.
  const first = connectTo(server, provider);
  const { clientInfo, redirect } = await signInOnFirstConnection(first, provider);
  const clientId = clientInfo.client_id;
  if (redirect.state !== provider.expectedState) throw new InteropError('state mismatch');
  await bounded('token exchange', first.transport.finishAuth(redirect.code));
  if (provider.current?.scope !== BASE_SCOPE) {
    throw new InteropError(`the first token's scope is ${JSON.stringify(provider.current?.scope)}, expected '${BASE_SCOPE}'`);
  }
  step(`registered client ${clientId}, signed in for '${BASE_SCOPE}'`);

  /** @type {{ status: number, url: string, challenge: string }[]} */
  const responses = [];
  const second = connectTo(server, provider, responses);
  try {
    await bounded('initialize', second.client.connect(second.transport));
    const version = second.client.getServerVersion();
    if (!second.transport.sessionId) throw new InteropError('the gateway passed on no Mcp-Session-Id');
    step(`initialized with ${version?.name} ${version?.version}, session ${second.transport.sessionId}`);

    // 2. The upstream's tools, and a plain call.
    const listed = (await bounded('tools/list', second.client.listTools())).tools.map((tool) => tool.name);
    if (!TOOLS.every((name) => listed.includes(name))) throw new InteropError(`tools/list holds ${listed}, expected ${TOOLS}`);
    const echoed = textsOf(await bounded('echo', second.client.callTool({ name: 'echo', arguments: { text: 'through the gateway' } })), 'echo');
    if (echoed.join() !== 'through the gateway') throw new InteropError(`echo returned ${JSON.stringify(echoed)}`);
    step('tools/list holds echo, headers and progress; echo returned its text');

    // 3. Progress notifications, streamed before the result.
    /** @type {{ progress: number, at: number }[]} */
    const progress = [];
    const result = await bounded(
      'progress',
      second.client.callTool({ name: 'progress', arguments: { steps: PROGRESS_STEPS } }, undefined, {
        onprogress: (update) => progress.push({ progress: update.progress, at: performance.now() })
      })
    );
    // Copied as the call returns: a notification delivered after the result would be missing.
    const doneAt = performance.now();
    const atResult = progress.map((update) => update.progress);
    if (textsOf(result, 'progress').join() !== 'done') throw new InteropError(`progress returned ${JSON.stringify(result)}`);
    if (atResult.join() !== '1,2,3') throw new InteropError(`progress notifications before the result: ${atResult}, expected 1,2,3`);
    const spreadMs = doneAt - progress[0].at;
    if (spreadMs < MIN_STREAM_SPREAD_MS) {
      throw new InteropError(`the first progress notification came ${spreadMs.toFixed(0)} ms before the result: the response was buffered, not streamed`);
    }
    step(`progress: ${PROGRESS_STEPS} notifications arrived before the result 'done', the first ${spreadMs.toFixed(0)} ms before it`);

    // 4. `headers` needs mcp:admin: 403 insufficient_scope, then the step-up.
    const before = responses.length;
    const callHeaders = () => bounded('headers', second.client.callTool({ name: 'headers', arguments: {} }));
    /** @type {any} */
    let headersResult;
    try {
      headersResult = await callHeaders();
      step('the SDK re-authorized by itself after the 403');
    } catch (err) {
      if (!(err instanceof StreamableHTTPError && err.code === 403)) throw err;
      step(`the SDK gave up after the 403 (${err.message}); re-authorizing for the challenged scope`);
    }
    const forbidden = responses.slice(before).filter((response) => response.status === 403);
    if (forbidden.length === 0) {
      throw new InteropError(`expected a 403 for headers, saw ${JSON.stringify(responses.slice(before).map((r) => r.status))}`);
    }
    const params = challengeParams(forbidden[0].challenge);
    const challenged = (params.scope ?? '').split(' ');
    if (params.error !== 'insufficient_scope' || !challenged.includes(ADMIN_SCOPE)) {
      throw new InteropError(`the 403's challenge is '${forbidden[0].challenge}', expected insufficient_scope naming ${ADMIN_SCOPE}`);
    }
    step(`headers: 403 insufficient_scope, scope='${params.scope}'`);
    if (!headersResult) {
      // The SDK's own flow, for the scope the challenge names; the tokens are dropped first
      // because `auth()` would otherwise refresh them, which keeps their scope.
      provider.current = undefined;
      const url = new URL(`${server}/mcp`);
      const started = await bounded('step-up authorization', auth(provider, { serverUrl: url, scope: params.scope }));
      if (started !== 'REDIRECT' || !provider.redirect) throw new InteropError(`auth() for the step-up returned ${started}`);
      if (provider.redirect.state !== provider.expectedState) throw new InteropError('state mismatch in the step-up');
      const finished = await bounded(
        'step-up token exchange',
        auth(provider, { serverUrl: url, scope: params.scope, authorizationCode: provider.redirect.code })
      );
      if (finished !== 'AUTHORIZED') throw new InteropError(`the step-up code exchange returned ${finished}`);
      headersResult = await callHeaders();
    }
    if (provider.signIns !== 2) throw new InteropError(`${provider.signIns} sign-ins happened, expected 2 (the first and the step-up)`);
    if (provider.client?.client_id !== clientId) throw new InteropError('the step-up registered another client');
    const granted = (provider.current?.scope ?? '').split(' ');
    if (!granted.includes(BASE_SCOPE) || !granted.includes(ADMIN_SCOPE)) {
      throw new InteropError(`the stepped-up token's scope is '${provider.current?.scope}', expected both scopes`);
    }
    const seen = headersOf(headersResult);
    checkHeaders(seen, username, clientId, [BASE_SCOPE, ADMIN_SCOPE], expected);
    step(`signed in again for '${provider.current?.scope}'; the upstream received: ${JSON.stringify(seen)}`);
  } finally {
    await closeConnection(second);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      ...SIGN_IN_OPTIONS,
      'expect-header': { type: 'string' }
    }
  });
  const { server, user, password } = values;
  const [name, ...rest] = (values['expect-header'] ?? '').split('=');
  if (!server || !user || password === undefined || !name || rest.length === 0) {
    process.stderr.write('usage: node gateway_client.mjs --server URL --user NAME --password PASSWORD --expect-header NAME=VALUE\n');
    return 2;
  }
  return reportOutcome(step, () => run(server.replace(/\/+$/, ''), user, password, [name.trim(), rest.join('=').trim()]));
}

process.exitCode = await main();
