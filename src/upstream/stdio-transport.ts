/**
 * The stdio upstream transport (MCP basic/transports, "stdio"): a child process speaking
 * newline-delimited JSON-RPC on stdin/stdout, logging on stderr.
 *
 * Framing only: no id remapping, no initialize logic (that is {@link UpstreamConnection}).
 * The child leads its own process group so that closing the transport also ends whatever the
 * server spawned, and every live group is killed when the gateway process exits (no orphans):
 * `process-group.ts`. Lines are split by `line-splitter.ts`.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { GatewayError } from '../errors.js';
import { childEnvironment } from './child-env.js';
import type { Logger } from '../observability/logger.js';
import { validateMessage, type JsonRpcMessage } from '../protocol/jsonrpc.js';
import {
  SENT,
  serialiseMessage,
  type IncomingMessageInfo,
  type MessageTransport,
  type TransportCloseInfo,
} from './transport.js';
import { createLineSplitter } from './line-splitter.js';
import { ProcessGroup } from './process-group.js';

export { createLineSplitter, type LineSplitter, type LineSplitterOptions } from './line-splitter.js';

/** Options for {@link createStdioTransport}. */
export interface StdioTransportOptions {
  /** Program to run (looked up on `PATH` when not a path). */
  command: string;
  /** Arguments. Default none. */
  args?: readonly string[];
  /**
   * The child's complete environment: nothing else is inherited. Default
   * {@link childEnvironment}`()`, the gateway's variables of the minimal allowlist only.
   */
  env?: Readonly<Record<string, string>>;
  /** Working directory of the child. Default the gateway's. */
  cwd?: string;
  /** Lines of stderr kept for {@link StdioTransport.stderrTail} (a ring; 0 keeps none). Default 200. */
  stderrLines?: number;
  /** Logger, already bound to the server's name; stderr lines are logged through it. */
  logger: Logger;
  /** Milliseconds between SIGTERM and SIGKILL when closing. Default 2000. */
  killGraceMs?: number;
  /**
   * Largest stdout line (one JSON-RPC message) accepted, in bytes; a longer line is dropped and
   * reported through `onerror`, so a child that never writes a newline cannot exhaust memory.
   * Default 32 MiB.
   */
  maxMessageBytes?: number;
}

/** A stdio {@link MessageTransport} with access to its child process. */
export interface StdioTransport extends MessageTransport {
  /** The child's pid (also its process-group id); `undefined` before `start()` or when spawning failed. */
  readonly pid: number | undefined;
  /** The last `stderrLines` lines the child wrote on stderr, oldest first (each at most 4 KiB). */
  stderrTail(): string[];
}

/** Longest stderr line kept or logged, in bytes; the rest of the line is dropped. */
export const STDERR_LINE_MAX_BYTES = 4096;
const DEFAULT_STDERR_LINES = 200;
const DEFAULT_KILL_GRACE_MS = 2000;
const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
/** Extra wait for the stdio pipes to close after the child exited (a grandchild may hold them). */
const PIPE_CLOSE_SLACK_MS = 250;
/** Stdout carries nothing but messages, so there is nothing to add per message. */
const NO_INFO: IncomingMessageInfo = Object.freeze({});
/** stderr lines logged at `warn` rather than `debug`: anywhere in the line, any case. */
const STDERR_WARN_RE = /error|fatal|panic|exception|traceback|warn/i;

/**
 * The level a child's stderr line is logged at: `warn` when it looks like an error or a warning
 * (it contains `error`, `fatal`, `panic`, `exception`, `traceback` or `warn`, in any case and
 * anywhere, so `TypeError` and `WARNING` count), else `debug`: servers chat on stderr.
 *
 * @param line - one stderr line, without its newline
 */
export function stderrLogLevel(line: string): 'warn' | 'debug' {
  return STDERR_WARN_RE.test(line) ? 'warn' : 'debug';
}

// ---------------------------------------------------------------------------------------------
// The transport.

interface QueuedWrite {
  line: string;
  resolve: () => void;
  reject: (error: Error) => void;
}

interface DrainWaiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

class StdioTransportImpl implements StdioTransport {
  onmessage?: (message: JsonRpcMessage, info: IncomingMessageInfo) => void;
  onclose?: (info: TransportCloseInfo) => void;
  onerror?: (error: Error) => void;

  readonly #command: string;
  readonly #args: readonly string[];
  readonly #env: Readonly<Record<string, string>>;
  readonly #cwd: string | undefined;
  readonly #logger: Logger;
  readonly #killGraceMs: number;
  readonly #maxMessageBytes: number;
  readonly #ring: string[];
  readonly #ringSize: number;
  #ringNext = 0;

