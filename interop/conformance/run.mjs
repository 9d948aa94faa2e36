// Interop check: the MCP conformance suite's authorization-server scenarios
// (`conformance authorization`, npm @modelcontextprotocol/conformance) against mcp-auth-server.
//
//     node run.mjs --server http://127.0.0.1:PORT --user NAME --password PASSWORD --out DIR
//
// Run it with the Node.js 22 that package.json pins (node_modules/.bin/node): the suite needs
// Node 22, and the conformance CLI is started with the same executable as this script.
//
// Steps, each reported on stderr; any failure exits 1 with a message naming the step:
// 1. list the suite's authorization-server scenarios (`conformance list --authorization`);
// 2. register a public client (RFC 7591, `token_endpoint_auth_method` "none") whose one
//    redirect URI is the suite's callback, http://127.0.0.1:<free port>/callback;
// 3. run every scenario in one `conformance authorization` run against the server's issuer,
//    with that client id and the MCP endpoint as the RFC 8707 resource. The suite prints an
//    authorization URL for a person to open and waits for the redirect at its callback; this
//    script plays that person: it opens the URL, answers the sign-in page (its one form, the
//    CSRF token and cookie, `approve`), and delivers the redirect to the suite's callback;
// 4. read the checks.json each scenario wrote and print every check (also to
//    <out>/summary.txt, which `cargo xtask interop` repeats in its summary). The run fails
//    unless every listed scenario wrote results and every check is SUCCESS (or INFO): a
//    FAILURE, a WARNING (a SHOULD the server does not meet) and a SKIPPED check all fail it.

