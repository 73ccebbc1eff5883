// Preload (`node --import ./bench/heap-sampler.mjs …`) that records an allocation-sampling heap
// profile INCLUDING objects already collected by GC (short-lived garbage, which `--heap-prof`
// drops), and writes it as JSON to $SWB_HEAP_PROFILE when the process exits.
// Summarise it with `node bench/profile-summary.mjs FILE.heapprofile`.
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';

const out = process.env.SWB_HEAP_PROFILE;
if (out) {
  const session = new Session();
  session.connect();
  session.post('HeapProfiler.enable');
  session.post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.SWB_HEAP_INTERVAL ?? 4096),
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  process.on('exit', () => {
    // Same-thread inspector sessions dispatch synchronously, so this completes inside 'exit'.
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (!err) writeFileSync(out, JSON.stringify({ ...res.profile, startedAt: Date.now() }));
    });
  });
}
