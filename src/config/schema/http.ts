/**
 * Serving: the listen address, HTTP limits and timeouts, reverse-proxy tunnels and the graceful
 * shutdown bound.
 *
 * @module
 */
import { z } from 'zod';
import { Duration, Size } from './common.js';

/** The `listen` section: the address the gateway binds. */
export const ListenConfig = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8080),
  })
  .strict()
  .default({ host: '127.0.0.1', port: 8080 });

/** The `http` section: limits and timeouts of client requests and SSE streams. */
export const HttpConfig = z
  .object({
    /**
     * Largest accepted request body; larger gets 413. A body carries exactly one JSON-RPC
     * message (batches are refused), so this is also the per-message limit. Default 4mb.
     */
    maxBodyBytes: Size.default(4 * 1024 * 1024),
    /** Deepest nesting of objects/arrays in a request body (2…1000); deeper gets 400 / -32600. Default 64. */
    maxJsonDepth: z.number().int().min(2).max(1000).default(64),
    /** Extra allowed `Origin` values (exact, e.g. https://app.example.com). Loopback origins are always allowed. */
    allowedOrigins: z.array(z.string()).default([]),
    /** Extra allowed `Host` header values (hostname[:port]). Loopback hosts and the bind host are always allowed. */
    allowedHosts: z.array(z.string()).default([]),
    /** Open client connections accepted at once; further connections are closed at accept. Default 20000. */
    maxConnections: z.number().int().min(1).default(20_000),
    /** Time a client has to send the request headers (slowloris bound). Default 15s. */
    headersTimeout: Duration.default(15_000),
    /** Time a client has to send the whole request, headers and body; then 408. Default 30s. */
    requestTimeout: Duration.default(30_000),
    /** An idle keep-alive connection is closed after this long. Default 65s (above common load-balancer idle timeouts of 60s). */
    keepAliveTimeout: Duration.default(65_000),
    /**
     * Bytes an SSE stream (Streamable HTTP GET/POST stream, legacy SSE) may hold unsent for a
     * client that reads too slowly; beyond, the stream is closed. Default 4mb.
     */
    maxStreamBytes: Size.default(4 * 1024 * 1024),
    /** Events written to an SSE stream while it waits for its client to read; beyond, it is closed. Default 4096. */
    maxStreamEvents: z.number().int().min(1).default(4096),
  })
  .strict()
  .refine((h) => h.requestTimeout === 0 || h.headersTimeout <= h.requestTimeout, {
    message: 'http.headersTimeout must not exceed http.requestTimeout',
    path: ['headersTimeout'],
  })
  .default({
    maxBodyBytes: 4 * 1024 * 1024,
    maxJsonDepth: 64,
    allowedOrigins: [],
    allowedHosts: [],
    maxConnections: 20_000,
    headersTimeout: 15_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 65_000,
    maxStreamBytes: 4 * 1024 * 1024,
    maxStreamEvents: 4096,
  });

/** The `tunnels` section: servers behind NAT dialling in over a WebSocket. */
export const TunnelsConfig = z
  .object({
    /** Allow servers behind NAT to dial in at /reverse-proxy/ws. Default true. */
    enabled: z.boolean().default(true),
    /** A tunnel with no message for this long is evicted. Default 90s. */
    heartbeatTimeout: Duration.default(90_000),
    /** Timeout of POST /reverse-proxy/sessions/{id}/request. Default 30s. */
    requestTimeout: Duration.default(30_000),
    /** Events buffered per live-feed subscriber (GET /reverse-proxy/sse/{id}); oldest dropped beyond. Default 1000. */
    feedBuffer: z.number().int().min(1).default(1000),
    /** Bytes a tunnel WebSocket may hold unsent for a peer that reads too slowly; beyond, it is closed. Default 16mb. */
    maxBufferedBytes: Size.default(16 * 1024 * 1024),
    /** Frames sent to a tunnel WebSocket and not yet written to its socket; beyond, it is closed. Default 10000. */
    maxBufferedFrames: z.number().int().min(1).default(10_000),
  })
  .strict()
  .default({
    enabled: true,
    heartbeatTimeout: 90_000,
    requestTimeout: 30_000,
    feedBuffer: 1000,
    maxBufferedBytes: 16 * 1024 * 1024,
    maxBufferedFrames: 10_000,
  });

/** The `shutdown` section. */
export const ShutdownConfig = z
  .object({
    /**
     * Longest time from SIGTERM/SIGINT to process exit. Steps still open then (upstreams, usage
     * log flush, stores) are abandoned, listed in a warning, and the exit code is 1. Default 10s.
     */
    gracePeriod: Duration.pipe(z.number().min(100).max(600_000)).default(10_000),
    /**
     * How long a stopping replica keeps serving after it starts failing `/readyz` and refusing
     * new sessions, before it closes its listener: the time a load balancer needs to notice (its
     * health-check interval × fall count). Part of `gracePeriod`. Default 0 (one process, no
     * balancer); behind a balancer set it, e.g. `3s`.
     */
    drainDelay: Duration.pipe(z.number().min(0).max(600_000)).default(0),
  })
  .strict()
  .refine((s) => s.drainDelay < s.gracePeriod, {
    message: 'shutdown.drainDelay must be shorter than shutdown.gracePeriod',
    path: ['drainDelay'],
  })
  .default({ gracePeriod: 10_000, drainDelay: 0 });
