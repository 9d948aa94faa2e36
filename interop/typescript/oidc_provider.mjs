// @ts-check
/**
 * Interop check: mcp-auth-server as a resource server only, for the JWT access tokens of a
 * real, independent OpenID Provider — npm `oidc-provider` (pinned in package.json), configured
 * for RFC 8707 resource indicators with RFC 9068 JWT access tokens — called by the official
 * MCP TypeScript SDK client.
 *
 *     node oidc_provider.mjs --server-bin PATH/TO/mcp-auth-server --dir WORK_DIR
 *
 * 1. Start oidc-provider over https on a free loopback port, with a fresh self-signed
 *    certificate (npm `selfsigned`, written to WORK_DIR for the server to trust), a fresh ES256
 *    signing key, and one confidential client allowed the client credentials grant. Its
 *    resource servers: ours (`<server>/mcp`, scope `mcp:tools`) and another one.
 * 2. Start mcp-auth-server with `--authorization-server <provider>` and the certificate, on
 *    another free port; wait for `/healthz`. The server finds the provider's keys through its
 *    OpenID discovery document (the provider serves no RFC 8414 document, so the fallback is
 *    exercised too).
 * 3. Get a token for our resource from the provider (client credentials, `resource`), connect
 *    the SDK's `StreamableHTTPClientTransport` with it and call `whoami`: the client is the
 *    provider's client. Then a token for the other resource must get 401 at `/mcp`.
 *
 * Each step is reported on stderr; any failure exits 1 naming the step. The server's log is
 * WORK_DIR/oidc-resource-server.log. The provider's https set-up is `oidc_fixture.mjs`'s, shared
 * with `oidc_sign_in_provider.mjs`.
 */

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import Provider, { errors } from 'oidc-provider';

import { freePort, serveOverHttps, signingKey } from './oidc_fixture.mjs';
import { InteropError, bounded, reportOutcome } from './sign_in.mjs';

const CLIENT_ID = 'interop-machine';
const CLIENT_SECRET = 'interop-machine-secret-0123456789abcdef0123456789';
const SCOPE = 'mcp:tools';
const OTHER_RESOURCE = 'https://other.interop.example/mcp';
/** How long mcp-auth-server may take to answer `/healthz`: a debug build on a loaded machine. */
const SERVER_START_TIMEOUT_MS = 60_000;

/** @param {string} message */
function step(message) {
  process.stderr.write(`oidc-provider: ${message}\n`);
}

/**
 * POSTs a form to the provider over https, trusting its certificate; returns [status, JSON].
 * @param {string} url
 * @param {Record<string, string>} form
 * @param {string} ca
 * @returns {Promise<[number | undefined, any]>}
 */
