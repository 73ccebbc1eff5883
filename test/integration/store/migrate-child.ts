/**
 * Test fixture, run as a child process: opens the database named by argv (`URL [SCHEMA]`),
 * migrates it and prints the names applied as one JSON array on stdout. Lets a test migrate the
 * same database from several processes at once, as replicas (or `switchboard migrate` beside a
 * starting gateway) do.
 */
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';

const [url, schema] = process.argv.slice(2);
const db = await openDatabase({
  url,
  dataDir: process.cwd(),
  logger: silentLogger(),
  env: {},
  ...(schema === undefined ? {} : { schema }),
});
try {
  process.stdout.write(`${JSON.stringify(await db.migrate())}\n`);
} finally {
  await db.close();
}
