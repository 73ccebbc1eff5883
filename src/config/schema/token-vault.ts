/**
 * The token vault: the keys that seal per-user upstream tokens of `auth.type: oauth2-user`
 * servers at rest (`src/auth/token-vault.ts`).
 *
 * @module
 */
import { z } from 'zod';

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
    keys: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, 'a key id is 1–16 characters of A–Z, a–z, 0–9, _ and -'),
            secret: z.string().min(32),
          })
          .strict(),
      )
      .default([])
      .superRefine((keys, ctx) => {
        const seen = new Set<string>();
        for (const [i, k] of keys.entries()) {
          if (seen.has(k.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate key id ${k.id}` });
          seen.add(k.id);
        }
      }),
  })
  .strict()
  .default({ keys: [] });
