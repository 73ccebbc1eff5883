/**
 * `switchboard status`: asks a running gateway how it is — `GET /readyz` — and prints each
 * server's state (with its last error) and each store check, or the JSON as received.
 *
 * @module
 */
import { processOutput, type CliOutput } from './check.js';

/** Options of `switchboard status`. */
export interface StatusOptions {
  /** Base URL of the gateway. Default `SWITCHBOARD_URL`, else `http://127.0.0.1:8080`. */
  url?: string | undefined;
  /** Print the `/readyz` body as JSON. */
  json?: boolean | undefined;
  /** Give up after this many ms. Default 5000. */
  timeoutMs?: number | undefined;
}

/** The body of `/readyz`. */
interface Readiness {
  status: string;
  upstreams: Array<{ name: string; state: string; error?: string }>;
  stores: Array<{ name: string; ok: boolean }>;
}

/** Default gateway URL of {@link runStatus}. */
export const DEFAULT_STATUS_URL = 'http://127.0.0.1:8080';

/**
 * Prints the state of the gateway at `options.url`.
 *
 * @returns the exit code: 0 when it is ready, 1 when it answers not ready (starting, draining, a
 *   server or store down), 2 when it cannot be reached or does not answer like a gateway
 */
export async function runStatus(options: StatusOptions = {}, output: CliOutput = processOutput): Promise<number> {
  const base = (options.url ?? process.env.SWITCHBOARD_URL ?? DEFAULT_STATUS_URL).replace(/\/+$/, '');
  let res: Response;
  try {
    res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
    output.err(`no gateway answers at ${base} (${cause}); is switchboard serve running there? (--url)`);
    return 2;
  }
  const text = await res.text();
  let body: Readiness;
  try {
    body = JSON.parse(text) as Readiness;
    if (typeof body.status !== 'string') throw new Error('no status');
  } catch {
    output.err(`${base}/readyz answered HTTP ${res.status} with something that is not a gateway's readiness report`);
    return 2;
  }
  if (options.json) {
    output.out(JSON.stringify(body, null, 2));
    return body.status === 'ready' ? 0 : 1;
  }
  const upstreams = body.upstreams ?? [];
  const counts = new Map<string, number>();
  for (const u of upstreams) counts.set(u.state, (counts.get(u.state) ?? 0) + 1);
  const summary = [...counts].map(([state, n]) => `${n} ${state}`).join(', ');
  output.out(
    `${base}: ${body.status}${upstreams.length === 0 ? ' (no servers)' : ` (${upstreams.length} servers: ${summary})`}`,
  );
  const width = Math.max(0, ...upstreams.map((u) => u.name.length));
  for (const u of upstreams) {
    output.out(`  ${u.name.padEnd(width)}  ${u.state}${u.error ? `  ${u.error}` : ''}`);
  }
  if ((body.stores ?? []).length > 0)
    output.out(`stores: ${body.stores.map((s) => `${s.name} ${s.ok ? 'ok' : 'DOWN'}`).join(', ')}`);
  return body.status === 'ready' ? 0 : 1;
}
