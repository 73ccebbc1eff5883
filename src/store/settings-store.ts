/**
 * {@link SettingsStore} over the `settings` table.
 *
 * @module
 */
import type { Kysely } from 'kysely';
import { guard } from './store-errors.js';
import { parseJson, type StoreTables } from './store-tables.js';
import type { SettingsStore } from './types.js';

/** {@link SettingsStore} over the `settings` table; values are stored as JSON text. */
export class KyselySettingsStore implements SettingsStore {
  #db: Kysely<StoreTables>;
  #clock: () => number;

  constructor(db: Kysely<StoreTables>, clock: () => number) {
    this.#db = db;
    this.#clock = clock;
  }

  /** The value stored under `key` (parsed JSON), or undefined. The type parameter is not checked. */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    const row = await guard('reading a setting', () =>
      this.#db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst(),
    );
    return row === undefined ? undefined : parseJson<T>(row.value);
  }

  /**
   * Stores `value` as JSON under `key`, replacing any previous value; `undefined` deletes the key.
   *
   * @throws TypeError for values JSON cannot represent (a function, a BigInt, a cycle).
   */
  async set(key: string, value: unknown): Promise<void> {
    if (value === undefined) {
      await guard('deleting a setting', () => this.#db.deleteFrom('settings').where('key', '=', key).execute());
      return;
    }
    await this.#insert(key, value, true);
  }

  /** {@link SettingsStore.setIfAbsent}: insert unless present, then read back (the first writer wins). */
  async setIfAbsent<T = unknown>(key: string, value: T): Promise<T> {
    await this.#insert(key, value, false);
    const stored = await this.get<T>(key);
    return stored === undefined ? value : stored;
  }

  /** Inserts `value` as JSON under `key`; on a conflict replaces it, or keeps what is there. */
  async #insert(key: string, value: unknown, replace: boolean): Promise<void> {
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined) throw new TypeError(`setting ${JSON.stringify(key)}: value cannot be stored as JSON`);
    const updatedAt = this.#clock();
    await guard('storing a setting', () =>
      this.#db
        .insertInto('settings')
        .values({ key, value: text, updated_at: updatedAt })
        .onConflict((oc) =>
          replace ? oc.column('key').doUpdateSet({ value: text, updated_at: updatedAt }) : oc.column('key').doNothing(),
        )
        .execute(),
    );
  }
}
