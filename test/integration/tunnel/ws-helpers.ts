/**
 * Real `ws` plumbing for the tunnel tests: a WebSocketServer on 127.0.0.1:0 and a client that
 * queues the frames it receives.
 */
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/** A ws client whose received frames can be awaited one by one. */
export interface FrameClient {
  readonly ws: WebSocket;
  send(frame: unknown): void;
  /** The next frame received, parsed (rejects after `timeoutMs`). */
  next(timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
}

/** Connects a frame client and waits until it is open. */
export async function connectClient(url: string, headers: Record<string, string> = {}): Promise<FrameClient> {
  const ws = new WebSocket(url, { headers });
  const queue: Record<string, unknown>[] = [];
  const waiters: Array<(f: Record<string, unknown>) => void> = [];
  ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
    const w = waiters.shift();
    if (w) w(frame);
    else queue.push(frame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    next: (timeoutMs = 5000) => {
      const f = queue.shift();
      if (f) return Promise.resolve(f);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no frame in time')), timeoutMs);
        waiters.push((frame) => {
          clearTimeout(timer);
          resolve(frame);
        });
      });
    },
    closed,
  };
}

/** Starts a WebSocketServer on 127.0.0.1 (port 0 unless given) and returns its ws:// URL. */
export async function startWsServer(
  onConnection: (ws: WebSocket, req: import('node:http').IncomingMessage) => void,
  port = 0,
): Promise<{ wss: WebSocketServer; url: string; port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  wss.on('connection', onConnection);
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', () => resolve());
    wss.once('error', reject);
  });
  const actual = (wss.address() as AddressInfo).port;
  return {
    wss,
    port: actual,
    url: `ws://127.0.0.1:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}
