// @ts-check
/**
 * Interop fixture: a real OpenID Provider that users sign in at — npm `oidc-provider` (pinned
 * in package.json, run on Node.js 22) — for mcp-auth-server's `--oidc-issuer` sign-in, driven by
 * `interop/python/oidc_sign_in_client.py`.
 *
 *     node oidc_sign_in_provider.mjs --redirect-uri http://127.0.0.1:PORT/sign-in/oidc/callback --dir DIR
 *
 * It serves the provider over https on a free loopback port with a fresh self-signed
 * certificate (`oidc_fixture.mjs`, written to DIR for `--oidc-root-cert`), and configures:
 *
 * - one confidential web client (`client_secret_basic`, the code flow) whose only redirect URI
 *   is the given one, mcp-auth-server's callback; PKCE is required of every client;
 * - one account, `interop-user-1`, with a verified email in `interop.example` and a name; the
 *   ID token carries the email claims (`conformIdTokenClaims: false`), which
 *   `--oidc-allow-domain` needs;
 * - signing keys RS256 (the ID tokens' default) and ES256;
 * - the provider's built-in login and consent pages (`devInteractions`): a login form posting
 *   `prompt=login`, `login` and `password` to `/interaction/<uid>`, then a consent form posting
 *   `prompt=consent` there. Those pages accept any password (they are for development), so the
 *   account's existence is the only check: `findAccount` knows no other login.
 *
 * Once it serves, it writes DIR/oidc-provider.json: `issuer`, `certificate` (the PEM file),
 * `client_id`, `client_secret`, `login`, `password` and `email_domain`. It runs until it is
 * stopped, until the process that started it exits, or for an hour at most; its log (on stderr)
 * says what it did.
 */

import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

import { serveOverHttps, signingKey } from './oidc_fixture.mjs';

const CLIENT_ID = 'mcp-auth-server';
const CLIENT_SECRET = 'interop-sign-in-secret-0123456789abcdef0123456789';
const LOGIN = 'interop-user-1';
/** What the harness types; the development login page does not check it. */
const PASSWORD = 'interop-user-password';
const EMAIL_DOMAIN = 'interop.example';
/** Whatever happens to the process that started it, it stops after this long. */
const MAX_LIFETIME_MS = 60 * 60 * 1000;
/** How often it looks whether the process that started it is still there. */
const PARENT_POLL_MS = 1_000;

/** @param {string} message */
function step(message) {
  process.stderr.write(`oidc-sign-in-provider: ${message}\n`);
}

/**
 * The provider's one account, or none for any other login.
 * @type {import('oidc-provider').FindAccount}
 */
function findAccount(_ctx, id) {
  if (id !== LOGIN) {
    step(`no account ${JSON.stringify(id)}`);
    return undefined;
  }
  return {
    accountId: id,
    claims: () => ({
      sub: id,
      email: `${id}@${EMAIL_DOMAIN}`,
      email_verified: true,
      name: 'Interop User',
    }),
  };
}

/**
 * @param {string} issuer
 * @param {string} redirectUri
 */
function configure(issuer, redirectUri) {
  return new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [signingKey('RS256', 'interop-rs256'), signingKey('ES256', 'interop-es256')] },
    cookies: { keys: ['interop-sign-in-cookie-key-0123456789abcdef'] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false,
    // Lifetimes for one run (set, so that the provider does not log a notice for each default).
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    pkce: { required: () => true },
    findAccount,
    features: { devInteractions: { enabled: true } },
  });
}

const { values } = parseArgs({
  options: { 'redirect-uri': { type: 'string' }, dir: { type: 'string' } },
});
const { 'redirect-uri': redirectUri, dir } = values;
if (!redirectUri || !dir) {
  step('usage: node oidc_sign_in_provider.mjs --redirect-uri URI --dir DIR');
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
const served = await serveOverHttps(dir, (issuer) => configure(issuer, redirectUri));
served.provider.on('server_error', (_ctx, error) => step(`server_error: ${error.stack ?? error}`));
served.provider.on('authorization.error', (_ctx, error) => step(`authorization error: ${error.message}`));
served.provider.on('grant.error', (_ctx, error) => step(`token endpoint error: ${error.message}`));
served.provider.on('grant.success', () => step('token endpoint: code redeemed'));

// Written whole, then renamed: whoever waits for the file never reads half of it.
const details = path.join(dir, 'oidc-provider.json');
writeFileSync(
  `${details}.partial`,
  JSON.stringify({
    issuer: served.issuer,
    certificate: served.certificate,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    login: LOGIN,
    password: PASSWORD,
    email_domain: EMAIL_DOMAIN,
  }),
);
renameSync(`${details}.partial`, details);
step(`up at ${served.issuer} for ${redirectUri}; details in ${details}`);

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) {
    step('the process that started it is gone; stopping');
    process.exit(0);
  }
}, PARENT_POLL_MS);
setTimeout(() => {
  step(`stopping after ${MAX_LIFETIME_MS / 60_000} minutes`);
  process.exit(0);
}, MAX_LIFETIME_MS);