  #child: ChildProcess | undefined;
  #pid: number | undefined;
  #started = false;
  /** No more sends: close() was called, the child exited or stdin broke. */
  #sendClosed = false;
  /** onclose has fired. */
  #finished = false;
  #closeCalled = false;
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #writeBlocked = false;
  /**
   * Lines accepted by send() in this event-loop turn, written to stdin together by one `write(2)`
   * in the check phase (setImmediate): at concurrency > 1 this saves a syscall, and a wake-up of
   * the child, per message; at concurrency 1 the delay is the rest of the current poll phase.
   */
  #pending = '';
  #flushScheduled = false;
  #queue: QueuedWrite[] = [];
  #drainWaiters: DrainWaiter[] = [];
  /** Deadline (ms since epoch) after which the group gets SIGKILL; set by close() or by a crash. */
  /** The process group the child leads, once it has a pid. */
  #group: ProcessGroup | undefined;
  #pipeTimer: NodeJS.Timeout | undefined;
  #finishedPromise: Promise<void>;
  #resolveFinished!: () => void;
  #groupGonePromise: Promise<void>;
  #resolveGroupGone!: () => void;

  constructor(options: StdioTransportOptions) {
    this.#command = options.command;
    this.#args = options.args ?? [];
    this.#env = options.env ?? childEnvironment();
    this.#cwd = options.cwd;
    this.#logger = options.logger;
    this.#killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#ringSize = Math.max(0, Math.floor(options.stderrLines ?? DEFAULT_STDERR_LINES));
    this.#ring = [];
    this.#finishedPromise = new Promise((resolve) => (this.#resolveFinished = resolve));
    this.#groupGonePromise = new Promise((resolve) => (this.#resolveGroupGone = resolve));
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  get description(): string {
    return this.#pid === undefined ? `stdio ${this.#command}` : `stdio ${this.#command} pid=${this.#pid}`;
  }

  stderrTail(): string[] {
    if (this.#ring.length < this.#ringSize) return this.#ring.slice();
    return [...this.#ring.slice(this.#ringNext), ...this.#ring.slice(0, this.#ringNext)];
  }

  start(): Promise<void> {
    if (this.#started) return Promise.reject(new Error('stdio transport already started'));
    this.#started = true;
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        this.#sendClosed = true;
        this.#finished = true;
        this.#resolveFinished();
        this.#resolveGroupGone();
        reject(
          new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `failed to start "${this.#command}": ${err.message}`, {
            cause: err,
          }),
        );
      };
      let child: ChildProcess;
      try {
        child = spawn(this.#command, this.#args, {
          cwd: this.#cwd,
          env: this.#env,
          stdio: ['pipe', 'pipe', 'pipe'],
          // Leader of its own process group: close() signals the group, so grandchildren go too.
          detached: true,
          windowsHide: true,
        });
      } catch (err) {
        fail(err as Error);
        return;
      }
      this.#child = child;
      let spawned = false;
      child.once('spawn', () => {
        spawned = true;
        this.#pid = child.pid;
        if (child.pid !== undefined) this.#group = new ProcessGroup(child.pid, this.#killGraceMs, this.#logger);
        this.#logger.debug({ pid: child.pid, command: this.#command }, 'upstream child started');
        if (this.#closeCalled) this.#terminate();
        resolve();
      });
      child.on('error', (err) => {
        if (!spawned) {
          fail(err);
          return;
        }
        this.#logger.warn({ err, pid: this.#pid }, 'upstream child process error');
        this.onerror?.(err);
      });
      child.once('exit', (code, signal) => {
        if (!spawned) return;
        this.#onExit(code, signal);
      });
      child.once('close', () => {
        if (!spawned) return;
        this.#finish();
      });
      this.#wireStdout(child);
      this.#wireStderr(child);
      this.#wireStdin(child);
    });
  }