import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const HERE = dirname(fileURLToPath(import.meta.url));
const CONFORMANCE = join(HERE, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
// The suite waits up to 5 minutes for a callback; the whole run is bounded well below that.
const RUN_TIMEOUT_MS = 120_000;
const HTTP_TIMEOUT_MS = 20_000;
const MAX_REDIRECTS = 5;
// The suite starts its callback server as it prints the URL; a refused connection is retried.
const CALLBACK_ATTEMPTS = 20;
const CALLBACK_RETRY_MS = 250;
// Check statuses that pass. INFO is a note the suite records without a verdict.
const PASSING = new Set(["SUCCESS", "INFO"]);

class InteropError extends Error {}

function step(message) {
  process.stderr.write(`conformance: ${message}\n`);
}

function fetchBounded(url, init = {}) {
  return fetch(url, { redirect: "manual", signal: AbortSignal.timeout(HTTP_TIMEOUT_MS), ...init });
}

/** A loopback port that was free a moment ago, for the suite's callback server. */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** The names `conformance list --authorization` prints, one `  - name [versions]` a line. */
function listScenarios() {
  const out = execFileSync(process.execPath, [CONFORMANCE, "list", "--authorization"], {
    encoding: "utf8",
    timeout: 60_000,
  });
  const names = [...out.matchAll(/^\s+- (\S+)/gm)].map((m) => m[1]);
  if (names.length === 0) {
    throw new InteropError(`\`conformance list --authorization\` named no scenarios:\n${out}`);
  }
  return names;
}

async function register(issuer, redirectUri) {
  const metadataUrl = `${issuer}/.well-known/oauth-authorization-server`;
  const metadata = await (await fetchBounded(metadataUrl)).json();
  if (!metadata.registration_endpoint) {
    throw new InteropError(`${metadataUrl} has no registration_endpoint`);
  }
  const response = await fetchBounded(metadata.registration_endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "mcp-auth interop (MCP conformance suite)",
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code"],
      response_types: ["code"],
    }),
  });
  const body = await response.json();
  if (response.status !== 201 || typeof body.client_id !== "string") {
    throw new InteropError(`registration answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.client_id;
}

// --- the user at the sign-in page ------------------------------------------------------------

/** The attributes of one HTML start tag, e.g. `<input type="hidden" name="a" value="b">`. */
function attributes(tag) {
  const found = {};
  for (const m of tag.matchAll(/([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    found[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return found;
}

function unescapeHtml(text) {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

/** The page's single POST form: its action, its named inputs and its decision buttons. */
function signInForm(html) {
  const forms = [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)].filter(
    (m) => (attributes(m[1]).method ?? "get").toLowerCase() === "post",
  );
  if (forms.length !== 1) {
    throw new InteropError(`sign-in page has ${forms.length} POST forms, expected exactly 1`);
  }
  const [, formTag, body] = forms[0];
  const fields = {};
  for (const m of body.matchAll(/<input\b([^>]*)>/gi)) {
    const a = attributes(m[1]);
    if (a.name) fields[a.name] = a.value ?? "";
  }
  const decisions = [...body.matchAll(/<button\b([^>]*)>/gi)]
    .map((m) => attributes(m[1]))
    .filter((a) => a.name === "decision")
    .map((a) => a.value);
  return { action: attributes(formTag).action, fields, decisions };
}

/**
 * Opens `authorizationUrl` as a browser would, signs in and approves, and returns the URL the
 * server redirected back to (the client's redirect URI with code, state and iss).
 */
async function signIn(authorizationUrl, user, password, redirectUri) {
  let url = authorizationUrl;
  let page;
  for (let i = 0; ; i++) {
    if (i === MAX_REDIRECTS) {
      throw new InteropError(`more than ${MAX_REDIRECTS} redirects from the authorization URL`);
    }
    page = await fetchBounded(url);
    if (page.status >= 300 && page.status < 400) {
      const location = page.headers.get("location") ?? "";
      if (location.startsWith(redirectUri)) {
        throw new InteropError(`/authorize redirected straight back to the client: ${location}`);
      }
      url = new URL(location, url).href;
      continue;
    }
    if (page.status !== 200) {
      throw new InteropError(`GET ${url} answered ${page.status}: ${(await page.text()).slice(0, 300)}`);
    }
    break;
  }
  const form = signInForm(await page.text());
  for (const name of ["username", "password", "request_id", "csrf_token"]) {
    if (!(name in form.fields)) {
      throw new InteropError(`sign-in form has no input ${name}: ${Object.keys(form.fields)}`);
    }
  }
  if (JSON.stringify([...form.decisions].sort()) !== '["approve","deny"]') {
    throw new InteropError(`sign-in form decisions are ${form.decisions}, expected approve and deny`);
  }
  const cookies = page.headers.getSetCookie();
  if (cookies.length !== 1) {
    throw new InteropError(`sign-in page set ${cookies.length} cookies, expected the one CSRF cookie`);
  }
  const data = new URLSearchParams({ ...form.fields, username: user, password, decision: "approve" });
  const answer = await fetchBounded(new URL(form.action || url, url), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookies[0].split(";")[0] },
    body: data.toString(),
  });
  const location = answer.headers.get("location") ?? "";
  if (answer.status !== 302 || !location.startsWith(`${redirectUri}?`)) {
    throw new InteropError(
      `approving the sign-in answered ${answer.status} to ${JSON.stringify(location)}, expected a 302 to ${redirectUri}`,
    );
  }
  return location;
}

/** GETs the suite's callback URL, waiting (bounded) for its server to listen. */
async function deliverCallback(location) {
  for (let attempt = 1; ; attempt++) {
    try {
      const response = await fetchBounded(location);
      await response.text();
      return;
    } catch (err) {
      if (attempt === CALLBACK_ATTEMPTS || err?.cause?.code !== "ECONNREFUSED") throw err;
      await new Promise((resolve) => setTimeout(resolve, CALLBACK_RETRY_MS));
    }
  }
}

// --- the suite -------------------------------------------------------------------------------

/**
 * Runs `conformance authorization` and plays the user whenever it prints an authorization URL.
 * Resolves with the exit code once the suite has exited and every sign-in has settled.
 */
function runSuite(args, issuer, user, password, redirectUri) {
  const child = spawn(process.execPath, [CONFORMANCE, "authorization", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const signIns = [];
  let signInError = null;
  const authorizePrefix = `${issuer}/authorize?`;
  createInterface({ input: child.stdout }).on("line", (line) => {
    process.stderr.write(`  | ${line}\n`);
    if (!line.startsWith(authorizePrefix)) return;
    step("the suite asks for a sign-in; answering the page");
    signIns.push(
      signIn(line.trim(), user, password, redirectUri)
        .then((location) => {
          step(`signed in as ${user}; delivering the redirect to the suite's callback`);
          return deliverCallback(location);
        })
        .catch((err) => {
          // Kept, not thrown: it is reported once the suite has exited. Without a callback
          // the suite would wait its full 5 minutes, so it is stopped now.
          signInError ??= err;
          child.kill("SIGTERM");
        }),
    );
  });
  createInterface({ input: child.stderr }).on("line", (line) => process.stderr.write(`  ! ${line}\n`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new InteropError(`the suite did not finish in ${RUN_TIMEOUT_MS / 1000} s`));
    }, RUN_TIMEOUT_MS);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      Promise.all(signIns).then(() => {
        if (signInError !== null) reject(signInError);
        else resolve(code ?? signal);
      });
    });
  });
}

