/**
 * A load balancer without affinity for tests: every HTTP request (not every connection) goes to
 * the next backend in turn; the request body is read first (MCP messages are small), responses
 * are streamed (SSE included). A backend that refuses the connection — a stopped replica — is
 * skipped for the next one. Counts what each backend served.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running balancer. */
export interface Balancer {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Requests sent to each backend, in backend order. */
  readonly served: number[];
  /** Requests sent on to the next backend because a backend refused the connection. */
  readonly refused: number;
  close(): Promise<void>;
}

/**
 * Starts a round-robin balancer over `backends` (base URLs such as `http://127.0.0.1:1234`);
 * `onRequest` sees each incoming request (method, URL, headers) before it is forwarded.
 */
export async function startBalancer(
  backends: readonly string[],
  options: { onRequest?: (req: http.IncomingMessage) => void } = {},
): Promise<Balancer> {
  const targets = backends.map((b) => new URL(b));
  const agent = new http.Agent({ keepAlive: true });
  const served = backends.map(() => 0);
  let next = 0;
  let refused = 0;
  /** Sends `body` to backend `i`; a refused connection (nothing sent) goes to the next one, as HAProxy's `retries`/`redispatch` do. */
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, i: number, tries: number) => {
    served[i]!++;
    const target = targets[i]!;
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' && tries < targets.length && !res.headersSent) {
        refused++;
        forward(req, res, body, (i + 1) % targets.length, tries + 1);
      } else if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.end(body);
  };
  const server = http.createServer((req, res) => {
    options.onRequest?.(req);
    const i = next;
    next = (next + 1) % targets.length;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => forward(req, res, Buffer.concat(chunks), i, 1));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    get refused() {
      return refused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
