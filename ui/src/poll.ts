/**
 * Polling hook: loads once, then again every `intervalMs` while the page is shown (not while the
 * tab is hidden).
 *
 * @module
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError } from './api.ts';

/** What {@link usePoll} returns. */
export interface Poll<T> {
  data: T | undefined;
  /** The last failure's sentence, cleared by the next success. */
  error: string | null;
  /** Loads now (after a change). */
  reload: () => Promise<void>;
}

/** Calls `load` now and every `intervalMs` ms (0: only on `reload`). */
export function usePoll<T>(
  load: (signal: AbortSignal) => Promise<T>,
  intervalMs: number,
  deps: unknown[] = [],
): Poll<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const loader = useRef(load);
  loader.current = load;
  const controller = useRef<AbortController | null>(null);

  const reload = useCallback(async () => {
    controller.current?.abort();
    const c = new AbortController();
    controller.current = c;
    try {
      const value = await loader.current(c.signal);
      if (!c.signal.aborted) {
        setData(value);
        setError(null);
      }
    } catch (err) {
      if (!c.signal.aborted) setError(describeError(err));
    }
  }, []);

  useEffect(() => {
    void reload();
    if (intervalMs <= 0) return () => controller.current?.abort();
    const timer = setInterval(() => {
      if (document.visibilityState === 'visible') void reload();
    }, intervalMs);
    return () => {
      clearInterval(timer);
      controller.current?.abort();
    };
  }, [reload, intervalMs, ...deps]);

  return { data, error, reload };
}
