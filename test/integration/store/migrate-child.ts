/**
 * Test fixture, run as a child process: opens the database named by argv (`URL [SCHEMA]`), prints
 * `ready`, waits for a line on stdin (so several processes can be released at the same moment),
 * migrates, and prints the names applied as one JSON array. Lets a test migrate one database
 * from several processes at once, as replicas (or `switchboard migrate` beside a starting
 * gateway) do.
 */
import { once } from 'node:events';
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
  process.stdout.write('ready\n');
  await once(process.stdin, 'data');
  process.stdin.pause();
  process.stdout.write(`${JSON.stringify(await db.migrate())}\n`);
} finally {
  await db.close();
}
