// @ts-check
/**
 * Interop check: the official MCP TypeScript SDK client against mcp-auth-server.
 *
 * The SDK's `auth()` (driven by `StreamableHTTPClientTransport`) does every protocol step:
 * RFC 9728 and RFC 8414 discovery, dynamic registration, PKCE, token exchange and refresh.
 * This script implements the `OAuthClientProvider` interface in memory and plays the user
 * (`MemoryProvider` of `sign_in.mjs`, shared with `gateway_client.mjs`): its
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

import { InteropError, MemoryProvider, SIGN_IN_OPTIONS, bounded, closeConnection, reportOutcome, signInOnFirstConnection } from './sign_in.mjs';

/** Nothing listens here: the sign-in answer is a 302 whose Location we read, not follow. */
const REDIRECT_URI = 'http://127.0.0.1:33419/callback';
const REQUIRED_SCOPE = 'mcp:tools';

/** @param {string} message */
function step(message) {
  process.stderr.write(`typescript-sdk: ${message}\n`);
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
  const provider = new MemoryProvider({
    username,
    password,
    redirectUri: REDIRECT_URI,
    clientName: 'mcp-auth interop (TypeScript SDK)',
    step
  });

  // 1. The first connection is refused with 401; the SDK discovers, registers and sends the
  //    user to sign in, then reports that the authorization must be finished.
  const first = connectTo(server, provider);
  const { clientInfo, redirect } = await signInOnFirstConnection(first, provider);
  step(`registered client ${clientInfo.client_id} (token_endpoint_auth_method=${/** @type {any} */ (clientInfo).token_endpoint_auth_method})`);

  // What the SDK would check itself if it implemented RFC 9207 / state for its caller.
  const { code, state, iss } = redirect;
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
    await closeConnection(second);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      ...SIGN_IN_OPTIONS,
      'refresh-after': { type: 'string', default: '3.5' }
    }
  });
  const { server, user, password } = values;
  if (!server || !user || password === undefined) {
    process.stderr.write('usage: node client.mjs --server URL --user NAME --password PASSWORD [--refresh-after SECONDS]\n');
    return 2;
  }
  return reportOutcome(step, () => run(server.replace(/\/+$/, ''), user, password, Number(values['refresh-after'])));
}

process.exitCode = await main();
