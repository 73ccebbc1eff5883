/**
 * The token vault: the keys that seal per-user upstream tokens of `auth.type: oauth2-user`
 * servers at rest (`src/auth/token-vault.ts`).
 *
 * @module
 */
import { z } from 'zod';
import { KeyRing } from './common.js';

/** The `tokenVault` section. */
export const TokenVaultConfig = z
  .object({
    /**
     * Keys that seal stored upstream tokens (AES-256-GCM), each `{id, secret}` (secret ≥ 32
     * characters; put it in the environment: `secret: ${SWITCHBOARD_VAULT_KEY}`). The first
     * seals; all open, so a rotation adds the new key first and removes the old one once every
     * user has reconnected or refreshed (a value under a removed key reads as not connected).
     * Default: one key derived from the gateway's signing secret (`SWITCHBOARD_SECRET`, or the
     * one stored in the database).
     */
    keys: KeyRing('a token vault key secret'),
  })
  .strict()
  .default({ keys: [] });