  send(message: JsonRpcMessage): Promise<void> {
    if (this.#sendClosed) return Promise.reject(this.#closedError());
    const stdin = this.#child?.stdin;
    if (!stdin) return Promise.reject(new GatewayError('SWB_ERR_UPSTREAM_CLOSED', 'stdio transport not started'));
    let line: string;
    try {
      line = serialiseMessage(message) + '\n';
    } catch (err) {
      // This message only: the child and the other callers' messages are unaffected.
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    // While the pipe is full, later messages queue behind the one that filled it: order is kept
    // and callers awaiting send() are held back until the child reads.
    if (this.#writeBlocked) {
      return new Promise((resolve, reject) => this.#queue.push({ line, resolve, reject }));
    }
    this.#pending += line;
    if (this.#pending.length >= stdin.writableHighWaterMark) {
      // A turn's worth of lines this large goes out now, so backpressure still bounds memory.
      this.#flush();
      if (this.#writeBlocked) return new Promise((resolve, reject) => this.#drainWaiters.push({ resolve, reject }));
      return SENT;
    }
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flushTurn);
    }
    return SENT;
  }

  readonly #flushTurn = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  /** Writes the lines gathered this turn (see {@link #pending}); a full pipe blocks later sends. */
  #flush(): void {
    const data = this.#pending;
    if (data === '') return;
    this.#pending = '';
    const stdin = this.#child?.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return;
    if (!stdin.write(data)) this.#writeBlocked = true;
  }

  close(): Promise<void> {
    if (!this.#closeCalled) {
      this.#closeCalled = true;
      this.#sendClosed = true;
      this.#rejectPendingWrites();
      if (this.#child === undefined) {
        // Never started: nothing to stop.
        this.#resolveGroupGone();
        this.#finish();
      } else {
        // Spawn still pending: the 'spawn' handler terminates the child as soon as it has a pid.
        this.#terminate();
      }
    }
    return Promise.all([this.#finishedPromise, this.#groupGonePromise]).then(() => undefined);
  }

  /** MCP stdio shutdown: close stdin, then SIGTERM, then SIGKILL. The whole group is signalled. */
  #terminate(): void {
    if (this.#pid === undefined || this.#exit !== undefined) return;
    // Lines whose send() already resolved go out before stdin closes.
    this.#flush();
    this.#child?.stdin?.end();
    this.#group?.terminate();
  }

  // -- stdout / stderr / stdin -------------------------------------------------------------------

  #wireStdout(child: ChildProcess): void {
    const splitter = createLineSplitter({
      maxLineBytes: this.#maxMessageBytes,
      onLine: (line) => this.#onStdoutLine(line),
      onOverflow: (prefix) =>
        this.#protocolError(`stdout line longer than ${this.#maxMessageBytes} bytes dropped`, prefix),
    });
    child.stdout?.on('data', (chunk: Buffer) => splitter.push(chunk));
    child.stdout?.on('end', () => splitter.end());
    child.stdout?.on('error', (err) => this.#logger.debug({ err }, 'upstream stdout error'));
  }

  #onStdoutLine(line: string): void {
    if (line.length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.#protocolError('unparseable line on stdout', line);
      return;
    }
    const checked = validateMessage(value);
    if (!checked.ok) {
      this.#protocolError(`invalid JSON-RPC message on stdout: ${checked.reason}`, line);
      return;
    }
    try {
      this.onmessage?.(checked.message, NO_INFO);
    } catch (err) {
      this.#logger.error({ err }, 'onmessage handler threw');
    }
  }

  #protocolError(reason: string, line: string): void {
    const excerpt = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    this.#logger.warn({ pid: this.#pid, excerpt }, reason);
    // The excerpt is logged only: what a child prints is not for the gateway's clients.
    this.onerror?.(new GatewayError('SWB_ERR_UPSTREAM_PROTOCOL', reason));
  }

  #wireStderr(child: ChildProcess): void {
    const splitter = createLineSplitter({
      maxLineBytes: STDERR_LINE_MAX_BYTES,
      onLine: (line) => this.#onStderrLine(line),
      onOverflow: (prefix) => this.#onStderrLine(`${prefix}…`),
    });
    child.stderr?.on('data', (chunk: Buffer) => splitter.push(chunk));
    child.stderr?.on('end', () => splitter.end());
    child.stderr?.on('error', (err) => this.#logger.debug({ err }, 'upstream stderr error'));
  }

  #onStderrLine(line: string): void {
    if (line.length === 0) return;
    if (this.#ringSize > 0) {
      this.#ring[this.#ringNext] = line;
      this.#ringNext = (this.#ringNext + 1) % this.#ringSize;
    }
    this.#logger[stderrLogLevel(line)]({ pid: this.#pid, stderr: line }, 'upstream stderr');
  }

