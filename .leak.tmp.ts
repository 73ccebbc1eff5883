import { silentLogger } from './src/observability/logger.js';
import { openDatabase } from './src/store/database.js';
const t0 = Date.now();
const db = await openDatabase({ url: 'postgres://postgres@127.0.0.1:5432/test', dataDir: '/tmp', logger: silentLogger(), env: {} });
await db.close();
process.on('exit', () => console.log('exited after', Date.now() - t0, 'ms'));
