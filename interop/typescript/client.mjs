// @ts-check
/**
 * Interop check: the official MCP TypeScript SDK client against mcp-auth-server.
 *
 * The SDK's `auth()` (driven by `StreamableHTTPClientTransport`) does every protocol step:
 * RFC 9728 and RFC 8414 discovery, dynamic registration, PKCE, token exchange and refresh.
 * This script implements the `OAuthClientProvider` interface in memory and plays the user:
 * `redirectToAuthorization` answers the server's sign-in page instead of opening a browser.
 *
 *     node client.mjs --server http://127.0.0.1:PORT --user NAME --password PASSWORD \
 *         --refresh-after SECONDS
 *
 * Steps, each reported on stderr; any failure exits 1 with a message naming the step:
 * 1. connect to <server>/mcp: 401, discovery, registration as a public client, authorization
 *    request, sign-in; the redirect's `state` and `iss` are checked here (this SDK version
 *    does not check RFC 9207 `iss` itself: `finishAuth` takes only the code);
 * 2. `finishAuth(code)`: the token exchange; reconnect, initialize, `tools/call whoami`: the
 *    subject is the user, the scopes hold `mcp:tools`;
 * 3. wait past the access token's lifetime, call `whoami` again: the server answers 401, the
 *    transport refreshes (the provider sees new tokens without a new sign-in) and retries.
 */

import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

/** @typedef {import('@modelcontextprotocol/sdk/client/auth.js').OAuthClientProvider} OAuthClientProvider */
/** @typedef {import('@modelcontextprotocol/sdk/client/auth.js').OAuthDiscoveryState} OAuthDiscoveryState */
/** @typedef {import('@modelcontextprotocol/sdk/shared/auth.js').OAuthClientInformationMixed} OAuthClientInformationMixed */
/** @typedef {import('@modelcontextprotocol/sdk/shared/auth.js').OAuthTokens} OAuthTokens */

/** Nothing listens here: the sign-in answer is a 302 whose Location we read, not follow. */
const REDIRECT_URI = 'http://127.0.0.1:33419/callback';
const REQUIRED_SCOPE = 'mcp:tools';
const MAX_REDIRECTS = 5;
/** Bounds each network step, so that a hung server fails the run instead of stalling CI. */
const STEP_TIMEOUT_MS = 60_000;

class InteropError extends Error {}

/** @param {string} message */
function step(message) {
  process.stderr.write(`typescript-sdk: ${message}\n`);
}

/**
 * @template T
 * @param {string} what
 * @param {Promise<T>} promise
 * @returns {Promise<T>}
 */
async function bounded(what, promise) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new InteropError(`${what}: no answer in ${STEP_TIMEOUT_MS / 1000} s`)), STEP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// --- the user at the sign-in page ------------------------------------------------------------

/**
 * The attributes of one HTML start tag, decoded. Enough for the server-rendered sign-in page,
 * whose markup this check relies on; a browser would be more forgiving.
 * @param {string} tag
 * @returns {Record<string, string>}
 */
function attributes(tag) {
  /** @type {Record<string, string>} */
  const attrs = {};
  const pattern = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  for (const match of tag.replace(/^<\w+/, '').replace(/\/?>$/, '').matchAll(pattern)) {
    attrs[match[1].toLowerCase()] = decodeEntities(match[2] ?? match[3] ?? match[4] ?? '');
  }
  return attrs;
}

/** @param {string} text */
function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, entity) => {
    const e = entity.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    /** @type {Record<string, string>} */
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    return named[e] ?? _;
  });
}

/**
 * What a page says to the user: its alert, else its heading, else its start.
 * @param {string} html
 */
function pageMessage(html) {
  for (const pattern of [/role="alert"[^>]*>([\s\S]*?)</, /<h1[^>]*>([\s\S]*?)<\/h1>/]) {
    const found = html.match(pattern);
    if (found) return decodeEntities(found[1].replace(/<[^>]+>/g, '')).trim();
  }
  return html.slice(0, 300);
}

/**
 * The page's one POST form: its action, its named inputs and its decision buttons.
 * @param {string} html
 */
