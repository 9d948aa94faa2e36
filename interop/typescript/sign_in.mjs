// @ts-check
/**
 * What the TypeScript SDK interop scripts (`client.mjs`, `gateway_client.mjs`) share: the user
 * at mcp-auth-server's sign-in page, the SDK's `OAuthClientProvider` interface in memory, the
 * first connection of a run (refused, then signed in), and the scaffolding of a check script
 * (its error type, a bound on each network step, the reported outcome). A module, not a
 * script: it runs nothing when imported.
 */

import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

/** @typedef {import('@modelcontextprotocol/sdk/client/index.js').Client} Client */
/** @typedef {import('@modelcontextprotocol/sdk/client/streamableHttp.js').StreamableHTTPClientTransport} StreamableHTTPClientTransport */
/** @typedef {import('@modelcontextprotocol/sdk/client/auth.js').OAuthClientProvider} OAuthClientProvider */
/** @typedef {import('@modelcontextprotocol/sdk/client/auth.js').OAuthDiscoveryState} OAuthDiscoveryState */
/** @typedef {import('@modelcontextprotocol/sdk/shared/auth.js').OAuthClientInformationMixed} OAuthClientInformationMixed */
/** @typedef {import('@modelcontextprotocol/sdk/shared/auth.js').OAuthTokens} OAuthTokens */

const MAX_REDIRECTS = 5;
/** Bounds each network step, so that a hung server fails the run instead of stalling CI. */
const STEP_TIMEOUT_MS = 60_000;

/** A check failed; the message says which and what was seen. */
export class InteropError extends Error {}

/**
 * @template T
 * @param {string} what
 * @param {Promise<T>} promise
 * @returns {Promise<T>}
 */
export async function bounded(what, promise) {
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

/**
 * The `parseArgs` options of a check that signs in: the server's origin and the user's name and
 * password. A script spreads them into its own.
 */
export const SIGN_IN_OPTIONS = /** @type {const} */ ({
  server: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' }
});

/**
 * Runs a check and reports its outcome through `step`; returns the process's exit code: 0, or
 * 1 on any failure.
 * @param {(message: string) => void} step
 * @param {() => Promise<void>} check
 * @returns {Promise<number>}
 */
export async function reportOutcome(step, check) {
  const started = performance.now();
  try {
    await check();
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
 * parameters of the redirect back to the client at `redirectUri`.
 * @param {URL} authorizationUrl
 * @param {string} username
 * @param {string} password
 * @param {string} redirectUri
 */
async function signIn(authorizationUrl, username, password, redirectUri) {
  let url = authorizationUrl.href;
  /** @type {Response | undefined} */
  let page;
  for (let i = 0; i < MAX_REDIRECTS && !page; i++) {
    const response = await fetch(url, { redirect: 'manual' });
    if ([301, 302, 303, 307, 308].includes(response.status)) {
      const location = response.headers.get('location') ?? '';
      if (location.startsWith(redirectUri)) {
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
  if (!location.startsWith(`${redirectUri}?`)) {
    throw new InteropError(`approval redirected to '${location}', not to ${redirectUri}`);
  }
  const query = new URL(location).searchParams;
  for (const name of ['code', 'state', 'iss']) {
    if (query.getAll(name).length !== 1) throw new InteropError(`redirect carries ${query.getAll(name).length} '${name}' parameters`);
  }
  return { code: String(query.get('code')), state: String(query.get('state')), iss: String(query.get('iss')) };
}

// --- the OAuthClientProvider ----------------------------------------------------------------

/**
 * The SDK's `OAuthClientProvider` interface, in memory, recording what it was given. Its
 * `redirectToAuthorization` signs the user in (instead of opening a browser) and keeps the
 * redirect's parameters for the script to check and pass to `finishAuth`.
 * @implements {OAuthClientProvider}
 */
export class MemoryProvider {
  /**
   * @param {object} options
   * @param {string} options.username
   * @param {string} options.password
   * @param {string} options.redirectUri where the sign-in sends the user back; nothing listens
   *   there: the sign-in answer is a 302 whose Location is read, not followed
   * @param {string} options.clientName the registered `client_name`
   * @param {(message: string) => void} options.step reports each sign-in
   */
  constructor({ username, password, redirectUri, clientName, step }) {
    this.username = username;
    this.password = password;
    this.redirectUri = redirectUri;
    this.clientName = clientName;
    this.step = step;
    /** @type {OAuthClientInformationMixed | undefined} */
    this.client = undefined;
    /** @type {OAuthTokens | undefined} */
    this.current = undefined;
    /** @type {OAuthTokens[]} */
    this.savedTokens = [];
    /** @type {OAuthDiscoveryState | undefined} */
    this.discovery = undefined;
    this.verifier = '';
    /** The `state` of the latest authorization request. */
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
    return this.redirectUri;
  }

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this.redirectUri],
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
    this.step(`authorization request: ${authorizationUrl.origin}${authorizationUrl.pathname}`);
    this.redirect = await signIn(authorizationUrl, this.username, this.password, this.redirectUri);
    this.step(`signed in as ${this.username}; redirect has code, state and iss=${this.redirect.iss}`);
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

/**
 * The first connection of a run, without a token: the server answers 401, and the SDK
 * discovers, registers and sends the user to sign in through `provider`, then reports that the
 * authorization must be finished. Returns the registered client and the sign-in's redirect;
 * the caller checks the redirect and passes its code to `first.transport.finishAuth`.
 * @param {{ client: Client, transport: StreamableHTTPClientTransport }} first
 * @param {MemoryProvider} provider
 */
export async function signInOnFirstConnection(first, provider) {
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
  return { clientInfo, redirect: provider.redirect };
}

/**
 * Ends the connection's session (a server without sessions refuses that) and closes its
 * client, ignoring errors: the checks are done by then.
 * @param {{ client: Client, transport: StreamableHTTPClientTransport }} connection
 */
export async function closeConnection(connection) {
  await connection.transport.terminateSession().catch(() => {});
  await connection.client.close().catch(() => {});
}