function postForm(url, form, ca) {
  const body = new URLSearchParams(form).toString();
  const basic = Buffer.from(
    `${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(CLIENT_SECRET)}`,
  ).toString('base64');
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      {
        method: 'POST',
        ca,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${basic}`,
          'content-length': Buffer.byteLength(body),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () => {
          try {
            resolve([response.statusCode, JSON.parse(text)]);
          } catch {
            reject(new InteropError(`the token endpoint answered ${response.statusCode}: ${text}`));
          }
        });
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * The provider: one confidential client allowed the client credentials grant, RFC 8707
 * resource indicators for our resource and another one, RFC 9068 JWT access tokens (ES256).
 * @param {string} dir
 * @param {string} resource
 */
async function startProvider(dir, resource) {
  const signing = signingKey('ES256', 'interop-es256');
  /** @type {Record<string, { scope: string, audience: string }>} */
  const resourceServers = {
    [resource]: { scope: SCOPE, audience: resource },
    [OTHER_RESOURCE]: { scope: SCOPE, audience: OTHER_RESOURCE },
  };
  const served = await serveOverHttps(dir, (issuer) => new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        // The provider's only key is ES256; its default (RS256) would have no key.
        id_token_signed_response_alg: 'ES256',
      },
    ],
    jwks: { keys: [signing] },
    cookies: { keys: ['interop-cookie-key-0123456789abcdef'] },
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const server = resourceServers[indicator];
          if (!server) {
            throw new errors.InvalidTarget();
          }
          return {
            ...server,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
  }));
  step(`provider up at ${served.issuer}`);
  return served;
}

/**
 * Starts mcp-auth-server on `port` as a resource server of the provider at `issuer`, trusting
 * its `certificate`, and waits until `/healthz` answers.
 * @param {string} serverBin
 * @param {string} dir
 * @param {string} issuer
 * @param {string} certificate
 * @param {number} port
 */
async function startServer(serverBin, dir, issuer, certificate, port) {
  const log = createWriteStream(path.join(dir, 'oidc-resource-server.log'));
  const server = spawn(
    serverBin,
    [
      '--bind', `127.0.0.1:${port}`,
      '--store', 'memory',
      '--authorization-server', issuer,
      '--authorization-server-root-cert', certificate,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server.stdout.pipe(log);
  server.stderr.pipe(log);
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) {
      throw new InteropError(`mcp-auth-server exited with ${server.exitCode}; see its log`);
    }
    try {
      const response = await fetch(`${origin}/healthz`);
      if (response.ok) {
        step(`mcp-auth-server up at ${origin}, resource server of ${issuer}`);
        return { server, origin };
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  server.kill('SIGKILL');
  throw new InteropError(`mcp-auth-server did not become healthy within ${SERVER_START_TIMEOUT_MS / 1000} s`);
}

/**
 * @param {string} serverBin
 * @param {string} dir
 */
async function check(serverBin, dir) {
  mkdirSync(dir, { recursive: true });
  const serverPort = await freePort();
  const resource = `http://127.0.0.1:${serverPort}/mcp`;
  const provider = await startProvider(dir, resource);
  const { server, origin } = await startServer(serverBin, dir, provider.issuer, provider.certificate, serverPort);
  try {
    const metadata = await (await bounded('resource metadata', fetch(`${origin}/.well-known/oauth-protected-resource/mcp`))).json();
    if (JSON.stringify(metadata.authorization_servers) !== JSON.stringify([provider.issuer])) {
      throw new InteropError(`the resource metadata names ${JSON.stringify(metadata.authorization_servers)}`);
    }
    step('the protected-resource metadata names the provider');

    /** @param {string} forResource */
    const token = async (forResource) => {
      const [status, answer] = await bounded(
        'token request',
        postForm(`${provider.issuer}/token`, {
          grant_type: 'client_credentials', scope: SCOPE, resource: forResource,
        }, provider.ca),
      );
      if (status !== 200 || typeof answer.access_token !== 'string') {
        throw new InteropError(`the provider refused a token for ${forResource}: ${status} ${JSON.stringify(answer)}`);
      }
      const [header] = answer.access_token.split('.');
      const typ = JSON.parse(Buffer.from(header, 'base64url').toString()).typ;
      if (typ !== 'at+jwt') {
        throw new InteropError(`the provider's token is not an RFC 9068 JWT (typ ${typ})`);
      }
      return /** @type {string} */ (answer.access_token);
    };

    const accessToken = await token(resource);
    step('the provider issued an at+jwt access token for our resource');
    const transport = new StreamableHTTPClientTransport(new URL(`${origin}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${accessToken}` } },
    });
    const client = new Client({ name: 'mcp-auth-oidc-interop', version: '0.0.0' });
    await bounded('connect', client.connect(transport));
    const result = await bounded('whoami', client.callTool({ name: 'whoami', arguments: {} }));
    const whoami = /** @type {any} */ (result).structuredContent;
    if (!whoami || whoami.client_id !== CLIENT_ID) {
      throw new InteropError(`whoami answered ${JSON.stringify(result)}`);
    }
    step(`whoami: ${JSON.stringify(whoami)}`);
    await client.close();

    const foreign = await token(OTHER_RESOURCE);
    const refused = await bounded('a call with the other resource\'s token', fetch(`${origin}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${foreign}`,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        jsonrpc: '2.0', id: 1, method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '0' } },
      }),
    }));
    if (refused.status !== 401) {
      throw new InteropError(`a token for another resource got ${refused.status}, not 401`);
    }
    step('a token the provider issued for another resource gets 401');
  } finally {
    server.kill('SIGTERM');
    provider.listener.close();
  }
}

const { values } = parseArgs({
  options: { 'server-bin': { type: 'string' }, dir: { type: 'string' } },
});
const { 'server-bin': serverBin, dir } = values;
if (!serverBin || !dir) {
  step('usage: node oidc_provider.mjs --server-bin PATH --dir DIR');
  process.exit(2);
}
process.exit(await reportOutcome(step, () => check(serverBin, dir)));
