// @ts-check
/**
 * An upstream MCP server for the gateway interop check, built with the official MCP TypeScript
 * SDK (`McpServer` + `StreamableHTTPServerTransport` on `node:http`).
 *
 * `mcp-auth-server --upstream http://127.0.0.1:PORT/mcp` serves its `/mcp` by proxying this
 * server; the gateway is its only authentication, so this server has none.
 *
 *     node upstream_server.mjs --port PORT
 *
 * Streamable HTTP at `http://127.0.0.1:PORT/mcp`, stateful: `initialize` creates a session (a
 * transport and its `McpServer`, with a random `Mcp-Session-Id`), later requests name it, and
 * `DELETE` ends it. Tools:
 *
 * - `echo(text)`: returns `text`;
 * - `headers()`: the HTTP request headers this server received with the `tools/call`, as a JSON
 *   object with lower-case names (repeated headers joined with ", "), so that the client at the
 *   other side of the gateway can check what the gateway forwarded and what it removed;
 * - `progress(steps)`: sends `steps` progress notifications, about 100 ms apart, then returns
 *   "done" (a streamed response the gateway must pass through as it comes).
 *
 * DNS-rebinding protection: a request whose `Host` is not this server's loopback authority
 * (`127.0.0.1:PORT`, what the gateway forwards, or `localhost:PORT`) gets 403, and so does a
 * request whose `Origin`, when present, is not that origin.
 */

import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/** Bounds `progress`: the check asks for a few; a larger request is refused, not served for long. */
const MAX_PROGRESS_STEPS = 50;
const PROGRESS_INTERVAL_MS = 100;
/** A request body this server reads before the transport sees it (to spot `initialize`). */
const MAX_BODY_BYTES = 1024 * 1024;
/** Open sessions; the check opens a handful. */
const MAX_SESSIONS = 100;

/** @param {string} message */
function log(message) {
  process.stderr.write(`upstream (TypeScript SDK): ${message}\n`);
}

/** A fresh `McpServer` with the three tools; one per session, as `connect` binds one transport. */
function makeServer() {
  const server = new McpServer({ name: 'mcp-auth interop upstream (TypeScript SDK)', version: '0.0.0' });

  server.registerTool(
    'echo',
    { description: 'Returns its argument.', inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: 'text', text }] })
  );

  server.registerTool(
    'headers',
    { description: 'The HTTP request headers this call arrived with, lower-case names.' },
    async (extra) => {
      const received = extra.requestInfo?.headers;
      if (!received) return { isError: true, content: [{ type: 'text', text: 'this call carries no HTTP request' }] };
      /** @type {Record<string, string>} */
      const seen = {};
      for (const [name, value] of Object.entries(received)) {
        if (value === undefined) continue;
        seen[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
      }
      return { content: [{ type: 'text', text: JSON.stringify(seen) }], structuredContent: seen };
    }
  );

  server.registerTool(
    'progress',
    {
      description: 'Sends `steps` progress notifications, about 100 ms apart, then returns "done".',
      inputSchema: { steps: z.number().int().min(0).max(MAX_PROGRESS_STEPS) }
    },
    async ({ steps }, extra) => {
      const progressToken = extra._meta?.progressToken;
      for (let done = 1; done <= steps; done++) {
        if (progressToken !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken, progress: done, total: steps, message: `step ${done} of ${steps}` }
          });
        }
        await new Promise((resolve) => setTimeout(resolve, PROGRESS_INTERVAL_MS));
      }
      return { content: [{ type: 'text', text: 'done' }] };
    }
  );
  return server;
}

/**
 * The request body, parsed as JSON; `undefined` when it is not JSON (the transport then
 * answers the parse error itself).
 * @param {import('node:http').IncomingMessage} req
 * @returns {Promise<unknown>}
 */
async function readJson(req) {
  /** @type {Buffer[]} */
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new RangeError('request body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {string} message
 */
function refuse(res, status, message) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }));
}

function main() {
  const { values } = parseArgs({ options: { port: { type: 'string' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    process.stderr.write('usage: node upstream_server.mjs --port PORT\n');
    return 2;
  }
  const allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  const allowedOrigins = new Set([...allowedHosts].map((host) => `http://${host}`));
  /** @type {Map<string, StreamableHTTPServerTransport>} */
  const sessions = new Map();

  const http = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      if (url.pathname !== '/mcp') return refuse(res, 404, 'not found');
      if (!allowedHosts.has(req.headers.host ?? '')) return refuse(res, 403, `Host ${req.headers.host} is not allowed`);
      const origin = req.headers.origin;
      if (origin !== undefined && !allowedOrigins.has(origin)) return refuse(res, 403, `Origin ${origin} is not allowed`);

      const sessionId = req.headers['mcp-session-id'];
      if (typeof sessionId === 'string') {
        const transport = sessions.get(sessionId);
        if (!transport) return refuse(res, 404, 'no such session');
        const body = req.method === 'POST' ? await readJson(req) : undefined;
        return await transport.handleRequest(req, res, body);
      }
      if (req.method !== 'POST') return refuse(res, 400, 'no session: send initialize first');
      const body = await readJson(req);
      if (!isInitializeRequest(body)) return refuse(res, 400, 'no session: send initialize first');
      if (sessions.size >= MAX_SESSIONS) return refuse(res, 503, 'too many sessions');

      const transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          sessions.set(id, transport);
          log(`session ${id} started`);
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
          log(`session ${id} closed`);
        }
      });
      transport.onclose = () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      };
      await makeServer().connect(transport);
      await transport.handleRequest(req, res, body);
    } catch (err) {
      log(`${req.method} ${req.url}: ${err instanceof Error ? err.message : err}`);
      if (!res.headersSent) refuse(res, err instanceof RangeError ? 413 : 500, 'internal error');
      else res.end();
    }
  });
  http.listen(port, '127.0.0.1', () => log(`listening on http://127.0.0.1:${port}/mcp`));
  const stop = () => {
    for (const transport of sessions.values()) transport.close().catch(() => {});
    http.close();
    // Open SSE streams keep `close` waiting; the process is only a test fixture.
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return 0;
}

process.exitCode = main();
