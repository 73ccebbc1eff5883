/**
 * Counters of refusals and cut-offs, keyed by a name from configuration or a fixed kind, never
 * by a value from a request: requests rejected by a rate-limit rule, failed rate-limit store
 * operations, guardrail actions and streams closed for overflowing their budget. Each counter
 * cell is created on its key's first event, then found with one `Map.get`.
 *
 * @module
 */
import { CounterFamily, type CounterCell } from './metrics-families.js';
import { GUARDRAIL_ACTIONS, METRIC_PREFIX, type GuardrailAction } from './metrics-labels.js';

/** The recorders of the rate-limit, guardrail and stream-overflow counters (part of `Metrics`). */
export interface LimitRecorders {
  /**
   * Counts one request rejected by a rate-limit rule in `switchboard_rate_limited_total{rule}`.
   * `rule` must come from configuration (the rule's name or index), never from the request.
   */
  recordRateLimited(rule: string): void;
  /**
   * Counts one failed rate-limit store operation for `rule` (e.g. Redis down; the `failOpen`
   * setting was applied) in `switchboard_rate_limit_store_errors_total{rule}`.
   */
  recordRateLimitStoreError(rule: string): void;
  /**
   * Counts one stream closed because its reader did not keep up with it, in
   * `switchboard_stream_overflows_total{stream}`. `stream` must be one of a fixed set of kinds
   * (`streamable-get`, `streamable-post`, `legacy-sse`, `tunnel`, `tunnel-feed`), never a value from a request.
   */
  recordStreamOverflow(stream: string): void;
  /**
   * Counts one guardrail action in `switchboard_guardrail_actions_total{guardrail,action}`
   * (`action`: one of {@link GUARDRAIL_ACTIONS}). `guardrail` must be a configured guardrail's
   * name, never a value from a request. Allocation-free after the first call for a guardrail.
   */
  recordGuardrailAction(guardrail: string, action: GuardrailAction): void;
}

/** The rate-limit, guardrail and stream-overflow families and their recorders; see {@link createLimitMetrics}. */
export interface LimitMetrics {
  readonly rateLimited: CounterFamily;
  readonly storeErrors: CounterFamily;
  readonly overflows: CounterFamily;
  readonly guardrailActions: CounterFamily;
  readonly recorders: LimitRecorders;
}

/**
 * Creates the rate-limit, guardrail and stream-overflow families and the recorders that write
 * them. Nothing is registered: the caller registers every family in the order `/metrics` lists them.
 */
export function createLimitMetrics(): LimitMetrics {
  const rateLimited = new CounterFamily(
    `${METRIC_PREFIX}rate_limited_total`,
    'Requests rejected by a rate-limit rule.',
  );
  const storeErrors = new CounterFamily(
    `${METRIC_PREFIX}rate_limit_store_errors_total`,
    'Failed rate-limit store operations, by rule (the failOpen setting was applied).',
  );
  const overflows = new CounterFamily(
    `${METRIC_PREFIX}stream_overflows_total`,
    'Streams closed because their reader did not keep up (over the buffered bytes or events budget), by kind.',
  );
  const guardrailActions = new CounterFamily(
    `${METRIC_PREFIX}guardrail_actions_total`,
    'Guardrail actions (deny, redact, warn, error), by guardrail.',
  );
  /** guardrail → one cell per action, in {@link GUARDRAIL_ACTIONS} order. */
  const guardrailCells = new Map<string, CounterCell[]>();
  const limitedCells = new Map<string, CounterCell>();
  const overflowCells = new Map<string, CounterCell>();
  const storeErrorCells = new Map<string, CounterCell>();

  const recorders: LimitRecorders = {
    recordRateLimited(rule): void {
      let cell = limitedCells.get(rule);
      if (cell === undefined) limitedCells.set(rule, (cell = rateLimited.cell({ rule })));
      cell.value++;
    },

    recordRateLimitStoreError(rule): void {
      let cell = storeErrorCells.get(rule);
      if (cell === undefined) storeErrorCells.set(rule, (cell = storeErrors.cell({ rule })));
      cell.value++;
    },

    recordGuardrailAction(guardrail, action): void {
      let cells = guardrailCells.get(guardrail);
      if (cells === undefined) {
        cells = GUARDRAIL_ACTIONS.map((a) => guardrailActions.cell({ guardrail, action: a }));
        guardrailCells.set(guardrail, cells);
      }
      cells[GUARDRAIL_ACTIONS.indexOf(action)]!.value++;
    },

    recordStreamOverflow(stream): void {
      let cell = overflowCells.get(stream);
      if (cell === undefined) overflowCells.set(stream, (cell = overflows.cell({ stream })));
      cell.value++;
    },
  };
  return { rateLimited, storeErrors, overflows, guardrailActions, recorders };
}
