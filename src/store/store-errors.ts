/**
 * Driver errors never leave the Kysely stores raw: a unique-key violation becomes
 * `SWB_ERR_STORE_CONFLICT`, anything else `SWB_ERR_STORE_UNAVAILABLE`, with the driver error as
 * `cause`.
 *
 * @module
 */
import { GatewayError, isGatewayError } from '../errors.js';

/** Runs one store operation, turning driver errors into {@link GatewayError}s. */
export async function guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw toStoreError(err, what);
  }
}

/**
 * Maps a driver error: unique violations (SQLite `SQLITE_CONSTRAINT_UNIQUE` /
 * `SQLITE_CONSTRAINT_PRIMARYKEY`, PostgreSQL SQLSTATE 23505) → `SWB_ERR_STORE_CONFLICT`, anything
 * else → `SWB_ERR_STORE_UNAVAILABLE`. GatewayErrors pass through.
 */
export function toStoreError(err: unknown, what: string): GatewayError {
  if (isGatewayError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new GatewayError('SWB_ERR_STORE_CONFLICT', `${what}: an entry with the same key exists already`, {
      cause: err,
    });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new GatewayError('SWB_ERR_STORE_UNAVAILABLE', `database error while ${what}: ${reason}`, { cause: err });
}
