/**
 * Test helper: an {@link OutboundChannel} that records what a session sends, serialising each
 * message as the HTTP edge does (so a message that cannot be serialised throws, as it would there).
 * Its `fail` does what the edge's does before the response has started: `encodeError` decides, an
 * `http`-family error is recorded as a failure (an HTTP status), anything else is sent as the
 * JSON-RPC error response.
 */
import { encodeError } from '../../src/errors.js';
import type { OutboundChannel } from '../../src/gateway/client-session.js';
import type { JsonRpcId, JsonRpcMessage } from '../../src/protocol/jsonrpc.js';

/** One `fail()` answered with an HTTP status: the error's code and that status, and the request id. */
export interface RecordedFailure {
  readonly code: string;
  readonly status: number;
  readonly id: JsonRpcId;
}

/** Options of {@link RecordingChannel}. */
export interface RecordingChannelOptions {
  /** Offer `sendResult` (pre-serialised list results). Default true. */
  sendResult?: boolean;
  /** Offer `fail` (the HTTP response has not started). Default true. */
  fail?: boolean;
  /** Keep messages sent while closed (a resumable stream). Default false. */
  retains?: boolean;
}

/** Records messages (parsed back from their JSON), `fail()` and `end()` calls. */
export class RecordingChannel implements OutboundChannel {
  readonly messages: JsonRpcMessage[] = [];
  readonly failures: RecordedFailure[] = [];
  /** How many results arrived through `sendResult`. */
  resultsSent = 0;
  ends = 0;
  closed = false;
  readonly retains: boolean;
  readonly sendResult?: (id: JsonRpcId, resultJson: string) => void;
  readonly fail?: (error: unknown, id: JsonRpcId) => void;

  constructor(options: RecordingChannelOptions = {}) {
    this.retains = options.retains ?? false;
    if (options.sendResult !== false) {
      this.sendResult = (id, resultJson) => {
        this.resultsSent++;
        this.messages.push(JSON.parse(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${resultJson}}`));
      };
    }
    if (options.fail !== false) {
      this.fail = (error, id) => {
        const encoded = encodeError(error, { responseStarted: false, id });
        if (encoded.kind === 'http') this.failures.push({ code: encoded.error.code, status: encoded.status, id });
        else this.send(encoded.response);
      };
    }
  }

  send(message: JsonRpcMessage): void {
    if (this.closed && !this.retains) return;
    this.messages.push(JSON.parse(JSON.stringify(message)) as JsonRpcMessage);
  }

  end(): void {
    this.ends++;
  }

  /** True once a response, a failure or an end arrived. */
  get finished(): boolean {
    return this.failures.length > 0 || this.ends > 0 || this.messages.some((m) => !('method' in m));
  }

  /** The one response recorded (throws unless there is exactly one). */
  get response(): JsonRpcMessage {
    const responses = this.messages.filter((m) => !('method' in m));
    if (responses.length !== 1) throw new Error(`expected one response, got ${JSON.stringify(this.messages)}`);
    return responses[0]!;
  }
}
