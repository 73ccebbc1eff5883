/**
 * The OAuth client the upstream broker of `auth.type: oauth2-user` servers is at an upstream's
 * authorization server, in one of three ways (`auth.registration`):
 *
 * - `static`: the configured `clientId` (and `clientSecret`, `client_secret_basic`).
 * - `dynamic`: the gateway registers itself (RFC 7591 §3.1) at the server's
 *   `registration_endpoint` (RFC 8414 §2). The registered client is kept per (issuer, redirect
 *   URI) in the database's settings store, its secret sealed with the token vault's keys, so every
 *   replica and every restart reuses it. One registration runs at a time per (issuer, redirect
 *   URI) in a process; replicas registering at the same moment settle on the first one stored.
 *   A client is registered again when its secret expired (`client_secret_expires_at`), when a
 *   server needs scopes the registration did not ask for, or once after the token endpoint
 *   answered `invalid_client` (RFC 6749 §5.2) for it.
 * - `metadata-document`: the client id is the URL of the gateway's client ID metadata document
 *   (draft-ietf-oauth-client-id-metadata-document; MCP authorization 2025-11-25 "Client ID
 *   Metadata Documents"), served at `<public URL>/oauth/client-metadata.json`, for authorization
 *   servers whose metadata says `client_id_metadata_document_supported: true`.
 *
 * No secret is ever in a log line or an error message.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { OAuth2UserAuth } from '../config/schema.js';
import type { SettingsStore } from '../store/types.js';
import type { AuthorizationServerMetadata, AuthServerHttp } from './oauth-common.js';
import { MAX_VAULT_TOKEN_LENGTH, type TokenVault } from './token-vault.js';

/** The `client_name` the gateway registers and publishes. */
export const CLIENT_NAME = 'Switchboard';

/** Prefix of the settings keys of registered clients (followed by a hash of issuer and redirect URI). */
export const CLIENT_SETTING_PREFIX = 'upstreamOAuth.client.';

/** Time limit of one registration request, ms (10 s). */
export const REGISTRATION_TIMEOUT_MS = 10_000;

/** A client secret this close to its expiry is renewed first, ms (1 minute). */
const EXPIRY_SKEW_MS = 60_000;

/** Largest registration response read, bytes. */
const BODY_LIMIT = 256 * 1024;

/** RFC 6749 §5.2 / RFC 7591 §3.2.2 `error` values. */
const OAUTH_ERROR = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/** How the client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`). */
export type ClientAuthMethod = 'none' | 'client_secret_basic' | 'client_secret_post';

/** The client the broker uses at one authorization server. */
export interface UpstreamClient {
  clientId: string;
  /** Present for `client_secret_basic` and `client_secret_post`. */
  clientSecret?: string;
  authMethod: ClientAuthMethod;
  /** Which `registration` produced it. */
  source: OAuth2UserAuth['registration'];
}

/** A registration as stored in the settings store (the secret sealed). */
interface StoredRegistration {
  issuer: string;
  redirectUri: string;
  clientId: string;
  /** {@link TokenVault.sealValue} of the secret. */
  sealedSecret?: string;
  authMethod: ClientAuthMethod;
  /** Epoch ms when the secret expires; absent when it does not. */
  expiresAt?: number;
  /** The scope registered, space-separated; absent when none was sent. */
  scope?: string;
  /** Epoch ms. */
  registeredAt: number;
  /** Set once the token endpoint refused the client: the next use registers again. */
  refused?: boolean;
}

/** A registration opened for use. */
interface Registration {
  stored: StoredRegistration;
  client: UpstreamClient;
}

/** Options of {@link UpstreamClientRegistry}. */
export interface UpstreamClientRegistryOptions {
  /** The broker's redirect URI, registered and published. */
  redirectUri: string;
  /** The URL of the gateway's client ID metadata document (`<public URL>/oauth/client-metadata.json`). */
  clientMetadataUrl: string;
  http: AuthServerHttp;
  logger: Logger;
  /** Seals and opens the stored client secrets. */
  vault: TokenVault;
  /** Where registrations are kept; without it, only in this process. */
  settings?: SettingsStore;
  clock?: () => number;
  /** Default {@link REGISTRATION_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/**
 * The client metadata document of the gateway (draft-ietf-oauth-client-id-metadata-document §3,
 * RFC 7591 §2 fields): a public client whose `client_id` is the document's own URL.
 */
export function clientMetadataDocument(clientMetadataUrl: string, redirectUri: string): Record<string, unknown> {
  return {
    client_id: clientMetadataUrl,
    client_name: CLIENT_NAME,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
  };
}

/** Resolves, registers and keeps the broker's clients (see the module comment). */
export class UpstreamClientRegistry {
  readonly #options: UpstreamClientRegistryOptions;
  readonly #clock: () => number;
  /** Opened registrations, per settings key. */
  readonly #cache = new Map<string, Registration>();
  /** Resolutions in flight, per settings key. */
  readonly #pending = new Map<string, Promise<Registration>>();

