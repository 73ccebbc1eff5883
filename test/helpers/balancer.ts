/**
 * A load balancer without affinity for tests: every HTTP request (not every connection) goes to
 * the next backend in turn, bodies streamed both ways (SSE responses included). Counts what each
 * backend served.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running balancer. */
export interface Balancer {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Requests sent to each backend, in backend order. */
  readonly served: number[];
  close(): Promise<void>;
}

/** Starts a round-robin balancer over `backends` (base URLs such as `http://127.0.0.1:1234`). */
export async function startBalancer(backends: readonly string[]): Promise<Balancer> {
  const targets = backends.map((b) => new URL(b));
  const agent = new http.Agent({ keepAlive: true });
  const served = backends.map(() => 0);
  let next = 0;
  const server = http.createServer((req, res) => {
    const i = next;
    next = (next + 1) % targets.length;
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
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    served,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
