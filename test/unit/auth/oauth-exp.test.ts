import { test } from 'vitest';
import { startAuthorizationServer } from '../../helpers/oidc.js';
import { decodeJwt, decodeProtectedHeader } from 'jose';
test('exp', async () => {
  const as = await startAuthorizationServer({ opaqueResources: ['https://opaque.example/mcp'], mountPath: '/tenant' });
  try {
    console.log(as.issuer);
    for (const p of ['/.well-known/oauth-authorization-server/tenant', '/tenant/.well-known/openid-configuration', '/.well-known/openid-configuration/tenant']) {
      const r = await fetch(as.origin + p); const j = await r.json() as any; console.log(p, r.status, j.issuer, j.jwks_uri, j.introspection_endpoint);
    }
    const jwt = await as.issueJwtAccessToken({ resource: 'https://gw.example/mcp', scope: 'mcp:read' });
    console.log(decodeProtectedHeader(jwt), decodeJwt(jwt));
    const jwt2 = await as.issueJwtAccessToken({ resource: 'https://gw.example/mcp', scope: 'mcp:read', sub: 'alice' });
    console.log(decodeJwt(jwt2));
    const op = await as.issueOpaqueAccessToken({ resource: 'https://opaque.example/mcp', scope: 'mcp:read mcp:write', sub: 'bob' });
    const op2 = await as.issueOpaqueAccessToken({});
    console.log(op, op2);
    const intro = async (t: string) => { const r = await fetch(as.issuer + '/token/introspection', { method: 'POST', headers: { authorization: 'Basic ' + Buffer.from('switchboard:switchboard-secret-0123456789abcdef').toString('base64'), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: t, token_type_hint: 'access_token' }) }); console.log(r.status, await r.text()); };
    await intro(op); await intro(op2); await intro(jwt); await intro('nope');
    await as.revokeToken(op); await intro(op);
    console.log(as.requests);
  } finally { await as.stop(); }
});
