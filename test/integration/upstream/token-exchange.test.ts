/**
 * `auth.type: token-exchange` end to end (docs/upstream-identity.md): a real `oidc-provider`
 * authorization server with an RFC 8693 grant registered by this test, a gateway in
 * `auth.mode: tokens+oauth` trusting it, and an official SDK MCP server as the upstream that verifies
 * each bearer's signature, issuer and audience against the provider's JWKS and echoes its subject
 * and actor. With `actorToken: client-assertion`, the grant verifies the gateway's actor token
 * against the gateway's own JWKS and names it in the issued token's `act` claim (RFC 8693 §4.1).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/app.js';
import { createLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { buildConfig, connectClient } from '../../helpers/gateway.js';
import { startAuthorizationServer, type RunningAuthorizationServer } from '../../helpers/oidc.js';
import { OTLP_SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from '../observability/otlp-receiver.js';

/** The gateway's public URL, fixed so inbound tokens can be issued for it before it starts. */
const PUB = 'http://switchboard.test';
const GATEWAY_CLIENT = { clientId: 'gw-client', clientSecret: 'gw-secret-0123456789abcdef' };
const EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
/** An audience the authorization server refuses to issue tokens for. */
const REFUSED_AUDIENCE = 'https://refused.example/mcp';

// The subset of oidc-provider's grant handler context the handler below uses (no type declarations ship).
interface ExchangeContext {
  oidc: {
    params: Record<string, string | undefined>;
    client: { clientId: string };
    provider: {
      issuer: string;
      ClientCredentials: new (init: { client: unknown; scope?: string }) => {
        resourceServer?: unknown;
        testClaims?: Record<string, unknown>;
        expiration: number;
        save(): Promise<string>;
      };
      ResourceServer: new (identifier: string, info: Record<string, unknown>) => unknown;
    };
  };
  body: unknown;
}
// Not a literal, so that the compiler does not look for the declarations oidc-provider lacks.
const OIDC_PROVIDER: string = 'oidc-provider';
interface OidcErrors {
  InvalidTarget: new (description?: string) => Error;
  InvalidGrant: new (description?: string) => Error;
  UnauthorizedClient: new (description?: string) => Error;
}

/** Methods the upstream serves without a bearer: what the gateway's start-up connection sends to load the catalog. */
const ANONYMOUS_METHODS = new Set(['initialize', 'notifications/initialized', 'tools/list', 'ping']);

/**
 * An SDK MCP server that lists its tools to anyone but runs them only for a bearer JWT of
 * `issuer` with `aud` = its own URL, and echoes that token's subject.
 */
