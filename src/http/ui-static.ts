/**
 * The admin web console's files at `/ui/` (the single-page app built by `npm run build` into
 * `dist/ui/`). The files need no credentials — the app's login page is one of them; everything
 * the app calls (`/api/v1`, `/mcp`) authenticates as usual.
 *
 * - `GET /ui` → 301 to `/ui/`; `GET /` and `GET /admin` → 302 to `/ui/`.
 * - `/ui/` and every `/ui/<path>` whose last segment has no file extension answer `index.html`
 *   (the app routes in the browser) with `Cache-Control: no-cache`; `/ui/assets/…` (names carry a
 *   content hash) with `Cache-Control: public, max-age=31536000, immutable`; other files
 *   `no-cache`. A missing file with an extension is 404.
 * - Strong `ETag`s (a hash of the content) and `If-None-Match` → 304 (RFC 9110 §8.8.3, §13.1.2).
 * - `Content-Encoding: br` or `gzip` by `Accept-Encoding` (RFC 9110 §12.5.3) for compressible
 *   types: a precompressed `<file>.br`/`<file>.gz` beside the file when present, else compressed
 *   once and kept in memory; `Vary: Accept-Encoding`.
 * - On every answer: a strict `Content-Security-Policy`, `X-Content-Type-Options: nosniff`,
 *   `Referrer-Policy: no-referrer`.
 * - Paths with `.`/`..` segments (also percent-encoded), backslashes or NUL are refused (400)
 *   before any file is looked up; the file must resolve inside the app's directory.
 * - Without a built app (`index.html` absent) `/ui/` answers 503 with a plain message.
 *
 * Files are read on first request and cached in memory (each at most {@link MAX_FILE_BYTES},
 * all together at most {@link MAX_CACHE_BYTES}); the cache keeps a file while its size and
 * modification time are unchanged.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { brotliCompressSync, constants as zlib, gzipSync } from 'node:zlib';
import { packageRoot } from '../package-root.js';
import type { RouteHandler } from './server.js';

/** The Content-Security-Policy of every `/ui` answer. */
export const UI_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/** Largest file served, bytes (8 MiB). */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
/** Most bytes kept in the in-memory cache (files and their compressed forms; 64 MiB). */
export const MAX_CACHE_BYTES = 64 * 1024 * 1024;

const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
});

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.map', '.svg', '.txt', '.webmanifest', '.ico']);
const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Options of {@link createUiRoute}. */
export interface UiRouteOptions {
  /** Directory of the built app; default `dist/ui` under the package root. */
  readonly root?: string;
}

interface Cached {
  readonly size: number;
  readonly mtimeMs: number;
  readonly body: Buffer;
  readonly etag: string;
  br?: Buffer;
  gzip?: Buffer;
}

/** A refused path (400): dot segments, backslashes, NUL, malformed escapes. */
class BadPath extends Error {}