  constructor(options: UpstreamClientRegistryOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  /** The gateway's client metadata document, as served. */
  get metadataDocument(): Record<string, unknown> {
    return clientMetadataDocument(this.#options.clientMetadataUrl, this.#options.redirectUri);
  }

  /**
   * The client of `server` at the authorization server `metadata` describes.
   *
   * @param serverName - named in errors
   * @throws {@link GatewayError} `SWB_ERR_UPSTREAM_AUTH` when the server offers no registration
   *   endpoint or refuses the registration (`dynamic`), or does not support client ID metadata
   *   documents or the document's URL is not https (`metadata-document`); `SWB_ERR_STORE_*` from
   *   the settings store
   */
  async resolve(
    serverName: string,
    auth: OAuth2UserAuth,
    metadata: AuthorizationServerMetadata,
  ): Promise<UpstreamClient> {
    if (auth.registration === 'metadata-document') {
      if (metadata.client_id_metadata_document_supported !== true) {
        throw upstreamAuth(
          serverName,
          `the authorization server ${metadata.issuer} does not support client ID metadata documents (no client_id_metadata_document_supported); use registration: dynamic or static`,
        );
      }
      // draft-ietf-oauth-client-id-metadata-document §3: the client id is an https URL.
      if (!this.#options.clientMetadataUrl.startsWith('https://')) {
        throw upstreamAuth(
          serverName,
          `registration: metadata-document needs an https:// public URL; the client metadata document is at ${this.#options.clientMetadataUrl}`,
        );
      }
      return { clientId: this.#options.clientMetadataUrl, authMethod: 'none', source: 'metadata-document' };
    }
    if (auth.registration !== 'dynamic') {
      const clientId = auth.clientId!;
      return auth.clientSecret === undefined
        ? { clientId, authMethod: 'none', source: 'static' }
        : { clientId, clientSecret: auth.clientSecret, authMethod: 'client_secret_basic', source: 'static' };
    }
    const key = clientSettingKey(metadata.issuer, this.#options.redirectUri);
    const scopes = auth.scopes ?? [];
    const cached = this.#cache.get(key);
    if (cached !== undefined && this.#usable(cached.stored, scopes)) return cached.client;
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#load(key, serverName, metadata, scopes).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    const registration = await pending;
    if (!this.#usable(registration.stored, scopes)) return (await this.#load(key, serverName, metadata, scopes)).client;
    return registration.client;
  }

  /**
   * Records that the token endpoint answered `invalid_client` for `client`: a registered client
   * still current is marked refused, so the next {@link resolve} registers again (once: a refusal
   * of a client already replaced changes nothing).
   */
  async refused(client: UpstreamClient, metadata: AuthorizationServerMetadata): Promise<void> {
    if (client.source !== 'dynamic') return;
    const key = clientSettingKey(metadata.issuer, this.#options.redirectUri);
    if (this.#cache.get(key)?.client.clientId === client.clientId) this.#cache.delete(key);
    const settings = this.#options.settings;
    if (settings === undefined) return;
    const stored = await settings.get<StoredRegistration>(key);
    if (stored?.clientId === client.clientId && stored.refused !== true) {
      await settings.set(key, { ...stored, refused: true });
      this.#options.logger.warn(
        { issuer: metadata.issuer, clientId: client.clientId },
        'the registered upstream client was refused; it is registered again at the next use',
      );
    }
  }

  /** The stored registration when usable, else a new one, stored and cached. */
  async #load(
    key: string,
    serverName: string,
    metadata: AuthorizationServerMetadata,
    scopes: readonly string[],
  ): Promise<Registration> {
    const settings = this.#options.settings;
    const stored = settings === undefined ? undefined : await settings.get<StoredRegistration>(key);
    if (stored !== undefined && this.#usable(stored, scopes)) {
      const opened = this.#open(stored);
      if (opened !== undefined) {
        this.#cache.set(key, opened);
        return opened;
      }
    }
    // A registration asks for what it replaces asked for too, so servers sharing it keep their scopes.
    const wanted = [...new Set([...(stored?.scope?.split(' ') ?? []), ...scopes])].filter((s) => s !== '');
    const fresh = await this.#register(serverName, metadata, wanted);
    let kept = fresh;
    if (settings !== undefined) {
      if (stored === undefined) {
        // Replicas registering together settle on the first registration stored.
        kept = await settings.setIfAbsent(key, fresh);
      } else {
        await settings.set(key, fresh);
      }
    }
    const opened = this.#open(kept);
    if (opened === undefined) throw upstreamAuth(serverName, 'the stored client registration does not open');
    this.#cache.set(key, opened);
    this.#options.logger.info(
      { issuer: metadata.issuer, clientId: kept.clientId, authMethod: kept.authMethod },
      kept === fresh
        ? 'registered as an upstream OAuth client'
        : 'using the upstream client another replica registered',
    );
    return opened;
  }

  #usable(stored: StoredRegistration, scopes: readonly string[]): boolean {
    if (stored.refused === true || stored.redirectUri !== this.#options.redirectUri) return false;
    if (stored.expiresAt !== undefined && stored.expiresAt - EXPIRY_SKEW_MS <= this.#clock()) return false;
    const registered = new Set(stored.scope?.split(' ') ?? []);
    return stored.scope === undefined || scopes.every((s) => registered.has(s));
  }

  #open(stored: StoredRegistration): Registration | undefined {
    const client: UpstreamClient = { clientId: stored.clientId, authMethod: stored.authMethod, source: 'dynamic' };
    if (stored.sealedSecret !== undefined) {
      const secret = this.#options.vault.openValue(secretContext(stored), stored.sealedSecret);
      if (secret === undefined) return undefined;
      client.clientSecret = secret;
    }
    return { stored, client };
  }

  /** One RFC 7591 §3.1 registration request; the answer as it is stored. */
  async #register(
    serverName: string,
    metadata: AuthorizationServerMetadata,
    scopes: readonly string[],
  ): Promise<StoredRegistration> {
    const endpoint = metadata.registration_endpoint;
    if (typeof endpoint !== 'string' || endpoint === '') {
      throw upstreamAuth(
        serverName,
        `the authorization server ${metadata.issuer} offers no dynamic client registration (no registration_endpoint); configure a clientId`,
      );
    }
    const { redirectUri } = this.#options;
    const request = {
      client_name: CLIENT_NAME,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // Asked for a secret; a server that issues only public clients answers `none`.
      token_endpoint_auth_method: 'client_secret_basic',
      ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
    };
    let status: number;
    let text: string;
    try {
      // The transport follows no redirects: a 3xx is an answer like any other (refused below).
      ({ status, body: text } = await this.#options.http(
        'POST',
        endpoint,
        { 'content-type': 'application/json', accept: 'application/json' },
        JSON.stringify(request),
        BODY_LIMIT,
        AbortSignal.timeout(this.#options.timeoutMs ?? REGISTRATION_TIMEOUT_MS),
      ));
    } catch (cause) {
      throw upstreamAuth(serverName, `the registration endpoint of ${metadata.issuer} could not be reached`, cause);
    }
    let body: Record<string, unknown> = {};
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
        body = parsed as Record<string, unknown>;
      }
    } catch {
      // reported below
    }
    if (status !== 201 && status !== 200) {
      // RFC 7591 §3.2.2 `error` only: `error_description` is the server's text.
      const error = typeof body.error === 'string' && OAUTH_ERROR.test(body.error) ? body.error : `HTTP ${status}`;
      throw upstreamAuth(
        serverName,
        `the authorization server ${metadata.issuer} refused the client registration (${error})`,
      );
    }
    const clientId = body.client_id;
    if (typeof clientId !== 'string' || clientId === '' || clientId.length > 1024) {
      throw upstreamAuth(serverName, `the registration response of ${metadata.issuer} has no usable client_id`);
    }
    const secret = typeof body.client_secret === 'string' && body.client_secret !== '' ? body.client_secret : undefined;
    if (secret !== undefined && secret.length > MAX_VAULT_TOKEN_LENGTH) {
      throw upstreamAuth(serverName, `the registration response of ${metadata.issuer} has an oversized client_secret`);
    }
    const method = body.token_endpoint_auth_method ?? (secret === undefined ? 'none' : 'client_secret_basic');
    if (!(method === 'none' || ((method === 'client_secret_basic' || method === 'client_secret_post') && secret))) {
      throw upstreamAuth(
        serverName,
        `the authorization server ${metadata.issuer} registered a token_endpoint_auth_method the gateway cannot use`,
      );
    }
    const expiresAt = Number(body.client_secret_expires_at);
    const stored: StoredRegistration = {
      issuer: metadata.issuer,
      redirectUri,
      clientId,
      authMethod: method,
      registeredAt: this.#clock(),
      ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
      // RFC 7591 §3.2.1: seconds since the epoch, 0 for never.
      ...(secret !== undefined && Number.isFinite(expiresAt) && expiresAt > 0 ? { expiresAt: expiresAt * 1000 } : {}),
    };
    if (method !== 'none' && secret !== undefined) {
      stored.sealedSecret = this.#options.vault.sealValue(secretContext(stored), secret);
    }
    return stored;
  }
}

/** The settings key of the registration at `issuer` for `redirectUri`. */
export function clientSettingKey(issuer: string, redirectUri: string): string {
  const hash = createHash('sha256').update(`${issuer}\0${redirectUri}`).digest('base64url').slice(0, 32);
  return `${CLIENT_SETTING_PREFIX}${hash}`;
}

/** The seal context of a client secret: bound to its issuer, redirect URI and client id. */
function secretContext(stored: Pick<StoredRegistration, 'issuer' | 'redirectUri' | 'clientId'>): string {
  return `client-secret\0${stored.issuer}\0${stored.redirectUri}\0${stored.clientId}`;
}

function upstreamAuth(server: string, detail: string, cause?: unknown): GatewayError {
  return new GatewayError('SWB_ERR_UPSTREAM_AUTH', `server "${server}": ${detail}`, {
    ...(cause === undefined ? {} : { cause }),
  });
}
