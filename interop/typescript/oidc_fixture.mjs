// @ts-check
/**
 * What the checks with npm `oidc-provider` share (`oidc_provider.mjs`, the resource-server
 * check, and `oidc_sign_in_provider.mjs`, the provider users sign in at): a free loopback port,
 * fresh signing keys, and serving a `Provider` over https with a fresh self-signed certificate
 * for 127.0.0.1 (npm `selfsigned`), written where mcp-auth-server can be told to trust it. A
 * module, not a script: it runs nothing when imported.
 */

import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

import selfsigned from 'selfsigned';

/** @typedef {import('oidc-provider').default} Provider */
/** @typedef {import('oidc-provider').JWK} JWK */

/**
 * A free TCP port on 127.0.0.1 (closed again: the process that uses it binds it).
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port was assigned'))));
    });
  });
}

/**
 * A fresh private signing key as a JWK named `kid`, for a provider's `jwks`: ES256 (P-256) or
 * RS256 (RSA 2048, the algorithm every OpenID relying party must accept).
 * @param {'ES256' | 'RS256'} alg
 * @param {string} kid
 * @returns {JWK}
 */
export function signingKey(alg, kid) {
  const { privateKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

/**
 * Serves the provider that `configure` makes for its issuer over https on a free loopback
 * port, with a fresh self-signed certificate for 127.0.0.1 (a day's validity) written to
 * `dir/oidc-provider-cert.pem`.
 * @param {string} dir
 * @param {(issuer: string) => Provider} configure
 */
export async function serveOverHttps(dir, configure) {
  const port = await freePort();
  const issuer = `https://127.0.0.1:${port}`;
  const pems = await selfsigned.generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    // A day: `selfsigned` 5 has no `days` option (its default is a year).
    notAfterDate: new Date(Date.now() + 24 * 60 * 60 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  const certificate = path.join(dir, 'oidc-provider-cert.pem');
  writeFileSync(certificate, pems.cert);
  const provider = configure(issuer);
  const listener = https.createServer({ key: pems.private, cert: pems.cert }, provider.callback());
  await new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, '127.0.0.1', () => resolve(undefined));
  });
  return { issuer, certificate, ca: pems.cert, listener, provider };
}