  #wireStdin(child: ChildProcess): void {
    const stdin = child.stdin;
    if (!stdin) return;
    stdin.on('drain', () => {
      this.#writeBlocked = false;
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w.resolve();
      while (this.#queue.length > 0 && !this.#writeBlocked) {
        const item = this.#queue.shift()!;
        if (stdin.write(item.line)) {
          item.resolve();
        } else {
          this.#writeBlocked = true;
          this.#drainWaiters.push(item);
        }
      }
    });
    // EPIPE when the child exits or closes stdin: no more sends; the exit reports the rest.
    stdin.on('error', (err) => {
      this.#logger.debug({ err, pid: this.#pid }, 'upstream stdin error');
      this.#sendClosed = true;
      this.#rejectPendingWrites();
    });
  }

  #rejectPendingWrites(): void {
    const error = this.#closedError();
    const pending = [...this.#drainWaiters, ...this.#queue];
    this.#drainWaiters = [];
    this.#queue = [];
    for (const w of pending) w.reject(error);
  }

  // -- exit and process-group cleanup ----------------------------------------------------------

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.#exit = { code, signal };
    this.#sendClosed = true;
    this.#rejectPendingWrites();
    const pid = this.#pid;
    if (!this.#closeCalled) {
      this.#logger.warn({ pid, exitCode: code, signal }, 'upstream child exited');
    } else {
      this.#logger.debug({ pid, exitCode: code, signal }, 'upstream child exited');
    }
    if (this.#group !== undefined) void this.#group.reap(this.#resolveGroupGone);
    else this.#resolveGroupGone();
    // Normally 'close' follows once stdout/stderr are drained; a grandchild still holding the
    // pipes must not delay onclose beyond the kill deadline.
    this.#pipeTimer = setTimeout(() => {
      this.#child?.stdout?.destroy();
      this.#child?.stderr?.destroy();
      this.#finish();
    }, this.#killGraceMs + PIPE_CLOSE_SLACK_MS);
    this.#pipeTimer.unref();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#pipeTimer !== undefined) clearTimeout(this.#pipeTimer);
    this.#sendClosed = true;
    this.#rejectPendingWrites();
    const info: TransportCloseInfo = { exitCode: this.#exit?.code ?? null, signal: this.#exit?.signal ?? null };
    this.#resolveFinished();
    try {
      this.onclose?.(info);
    } catch (err) {
      this.#logger.error({ err }, 'onclose handler threw');
    }
  }

  #closedError(): GatewayError {
    const why =
      this.#exit === undefined
        ? 'transport closed'
        : this.#exit.signal
          ? `child exited with signal ${this.#exit.signal}`
          : `child exited with code ${this.#exit.code}`;
    return new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: ${why}`);
  }
}

/**
 * Creates a stdio transport (MCP basic/transports §stdio): spawns `command` on `start()` as the
 * leader of a new process group, reads newline-delimited JSON-RPC from its stdout and writes one
 * message per line to its stdin.
 *
 * - Lines that are not JSON or not JSON-RPC are logged at `warn` and reported to `onerror`
 *   (`GatewayError('SWB_ERR_UPSTREAM_PROTOCOL')`); the stream goes on.
 * - Messages sent in one event-loop turn go to stdin together, in order, in one `write()` in the
 *   check phase (`setImmediate`), or at once when they reach the pipe's high-water mark;
 *   `send()` resolves once its line is accepted.
 * - `send()` respects the pipe's backpressure: once a `write()` returns false, later sends queue
 *   in order and resolve as the pipe drains.
 * - stderr lines are kept in a bounded ring (`stderrTail()`) and logged at `debug` (`warn` when
 *   they look like errors: {@link stderrLogLevel}), each truncated to {@link STDERR_LINE_MAX_BYTES}.
 * - The child's exit fires `onclose({ exitCode, signal })` once, after stdout is drained; what it
 *   left behind in its process group gets SIGTERM, then SIGKILL after `killGraceMs`.
 * - `close()` ends stdin and sends SIGTERM to the group, SIGKILL after `killGraceMs`; it resolves
 *   once the child exited and the group is gone (or was killed).
 * - When the gateway process exits, every live group gets SIGKILL (`process.on('exit')`). The CLI
 *   must turn SIGINT/SIGTERM into `process.exit()` for that hook to run.
 *
 * `start()` rejects with `GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', 'failed to start "cmd":
 * spawn cmd ENOENT')` when the program cannot be spawned; `onclose` does not fire then.
 * After close or exit, `send()` rejects with `GatewayError('SWB_ERR_UPSTREAM_CLOSED')`; a message
 * that cannot be serialised is refused alone with `GatewayError('SWB_ERR_UPSTREAM_UNSERIALISABLE')`.
 */
export function createStdioTransport(options: StdioTransportOptions): StdioTransport {
  return new StdioTransportImpl(options);
}