function parseSignInForm(html) {
  const forms = [...html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/gi)].filter(
    (m) => (attributes(m[0].slice(0, m[0].indexOf('>') + 1)).method ?? 'get').toLowerCase() === 'post'
  );
  if (forms.length !== 1) throw new InteropError(`sign-in page has ${forms.length} POST forms, expected exactly 1`);
  const [whole, body] = forms[0];
  const action = attributes(whole.slice(0, whole.indexOf('>') + 1)).action;
  /** @type {Record<string, string>} */
  const fields = {};
  for (const [input] of body.matchAll(/<input\b[^>]*>/gi)) {
    const a = attributes(input);
    if (a.name) fields[a.name] = a.value ?? '';
  }
  const decisions = [...body.matchAll(/<button\b[^>]*>/gi)]
    .map(([button]) => attributes(button))
    .filter((a) => a.name === 'decision')
    .map((a) => a.value ?? '');
  return { action, fields, decisions };
}

/**
 * Signs in through the server's page the way a person with a browser would, and returns the
 * parameters of the redirect back to the client.
 * @param {URL} authorizationUrl
 * @param {string} username
 * @param {string} password
 */
async function signIn(authorizationUrl, username, password) {
  let url = authorizationUrl.href;
  /** @type {Response | undefined} */
  let page;
  for (let i = 0; i < MAX_REDIRECTS && !page; i++) {
    const response = await fetch(url, { redirect: 'manual' });
    if ([301, 302, 303, 307, 308].includes(response.status)) {
      const location = response.headers.get('location') ?? '';
      if (location.startsWith(REDIRECT_URI)) {
        throw new InteropError(`/authorize redirected straight back to the client: ${location}`);
      }
      url = new URL(location, url).href;
      await response.body?.cancel();
    } else if (response.status === 200) {
      page = response;
    } else {
      throw new InteropError(`GET ${url} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
    }
  }
  if (!page) throw new InteropError(`more than ${MAX_REDIRECTS} redirects from the authorization URL`);
  if (!new URL(url).searchParams.get('request_id')) {
    throw new InteropError(`the sign-in page ${url} has no request_id in its URL`);
  }

  const form = parseSignInForm(await page.text());
  for (const name of ['username', 'password', 'request_id', 'csrf_token']) {
    if (!(name in form.fields)) throw new InteropError(`sign-in form has no input '${name}': ${Object.keys(form.fields)}`);
  }
  if ([...form.decisions].sort().join(',') !== 'approve,deny') {
    throw new InteropError(`sign-in form decisions are ${form.decisions}, expected approve and deny`);
  }
  const cookies = page.headers.getSetCookie();
  if (cookies.length !== 1) throw new InteropError(`sign-in page set ${cookies.length} cookies, expected the one CSRF cookie`);
  const [pair, ...flags] = cookies[0].split(';').map((part) => part.trim());
  if (!flags.some((flag) => flag.toLowerCase() === 'httponly')) {
    throw new InteropError(`the CSRF cookie is not HttpOnly: ${cookies[0]}`);
  }

  const body = new URLSearchParams({ ...form.fields, username, password, decision: 'approve' });
  const target = form.action ? new URL(form.action, url).href : url;
  const answer = await fetch(target, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pair },
    body
  });
  if (answer.status !== 302) {
    throw new InteropError(`approving the sign-in answered ${answer.status}, expected 302: ${pageMessage(await answer.text())}`);
  }
  const location = answer.headers.get('location') ?? '';
  if (!location.startsWith(`${REDIRECT_URI}?`)) {
    throw new InteropError(`approval redirected to '${location}', not to ${REDIRECT_URI}`);
  }
  const query = new URL(location).searchParams;
  for (const name of ['code', 'state', 'iss']) {
    if (query.getAll(name).length !== 1) throw new InteropError(`redirect carries ${query.getAll(name).length} '${name}' parameters`);
  }
  return { code: String(query.get('code')), state: String(query.get('state')), iss: String(query.get('iss')) };
}

// --- the OAuthClientProvider ----------------------------------------------------------------

/**
 * The SDK's `OAuthClientProvider` interface, in memory, recording what it was given.
 * @implements {OAuthClientProvider}
 */
class MemoryProvider {
  /**
   * @param {string} username
   * @param {string} password
   */
  constructor(username, password) {
    this.username = username;
    this.password = password;
    /** @type {OAuthClientInformationMixed | undefined} */
    this.client = undefined;
    /** @type {OAuthTokens | undefined} */
    this.current = undefined;
    /** @type {OAuthTokens[]} */
    this.savedTokens = [];
    /** @type {OAuthDiscoveryState | undefined} */
    this.discovery = undefined;
    this.verifier = '';
    /** The `state` of the one authorization request this run makes. */
    this.expectedState = '';
    /** @type {{ code: string, state: string, iss: string } | undefined} */
    this.redirect = undefined;
    this.signIns = 0;
  }

  /** How many token responses the SDK has saved. */
  tokenResponses() {
    return this.savedTokens.length;
  }

  get redirectUrl() {
    return REDIRECT_URI;
  }

  get clientMetadata() {
    return {
      client_name: 'mcp-auth interop (TypeScript SDK)',
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none'
    };
  }

  state() {
    this.expectedState = crypto.randomUUID();
    return this.expectedState;
  }

  clientInformation() {
    return this.client;
  }

  /** @param {OAuthClientInformationMixed} info */
  saveClientInformation(info) {
    this.client = info;
  }

  tokens() {
    return this.current;
  }

  /** @param {OAuthTokens} tokens */
  saveTokens(tokens) {
    this.current = tokens;
    this.savedTokens.push(tokens);
  }

  /** @param {URL} authorizationUrl */
  async redirectToAuthorization(authorizationUrl) {
    this.signIns += 1;
    step(`authorization request: ${authorizationUrl.origin}${authorizationUrl.pathname}`);
    this.redirect = await signIn(authorizationUrl, this.username, this.password);
    step(`signed in as ${this.username}; redirect has code, state and iss=${this.redirect.iss}`);
  }

  /** @param {string} verifier */
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }

  codeVerifier() {
    return this.verifier;
  }

  /** @param {OAuthDiscoveryState} state */
  saveDiscoveryState(state) {
    this.discovery = state;
  }

  discoveryState() {
    return this.discovery;
  }
}

// --- the MCP client -------------------------------------------------------------------------

/**
 * The JSON object `whoami` returned, from structured content or its text block.
 * @param {any} result
 */
function whoamiOf(result) {
  if (result.isError) throw new InteropError(`whoami returned a tool error: ${JSON.stringify(result)}`);
  if (result.structuredContent && typeof result.structuredContent === 'object') return result.structuredContent;
  const text = (result.content ?? []).find((/** @type {any} */ block) => block.type === 'text')?.text;
  if (text) return JSON.parse(text);
  throw new InteropError(`whoami returned no JSON: ${JSON.stringify(result)}`);
}

/**
 * @param {any} who
 * @param {string} username
 * @param {string} clientId
 */
function checkWhoami(who, username, clientId) {
  if (who.subject !== username) throw new InteropError(`whoami subject is ${JSON.stringify(who.subject)}, expected '${username}'`);
  if (who.client_id !== clientId) throw new InteropError(`whoami client_id is ${JSON.stringify(who.client_id)}, expected '${clientId}'`);
  if (!Array.isArray(who.scopes) || !who.scopes.includes(REQUIRED_SCOPE)) {
    throw new InteropError(`whoami scopes are ${JSON.stringify(who.scopes)}, expected a list holding '${REQUIRED_SCOPE}'`);
  }
}

/**
 * @param {string} server
 * @param {MemoryProvider} provider
 */
function connectTo(server, provider) {
  const transport = new StreamableHTTPClientTransport(new URL(`${server}/mcp`), { authProvider: provider });
  const client = new Client({ name: 'mcp-auth-interop', version: '0.0.0' });
  return { client, transport };
}

/**
 * @param {string} server
 * @param {string} username
 * @param {string} password
 * @param {number} refreshAfter seconds
 */
async function run(server, username, password, refreshAfter) {
  const provider = new MemoryProvider(username, password);

  // 1. The first connection is refused with 401; the SDK discovers, registers and sends the
  //    user to sign in, then reports that the authorization must be finished.
  const first = connectTo(server, provider);
  try {
    await bounded('connecting', first.client.connect(first.transport));
    throw new InteropError('the server accepted a connection without a token');
  } catch (err) {
    if (!(err instanceof UnauthorizedError)) throw err;
  } finally {
    await first.client.close().catch(() => {});
  }
  if (!provider.redirect) throw new InteropError('the SDK did not start the authorization');
  const clientInfo = provider.client;
  if (!clientInfo?.client_id) throw new InteropError('the SDK did not register a client');
  step(`registered client ${clientInfo.client_id} (token_endpoint_auth_method=${/** @type {any} */ (clientInfo).token_endpoint_auth_method})`);

  // What the SDK would check itself if it implemented RFC 9207 / state for its caller.
  const { code, state, iss } = provider.redirect;
  if (state !== provider.expectedState) throw new InteropError(`state mismatch: ${state} != ${provider.expectedState}`);
  const issuer = provider.discovery?.authorizationServerMetadata?.issuer;
  if (!issuer) throw new InteropError('discovery produced no authorization server metadata');
  if (iss !== issuer) throw new InteropError(`RFC 9207: iss ${iss} is not the metadata issuer ${issuer}`);
  step(`state matches; iss equals the metadata issuer ${issuer}`);

  // 2. The token exchange, then a fresh connection that carries the token.
  await bounded('token exchange', first.transport.finishAuth(code));
  if (provider.tokenResponses() !== 1) throw new InteropError(`expected one token response, got ${provider.tokenResponses()}`);
  const firstTokens = provider.savedTokens[0];
  if (!firstTokens.refresh_token) throw new InteropError('the token response has no refresh_token');
  step(`token: expires_in=${firstTokens.expires_in}, scope=${firstTokens.scope}, refresh_token present`);

  const second = connectTo(server, provider);
  try {
    await bounded('initialize', second.client.connect(second.transport));
    const version = second.client.getServerVersion();
    step(`initialized with ${version?.name} ${version?.version}`);

    let who = whoamiOf(await bounded('whoami', second.client.callTool({ name: 'whoami', arguments: {} })));
    checkWhoami(who, username, clientInfo.client_id);
    step(`whoami: ${JSON.stringify(who)}`);

    // 3. Past the access token's lifetime the server answers 401 and the transport refreshes.
    if (firstTokens.expires_in === undefined || firstTokens.expires_in >= refreshAfter) {
      throw new InteropError(
        `the access token lives ${firstTokens.expires_in} s; run the server with --access-token-ttl below ${refreshAfter} s`
      );
    }
    // Counted here rather than assumed: on a slow machine the short-lived token may already
    // have been refreshed once before this point.
    const before = provider.current;
    const responses = provider.tokenResponses();
    step(`waiting ${refreshAfter} s for the access token to expire`);
    await new Promise((resolve) => setTimeout(resolve, refreshAfter * 1000));

    who = whoamiOf(await bounded('whoami after expiry', second.client.callTool({ name: 'whoami', arguments: {} })));
    checkWhoami(who, username, clientInfo.client_id);
    if (provider.tokenResponses() <= responses) throw new InteropError('the call after expiry succeeded without a token refresh');
    if (provider.signIns !== 1) throw new InteropError(`${provider.signIns} sign-ins happened, expected one (a refresh, not a new sign-in)`);
    const refreshed = provider.savedTokens[provider.savedTokens.length - 1];
    if (!before || refreshed.access_token === before.access_token) throw new InteropError('the refresh returned the same access token');
    step(`refreshed (refresh token rotated: ${refreshed.refresh_token !== before.refresh_token}); whoami again: ${JSON.stringify(who)}`);
  } finally {
    await second.transport.terminateSession().catch(() => {});
    await second.client.close().catch(() => {});
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      server: { type: 'string' },
      user: { type: 'string' },
      password: { type: 'string' },
      'refresh-after': { type: 'string', default: '3.5' }
    }
  });
  if (!values.server || !values.user || values.password === undefined) {
    process.stderr.write('usage: node client.mjs --server URL --user NAME --password PASSWORD [--refresh-after SECONDS]\n');
    return 2;
  }
  const started = performance.now();
  try {
    await run(values.server.replace(/\/+$/, ''), values.user, values.password, Number(values['refresh-after']));
  } catch (err) {
    if (err instanceof InteropError) {
      step(`FAILED: ${err.message}`);
    } else {
      step(`FAILED with ${err instanceof Error ? err.name : typeof err}: ${err instanceof Error ? err.message : err}`);
      if (err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    }
    return 1;
  }
  step(`ok (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return 0;
}

process.exitCode = await main();