/** Every check of every scenario, from `<out>/authorization-server-<scenario>-<time>/checks.json`. */
function readResults(out, scenarios) {
  const dirs = readdirSync(out);
  return scenarios.map((scenario) => {
    const dir = dirs.find((d) => d.startsWith(`authorization-server-${scenario}-`));
    if (dir === undefined) return { scenario, checks: null };
    return { scenario, checks: JSON.parse(readFileSync(join(out, dir, "checks.json"), "utf8")) };
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      server: { type: "string" },
      user: { type: "string" },
      password: { type: "string" },
      out: { type: "string" },
    },
  });
  for (const name of ["server", "user", "password", "out"]) {
    if (!values[name]) throw new InteropError(`--${name} is required`);
  }
  const issuer = values.server.replace(/\/$/, "");
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 22) {
    throw new InteropError(`Node.js ${process.version}: the suite needs 22+; run node_modules/.bin/node`);
  }
  // Each run starts from an empty directory, so old results cannot pass for new ones.
  if (existsSync(values.out)) rmSync(values.out, { recursive: true });
  mkdirSync(values.out, { recursive: true });

  const scenarios = listScenarios();
  step(`authorization-server scenarios: ${scenarios.join(", ")}`);
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/callback`;
  const clientId = await register(issuer, redirectUri);
  step(`registered public client ${clientId} with redirect URI ${redirectUri}`);

  const args = [
    "--url", issuer,
    "--client-id", clientId,
    "--resource", `${issuer}/mcp`,
    "--port", String(port),
    "--output-dir", values.out,
  ];
  const exit = await runSuite(args, issuer, values.user, values.password, redirectUri);
  step(`the suite exited with ${exit}`);

  let failed = exit !== 0;
  const counts = {};
  const lines = [];
  const report = (line) => {
    lines.push(line);
    step(line);
  };
  for (const { scenario, checks } of readResults(values.out, scenarios)) {
    if (checks === null) {
      report(`${scenario}: NO RESULTS`);
      failed = true;
      continue;
    }
    for (const check of checks) {
      counts[check.status] = (counts[check.status] ?? 0) + 1;
      if (!PASSING.has(check.status)) failed = true;
      const why = check.errorMessage ? ` (${check.errorMessage})` : "";
      report(`${scenario}: ${check.id}: ${check.status}${why}`);
    }
  }
  const summary = Object.entries(counts)
    .map(([status, n]) => `${n} ${status}`)
    .join(", ");
  report(`${scenarios.length} scenarios (suite exit ${exit}), checks: ${summary || "none"}`);
  writeFileSync(join(values.out, "summary.txt"), `${lines.join("\n")}\n`);
  if (failed) throw new InteropError("not every check passed (failures, warnings and skips all count)");
}

main().then(
  () => {
    step("ok");
  },
  (err) => {
    step(`FAILED: ${err instanceof InteropError ? err.message : err.stack}`);
    process.exitCode = 1;
  },
);
