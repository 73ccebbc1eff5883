/**
 * The admin console's files at `/ui/` served by a real gateway from a fixture directory: the
 * index fallback, cache headers, ETag/304, gzip and brotli, the security headers, redirects, the
 * 503 of an unbuilt checkout and refused path traversal.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { UI_CSP } from '../../../src/http/ui-static.js';
import { startTestGateway } from '../../helpers/gateway.js';

const INDEX =
  '<!doctype html><html><head><script type="module" src="/ui/assets/app-1a2b3c.js"></script></head></html>\n';
const SCRIPT = `export const greeting = ${JSON.stringify('hello '.repeat(2000))};\n`;
const PRECOMPRESSED = Buffer.from('precompressed brotli stand-in');

let dir: string;
let gw: RunningGateway;
let unbuilt: RunningGateway;

/** A request with the path sent verbatim (fetch would normalise `..`). */
function raw(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.path = path;
    req.end();
  });
}

function expectSecurityHeaders(headers: Record<string, string | string[] | undefined>): void {
  expect(headers['content-security-policy']).toBe(UI_CSP);
  expect(headers['x-content-type-options']).toBe('nosniff');
  expect(headers['referrer-policy']).toBe('no-referrer');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swb-ui-'));
  await mkdir(join(dir, 'assets'));
  await writeFile(join(dir, 'index.html'), INDEX);
  await writeFile(join(dir, 'assets', 'app-1a2b3c.js'), SCRIPT);
  await writeFile(join(dir, 'assets', 'style-4d5e6f.css'), 'body { color: red; }\n'.repeat(200));
  await writeFile(join(dir, 'assets', 'style-4d5e6f.css.br'), PRECOMPRESSED);
  await writeFile(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  gw = await startTestGateway({ auth: { mode: 'tokens' } }, { uiRoot: dir });
  unbuilt = await startTestGateway({}, { uiRoot: join(dir, 'missing') });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await unbuilt?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('/ui static app', () => {
  it('redirects /ui to /ui/, and / and /admin to /ui/', async () => {
    const ui = await raw('/ui');
    expect(ui.status).toBe(301);
    expect(ui.headers.location).toBe('/ui/');
    for (const path of ['/', '/admin']) {
      const r = await raw(path);
      expect(r.status, path).toBe(302);
      expect(r.headers.location, path).toBe('/ui/');
    }
  });

  it('serves index.html at /ui/ and for app routes without a file extension, without credentials', async () => {
    for (const path of ['/ui/', '/ui/servers', '/ui/servers/everything/tools']) {
      const r = await raw(path);
      expect(r.status, path).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
      expect(r.body.toString()).toBe(INDEX);
      expectSecurityHeaders(r.headers);
    }
  });

  it('answers 304 to a matching If-None-Match', async () => {
    const first = await raw('/ui/');
    const etag = first.headers.etag as string;
    const again = await raw('/ui/', { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    expectSecurityHeaders(again.headers);
    const other = await raw('/ui/', { 'if-none-match': '"something-else"' });
    expect(other.status).toBe(200);
  });

  it('serves hashed assets as immutable with their content type', async () => {
    const r = await raw('/ui/assets/app-1a2b3c.js');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.headers.vary).toBe('Accept-Encoding');
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.body.toString()).toBe(SCRIPT);
    const icon = await raw('/ui/favicon.svg');
    expect(icon.headers['content-type']).toBe('image/svg+xml');
    expect(icon.headers['cache-control']).toBe('no-cache');
  });

  it('compresses with gzip or brotli by Accept-Encoding', async () => {
    const gz = await raw('/ui/assets/app-1a2b3c.js', { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.body.length).toBeLessThan(SCRIPT.length / 10);
    expect(gunzipSync(gz.body).toString()).toBe(SCRIPT);
    const br = await raw('/ui/assets/app-1a2b3c.js', { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(brotliDecompressSync(br.body).toString()).toBe(SCRIPT);
    expect(Number(br.headers['content-length'])).toBe(br.body.length);
    const identity = await raw('/ui/assets/app-1a2b3c.js', { 'accept-encoding': 'br;q=0, gzip;q=0' });
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.body.toString()).toBe(SCRIPT);
    // The ETag names the content, whatever the encoding.
    expect(gz.headers.etag).toBe(identity.headers.etag);
  });

  it('prefers a precompressed file beside the asset', async () => {
    const r = await raw('/ui/assets/style-4d5e6f.css', { 'accept-encoding': 'br' });
    expect(r.headers['content-encoding']).toBe('br');
    expect(r.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(r.body).toEqual(PRECOMPRESSED);
  });

  it('answers 404 for a missing file with an extension', async () => {
    const r = await raw('/ui/assets/missing-000.js');
    expect(r.status).toBe(404);
    expectSecurityHeaders(r.headers);
  });

  it('refuses path traversal, plain or percent-encoded', async () => {
    for (const path of [
      '/ui/../package.json',
      '/ui/%2e%2e/package.json',
      '/ui/%2E%2E/%2e%2e/package.json',
      '/ui/assets/../../package.json',
      '/ui/..%2fpackage.json',
      '/ui/%2e%2e%5cpackage.json',
      '/ui/assets/%00.js',
      '/ui/%zz.js',
    ]) {
      const r = await raw(path);
      expect(r.status, path).toBe(400);
      expect(r.body.toString(), path).not.toContain('"name"');
    }
  });

  it('answers only GET and HEAD', async () => {
    const head = await raw('/ui/', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    const post = await raw('/ui/', {}, 'POST');
    expect(post.status).toBe(405);
  });

  it('answers 503 with the build command when the app is not built', async () => {
    const r = await fetch(`${unbuilt.url}/ui/`);
    expect(r.status).toBe(503);
    expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await r.text()).toContain('npm run build');
  });
});
