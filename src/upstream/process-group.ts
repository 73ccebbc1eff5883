/**
 * The process group of a stdio upstream's child: the child leads its own group (spawned
 * `detached`), so stopping it signals the whole group and whatever the server spawned goes too.
 * Stopping is SIGTERM, then SIGKILL after a grace period (MCP basic/transports §stdio,
 * shutdown); after the leader exits, the rest of the group is waited for until that deadline.
 * Every live group is killed when the gateway process exits, so no child outlives it.
 *
 * @module
 */
import type { Logger } from '../observability/logger.js';

/** How often a process group is probed while waiting for it to empty after its leader exited. */
const GROUP_POLL_MS = 20;

/** How long a group is waited for after SIGKILL before it is given up on. */
const KILL_WAIT_MS = 1_000;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The process groups of live children, killed when the gateway exits. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function killLiveGroups(): void {
  for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
  liveGroups.clear();
}

function trackGroup(pgid: number): void {
  if (!exitHookInstalled) {
    // 'exit' listeners must be synchronous, so there is no grace period here: SIGKILL at once.
    process.on('exit', killLiveGroups);
    exitHookInstalled = true;
  }
  liveGroups.add(pgid);
}

/** Sends `signal` to every process of group `pgid`; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    // EPERM: the group exists but a member changed its credentials; count it as alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process group led by one child. Tracked (killed at gateway exit) from construction. */
export class ProcessGroup {
  readonly #pid: number;
  readonly #killGraceMs: number;
  readonly #logger: Logger;
  #killDeadline: number | undefined;
  #killTimer: NodeJS.Timeout | undefined;

  /**
   * @param pid - the leader's pid (= the group id)
   * @param killGraceMs - time between SIGTERM and SIGKILL
   */
  constructor(pid: number, killGraceMs: number, logger: Logger) {
    this.#pid = pid;
    this.#killGraceMs = killGraceMs;
    this.#logger = logger;
    trackGroup(pid);
  }

  /** SIGTERM to the group now, SIGKILL after the grace period if it is still alive. */
  terminate(): void {
    signalGroup(this.#pid, 'SIGTERM');
    this.#armKill();
  }

  #armKill(): void {
    if (this.#killDeadline !== undefined) return;
    const pid = this.#pid;
    this.#killDeadline = Date.now() + this.#killGraceMs;
    this.#killTimer = setTimeout(() => {
      if (signalGroup(pid, 0)) {
        this.#logger.warn({ pid }, `upstream process group still alive ${this.#killGraceMs} ms after SIGTERM; SIGKILL`);
        signalGroup(pid, 'SIGKILL');
      }
    }, this.#killGraceMs);
    this.#killTimer.unref();
  }

  /**
   * Waits for the rest of the group (grandchildren) to go after the leader exited, then calls
   * `onGone`.
   */
  async reap(onGone: () => void): Promise<void> {
    const pid = this.#pid;
    try {
      if (!signalGroup(pid, 0)) return;
      if (this.#killDeadline === undefined) {
        // The leader died on its own: its orphans get the same SIGTERM → SIGKILL treatment.
        signalGroup(pid, 'SIGTERM');
        this.#armKill();
      }
      const deadline = this.#killDeadline ?? Date.now();
      // The poll timers are ref'd: a shutdown awaiting this reap keeps the event loop alive until
      // the group is gone, so the process never exits with a promise still pending.
      while (Date.now() < deadline) {
        await pause(GROUP_POLL_MS);
        if (!signalGroup(pid, 0)) return;
      }
      signalGroup(pid, 'SIGKILL');
      // SIGKILL cannot be ignored; wait (bounded) until the kernel has removed the group.
      const killDeadline = Date.now() + KILL_WAIT_MS;
      while (Date.now() < killDeadline && signalGroup(pid, 0)) await pause(GROUP_POLL_MS);
    } finally {
      if (this.#killTimer !== undefined) clearTimeout(this.#killTimer);
      liveGroups.delete(pid);
      onGone();
    }
  }
}
