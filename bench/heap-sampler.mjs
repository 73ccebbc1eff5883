// Preload (`node --import ./bench/heap-sampler.mjs …`) that records an allocation-sampling heap
// profile INCLUDING objects already collected by GC (short-lived garbage, which `--heap-prof`
// drops), and writes it as JSON to $SWB_HEAP_PROFILE when the process exits.
// Summarise it with `node bench/profile-summary.mjs FILE.heapprofile`. With SWB_HEAP_MINOR=0 the
// objects freed by young-generation GCs are left out: what remains is what survived a scavenge
// (promoted, or still live), e.g. to find what keeps dead requests alive (see bench/gc.mjs).
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
    includeObjectsCollectedByMinorGC: process.env.SWB_HEAP_MINOR !== '0',
  });
  process.on('exit', () => {
    // Same-thread inspector sessions dispatch synchronously, so this completes inside 'exit'.
    session.post('HeapProfiler.stopSampling', (err, res) => {
      if (!err) writeFileSync(out, JSON.stringify({ ...res.profile, startedAt: Date.now() }));
    });
  });
}