/** The path segments under `/ui/`, decoded and checked. */
function segmentsOf(rest: string): string[] {
  const out: string[] = [];
  for (const raw of rest.split('/')) {
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch {
      throw new BadPath('malformed percent-encoding');
    }
    if (s === '.' || s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0'))
      throw new BadPath('path segment not allowed');
    out.push(s);
  }
  return out;
}

/** Creates the `/ui` route (also answers `/` and `/admin` with a redirect). */
export function createUiRoute(options: UiRouteOptions = {}): RouteHandler {
  const root = resolve(options.root ?? join(packageRoot(), 'dist', 'ui'));
  const cache = new Map<string, Cached>();
  let cacheBytes = 0;

  function plain(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, {
      ...SECURITY_HEADERS,
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(text),
      ...extra,
    });
    res.end(text);
  }

  function redirect(res: ServerResponse, status: number, location: string): void {
    res.writeHead(status, { ...SECURITY_HEADERS, location, 'cache-control': 'no-cache', 'content-length': 0 });
    res.end();
  }

  /** The file's cached entry, read (again) when absent or changed; undefined when it is not a file. */
  async function load(file: string): Promise<Cached | undefined> {
    let info;
    try {
      info = await stat(file);
    } catch {
      return undefined;
    }
    if (!info.isFile() || info.size > MAX_FILE_BYTES) return undefined;
    const hit = cache.get(file);
    if (hit && hit.size === info.size && hit.mtimeMs === info.mtimeMs) return hit;
    const body = await readFile(file);
    const entry: Cached = {
      size: info.size,
      mtimeMs: info.mtimeMs,
      body,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    };
    remember(file, entry, hit);
    return entry;
  }

  function remember(file: string, entry: Cached, previous: Cached | undefined): void {
    if (previous) {
      cacheBytes -= weight(previous);
      cache.delete(file);
    }
    if (cacheBytes + weight(entry) > MAX_CACHE_BYTES) return; // served, not kept
    cache.set(file, entry);
    cacheBytes += weight(entry);
  }

  function weight(c: Cached): number {
    return c.body.length + (c.br?.length ?? 0) + (c.gzip?.length ?? 0);
  }

  /** The body in the chosen encoding: a precompressed sibling, else compressed once. */
  async function encoded(file: string, entry: Cached, encoding: 'br' | 'gzip'): Promise<Buffer> {
    const have = entry[encoding];
    if (have) return have;
    const sibling = await load(`${file}.${encoding === 'br' ? 'br' : 'gz'}`);
    const body =
      sibling?.body ??
      (encoding === 'br'
        ? brotliCompressSync(entry.body, {
            params: {
              [zlib.BROTLI_PARAM_QUALITY]: 11,
              [zlib.BROTLI_PARAM_SIZE_HINT]: entry.body.length,
            },
          })
        : gzipSync(entry.body, { level: 9 }));
    if (cache.get(file) === entry && cacheBytes + body.length <= MAX_CACHE_BYTES) {
      entry[encoding] = body;
      cacheBytes += body.length;
    }
    return body;
  }

  async function serveFile(
    req: IncomingMessage,
    res: ServerResponse,
    file: string,
    entry: Cached,
    cacheControl: string,
  ): Promise<void> {
    const ext = extname(file).toLowerCase();
    const headers: Record<string, string | number> = {
      ...SECURITY_HEADERS,
      'content-type': TYPES[ext] ?? 'application/octet-stream',
      'cache-control': cacheControl,
      etag: entry.etag,
    };
    const compressible = COMPRESSIBLE.has(ext);
    if (compressible) headers.vary = 'Accept-Encoding';
    if (ifNoneMatch(req.headers['if-none-match'], entry.etag)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    let body = entry.body;
    if (compressible && entry.body.length > 0) {
      const encoding = preferredEncoding(req.headers['accept-encoding']);
      if (encoding !== undefined) {
        body = await encoded(file, entry, encoding);
        headers['content-encoding'] = encoding;
      }
    }
    headers['content-length'] = body.length;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  return async function uiRoute(req, res, path, query) {
    if (path === '/' || path === '/admin' || path === '/admin/') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      redirect(res, 302, '/ui/');
      return true;
    }
    if (path === '/ui') {
      redirect(res, 301, query === '' ? '/ui/' : `/ui/?${query}`);
      return true;
    }
    if (!path.startsWith('/ui/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      plain(res, 405, 'Method Not Allowed: use GET\n', { allow: 'GET, HEAD' });
      return true;
    }
    let segments: string[];
    try {
      segments = segmentsOf(path.slice('/ui/'.length));
    } catch (err) {
      plain(res, 400, `Bad Request: ${(err as Error).message}\n`);
      return true;
    }
    const index = join(root, 'index.html');
    const last = segments[segments.length - 1] ?? '';
    const wantsFile = extname(last) !== '';
    if (!wantsFile) {
      const entry = await load(index);
      if (entry === undefined) {
        plain(
          res,
          503,
          'The admin console is not built in this installation: run `npm run build` (it builds ui/ into dist/ui/).\n',
        );
        return true;
      }
      await serveFile(req, res, index, entry, 'no-cache');
      return true;
    }
    const file = join(root, ...segments);
    if (!file.startsWith(root + sep)) {
      plain(res, 400, 'Bad Request: path outside the app\n');
      return true;
    }
    const entry = await load(file);
    if (entry === undefined) {
      plain(res, 404, 'Not Found\n');
      return true;
    }
    await serveFile(req, res, file, entry, segments[0] === 'assets' && segments.length > 1 ? IMMUTABLE : 'no-cache');
    return true;
  };
}

/**
 * The coding to send for an `Accept-Encoding` value (RFC 9110 §12.5.3): `br` or `gzip`, whichever
 * has the higher quality value (`br` on a tie: it is smaller), `*` standing for codings not
 * listed; undefined for none (send the identity).
 */
export function preferredEncoding(header: string | undefined): 'br' | 'gzip' | undefined {
  if (header === undefined || header === '') return undefined;
  const q = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.split(';');
    const coding = name?.trim().toLowerCase();
    if (!coding) continue;
    let weight = 1;
    for (const p of params) {
      const [k, v] = p.split('=');
      if (k?.trim().toLowerCase() === 'q') weight = Number(v?.trim());
    }
    q.set(coding, Number.isFinite(weight) ? weight : 0);
  }
  const of = (coding: string): number => q.get(coding) ?? q.get('*') ?? 0;
  const br = of('br');
  const gzip = of('gzip');
  if (br <= 0 && gzip <= 0) return undefined;
  return br >= gzip ? 'br' : 'gzip';
}

/** True when an `If-None-Match` value matches `etag` (RFC 9110 §13.1.2: weak comparison, `*`). */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => {
    const v = t.trim();
    return (v.startsWith('W/') ? v.slice(2) : v) === etag;
  });
}