async function startProtectedUpstream(issuer: string) {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const seenAuthorizations: string[] = [];
  const app = { url: '', refuseNextToken: false };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString() || 'null') as { method?: string } | null;
      const authorization = req.headers.authorization ?? '';
      seenAuthorizations.push(authorization);
      const unauthorized = () => res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      let payload: JWTPayload = {};
      if (authorization !== '' || !ANONYMOUS_METHODS.has(body?.method ?? '')) {
        try {
          ({ payload } = await jwtVerify(authorization.replace(/^Bearer /, ''), jwks, {
            issuer,
            audience: app.url,
            typ: 'at+jwt',
          }));
        } catch {
          unauthorized();
          return;
        }
      }
      if (app.refuseNextToken && body?.method === 'tools/call') {
        // As if the token had been revoked at the authorization server.
        app.refuseNextToken = false;
        unauthorized();
        return;
      }
      const mcp = new McpServer({ name: 'protected', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'the subject and audience of the bearer' }, () => ({
        content: [{ type: 'text', text: JSON.stringify({ sub: payload.sub, aud: payload.aud, act: payload.act }) }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  app.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  return {
    url: app.url,
    seenAuthorizations,
    /** Answers the next `tools/call` with HTTP 401 whatever its token. */
    refuseNextToken: () => {
      app.refuseNextToken = true;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('token-exchange upstream credential (RFC 8693)', () => {
  let as: RunningAuthorizationServer;
  let upstream: Awaited<ReturnType<typeof startProtectedUpstream>>;
  let gw: RunningGateway | undefined;
  let db: Database;
  /** Receives the gateway's traces (OTLP/HTTP JSON). */
  let otlp: OtlpReceiver;
  /** Subjects of the exchanges the authorization server performed, in order, with the verified actor token. */
  const exchanges: {
    sub: string;
    audience: string | undefined;
    actor?: { payload: JWTPayload; typ: string | undefined; kid: string | undefined };
  }[] = [];
  const logLines: string[] = [];

  beforeAll(async () => {
    const { errors } = (await import(OIDC_PROVIDER)) as { errors: OidcErrors };
    // The upstream's URL is its audience, known only once it listens: the grant reads it late.
    const allowed = new Set<string>();
    as = await startAuthorizationServer({
      scopes: ['mcp:read', 'mcp:use'],
      extraClients: [
        {
          client_id: GATEWAY_CLIENT.clientId,
          client_secret: GATEWAY_CLIENT.clientSecret,
          grant_types: [EXCHANGE_GRANT],
          response_types: [],
          redirect_uris: [],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'mcp:use',
        },
      ],
      configure(provider) {
        const jwks = createRemoteJWKSet(new URL(`${provider.issuer}/jwks`));
        provider.registerGrantType(
          EXCHANGE_GRANT,
          async (ctx: ExchangeContext) => {
            const { params, client, provider: p } = ctx.oidc;
            if (client.clientId !== GATEWAY_CLIENT.clientId) throw new errors.UnauthorizedClient();
            if (params.subject_token_type !== ACCESS_TOKEN_TYPE) throw new errors.InvalidGrant('subject_token_type');
            let subject: JWTPayload;
            try {
              // The subject token must be one this server issued for the gateway.
              ({ payload: subject } = await jwtVerify(params.subject_token ?? '', jwks, {
                issuer: p.issuer,
                audience: `${PUB}/mcp`,
                typ: 'at+jwt',
              }));
            } catch {
              throw new errors.InvalidGrant('subject_token is not valid');
            }
            const audience = params.audience;
            if (audience === undefined || !allowed.has(audience)) throw new errors.InvalidTarget('audience refused');
            // An actor token must be a JWT the gateway signed for this token endpoint (RFC 8693 §2.1).
            let actor: (typeof exchanges)[number]['actor'];
            if (params.actor_token !== undefined) {
              if (params.actor_token_type !== JWT_TOKEN_TYPE) throw new errors.InvalidGrant('actor_token_type');
              try {
                const gatewayJwks = (await (await fetch(`${gw!.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
                const { payload, protectedHeader } = await jwtVerify(
                  params.actor_token,
                  createLocalJWKSet(gatewayJwks),
                  { issuer: PUB, audience: `${p.issuer}/token`, algorithms: ['ES256'] },
                );
                actor = { payload, typ: protectedHeader.typ, kid: protectedHeader.kid };
              } catch {
                throw new errors.InvalidGrant('actor_token is not valid');
              }
            }
            exchanges.push({ sub: String(subject.sub), audience, ...(actor ? { actor } : {}) });
            const token = new p.ClientCredentials({ client: ctx.oidc.client, scope: params.scope });
            token.resourceServer = new p.ResourceServer(audience, {
              audience,
              scope: 'mcp:use',
              accessTokenTTL: 600,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'RS256' } },
            });
            token.testClaims = { sub: subject.sub, ...(actor ? { act: { sub: actor.payload.sub } } : {}) };
            const value = await token.save();
            ctx.body = {
              access_token: value,
              issued_token_type: ACCESS_TOKEN_TYPE,
              token_type: 'Bearer',
              expires_in: token.expiration,
              scope: params.scope,
            };
          },
          [
            'subject_token',
            'subject_token_type',
            'actor_token',
            'actor_token_type',
            'audience',
            'resource',
            'requested_token_type',
            'scope',
          ],
        );
      },
    });
    upstream = await startProtectedUpstream(as.issuer);
    allowed.add(upstream.url);

    const logger = createLogger({
      level: 'trace',
      format: 'json',
      destination: new PassThrough().on('data', (c: Buffer) => logLines.push(c.toString())),
    });
    db = await openDatabase({ url: ':memory:', dataDir: '.', logger });
    otlp = await startOtlpReceiver();
    // Tracing is switched on by the standard OpenTelemetry variables, read when the gateway starts.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp.endpoint;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    const exchange = {
      type: 'token-exchange',
      clientId: GATEWAY_CLIENT.clientId,
      clientSecret: GATEWAY_CLIENT.clientSecret,
    };
    gw = await startGateway({
      config: buildConfig({
        auth: { mode: 'tokens+oauth', oauth: { issuer: as.issuer, validation: 'jwt', audience: `${PUB}/mcp` } },
        servers: {
          up: { url: upstream.url, auth: { ...exchange, audience: upstream.url, scope: 'mcp:use' } },
          refused: { url: upstream.url, auth: { ...exchange, audience: REFUSED_AUDIENCE, scope: 'mcp:use' } },
          acting: {
            url: upstream.url,
            auth: { ...exchange, audience: upstream.url, scope: 'mcp:use', actorToken: 'client-assertion' },
          },
        },
      }),
      logger,
      database: db,
      publicUrl: PUB,
      sweepIntervalMs: 0,
    });
  });
  afterAll(async () => {
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_PROTOCOL;
    await gw?.close();
    await otlp?.close();
    await db?.close();
    await upstream?.close();
    await as?.stop();
  });

  /** Every inbound access token issued in this suite. */
  const inboundTokens: string[] = [];
  const inbound = async (sub: string) => {
    const token = await as.issueJwtAccessToken({ resource: `${PUB}/mcp`, scope: 'mcp:read', sub });
    inboundTokens.push(token);
    return token;
  };

  async function whoami(token: string, tool = 'up__whoami') {
    const { client } = await connectClient(`${gw!.url}/mcp`, {}, 'te', { authorization: `Bearer ${token}` });
    try {
      const result = await client.callTool({ name: tool, arguments: {} });
      return result as { isError?: boolean; content: { type: string; text: string }[] };
    } finally {
      await client.close();
    }
  }

  it('each caller reaches the upstream as itself with a token for the upstream audience, exchanged once', async () => {
    const alice = await inbound('alice');
    const bob = await inbound('bob');
    const before = exchanges.length;
    const a = await whoami(alice);
    const b = await whoami(bob);
    expect(JSON.parse(a.content[0]!.text)).toEqual({ sub: 'alice', aud: upstream.url });
    expect(JSON.parse(b.content[0]!.text)).toEqual({ sub: 'bob', aud: upstream.url });
    const exchanged = exchanges.slice(before);
    expect(exchanged.map((e) => e.sub).sort()).toEqual(['alice', 'bob']);
    // Without actorToken no actor token is sent, and the issued token names no actor.
    expect(exchanged.every((e) => e.actor === undefined)).toBe(true);
    // The cached token is reused: further calls by alice, in another session, exchange nothing.
    expect(JSON.parse((await whoami(alice)).content[0]!.text)).toMatchObject({ sub: 'alice' });
    expect(exchanges.length - before).toBe(2);
    // The inbound tokens never reached the upstream.
    expect(upstream.seenAuthorizations.filter(Boolean).length).toBeGreaterThan(0);
    for (const seen of upstream.seenAuthorizations) {
      expect(seen).not.toContain(alice);
      expect(seen).not.toContain(bob);
    }
  });

  it('with actorToken client-assertion, sends a gateway-signed actor token and the upstream sees the gateway as act', async () => {
    const alice = await inbound('alice');
    const bob = await inbound('bob');
    const before = exchanges.length;
    const a = await whoami(alice, 'acting__whoami');
    const b = await whoami(bob, 'acting__whoami');
    expect(JSON.parse(a.content[0]!.text)).toEqual({
      sub: 'alice',
      aud: upstream.url,
      act: { sub: GATEWAY_CLIENT.clientId },
    });
    expect(JSON.parse(b.content[0]!.text)).toMatchObject({ sub: 'bob', act: { sub: GATEWAY_CLIENT.clientId } });
    const exchanged = exchanges.slice(before);
    expect(exchanged).toHaveLength(2);
    const jwks = (await (await fetch(`${gw!.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    for (const { actor } of exchanged) {
      // Verified by the grant against the gateway's JWKS (issuer, audience = token endpoint, ES256).
      expect(actor?.typ).toBe('JWT');
      expect(actor?.kid).toBe(jwks.keys[0]?.kid);
      expect(actor?.payload).toMatchObject({ iss: PUB, sub: GATEWAY_CLIENT.clientId, aud: `${as.issuer}/token` });
      expect(actor!.payload.exp! - actor!.payload.iat!).toBe(60);
      expect(typeof actor?.payload.jti).toBe('string');
    }
    // One signed actor token serves both exchanges.
    expect(exchanged[0]!.actor!.payload.jti).toBe(exchanged[1]!.actor!.payload.jti);
  });

  it('exchanges again for a caller whose exchanged token the upstream answered with 401', async () => {
    const carol = await inbound('carol');
    const { client } = await connectClient(`${gw!.url}/mcp`, {}, 'te', { authorization: `Bearer ${carol}` });
    try {
      const call = () => client.callTool({ name: 'up__whoami', arguments: {} });
      await call();
      const before = exchanges.length;
      upstream.refuseNextToken();
      await expect(call()).rejects.toThrow();
      const again = (await call()) as { content: { text: string }[] };
      expect(JSON.parse(again.content[0]!.text)).toMatchObject({ sub: 'carol' });
      expect(exchanges.slice(before).map((e) => e.sub)).toEqual(['carol']);
    } finally {
      await client.close();
    }
  });

  it('refuses a caller with a Switchboard API token instead of an OAuth access token (-33066), sending it nowhere', async () => {
    const apiToken = (
      await gw!.tokens.create({ name: 'api', subject: 'dave', permissions: ['servers.use', 'tools.execute'] })
    ).token;
    const exchangesBefore = exchanges.length;
    const seenBefore = upstream.seenAuthorizations.length;
    const { client } = await connectClient(`${gw!.url}/mcp`, {}, 'te', { authorization: `Bearer ${apiToken}` });
    let err: { code?: number; data?: Record<string, unknown> } | undefined;
    try {
      await client.callTool({ name: 'up__whoami', arguments: {} });
    } catch (e) {
      err = e as typeof err;
    } finally {
      await client.close();
    }
    expect(err?.code).toBe(-33066);
    expect(err?.data).toMatchObject({ code: 'SWB_ERR_UPSTREAM_NO_SUBJECT_TOKEN', server: 'up' });
    expect(exchanges.length).toBe(exchangesBefore);
    expect(upstream.seenAuthorizations.slice(seenBefore).join('')).not.toContain(apiToken);
  });

  it('answers a refused exchange with a JSON-RPC error naming the server and the reason, never the token', async () => {
    const alice = await inbound('alice');
    const { client } = await connectClient(`${gw!.url}/mcp`, {}, 'te', { authorization: `Bearer ${alice}` });
    let err: { code?: number; message?: string; data?: Record<string, unknown> } | undefined;
    try {
      await client.callTool({ name: 'refused__whoami', arguments: {} });
    } catch (e) {
      err = e as typeof err;
    } finally {
      await client.close();
    }
    expect(err?.data).toMatchObject({
      code: 'SWB_ERR_UPSTREAM_TOKEN_EXCHANGE',
      server: 'refused',
      reason: 'refused',
      error: 'invalid_target',
    });
    expect(err?.code).toBe(-33065);
    expect(JSON.stringify(err)).not.toContain(alice);
  });

  // Runs last: it stops the gateway to flush its traces.
  it('records the issued subject as switchboard.upstream.subject, and writes no inbound or exchanged token to the logs, the metrics, the traces or an error', async () => {
    const alice = await inbound('alice');
    await whoami(alice);
    const exchangedTokens = upstream.seenAuthorizations.map((a) => a.replace(/^Bearer /, '')).filter(Boolean);
    expect(exchangedTokens.length).toBeGreaterThan(0);
    const metrics = await (await fetch(`${gw!.url}/metrics`)).text();
    const running = gw!;
    gw = undefined;
    await running.close();
    const traces = JSON.stringify(otlp.spans);
    // The server span of a call records the issued token's subject as the upstream subject.
    const upstreamSubjects = otlp.spans
      .filter((s) => s.kind === OTLP_SPAN_KIND.SERVER)
      .map((s) => s.attrs['switchboard.upstream.subject'])
      .filter((v) => v !== undefined);
    expect(new Set(upstreamSubjects)).toEqual(new Set(['alice', 'bob', 'carol']));
    const logs = logLines.join('');
    expect(logs).toContain('upstream token exchange failed');
    expect(traces).toContain('"error.type":"-33065"'); // the refused exchange's span
    expect(inboundTokens).toContain(alice);
    for (const secret of [...inboundTokens, ...exchangedTokens, GATEWAY_CLIENT.clientSecret]) {
      expect(logs).not.toContain(secret);
      expect(metrics).not.toContain(secret);
      expect(traces).not.toContain(secret);
    }
  });
});
