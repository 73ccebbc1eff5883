/**
 * The size of the tool lists clients receive against the full lists of their endpoints: with
 * `exposure: search` a client gets two tool definitions instead of every member's, and the
 * difference is context a model does not spend. Counted per `tools/list` answered from its first
 * page, by endpoint (a configured path: `/mcp`, `/mcp/{virtual server}`, `/servers/{name}/mcp`),
 * never by a value from the request.
 *
 * @module
 */
import { CounterFamily, type CounterCell } from './metrics-families.js';
import { METRIC_PREFIX } from './metrics-labels.js';

/** The recorder of the tool-list size counters (part of `Metrics`). */
export interface ToolListRecorders {
  /**
   * Counts one `tools/list` answer at `endpoint`: `sentBytes` of JSON (`{"tools":[…]}`) the client
   * received in `switchboard_tool_list_bytes_total{endpoint}`, and `fullBytes`, the JSON of every
   * tool that principal may use at that endpoint, in `switchboard_tool_list_full_bytes_total{endpoint}`.
   * `endpoint` must be a configured path, never a value from a request.
   */
  recordToolList(endpoint: string, sentBytes: number, fullBytes: number): void;
}

/** The two families and their recorder; see {@link createToolListMetrics}. */
export interface ToolListMetrics {
  readonly sent: CounterFamily;
  readonly full: CounterFamily;
  readonly recorders: ToolListRecorders;
}

/**
 * Creates the tool-list size families and their recorder. Nothing is registered: the caller
 * registers the families in the order `/metrics` lists them.
 */
export function createToolListMetrics(): ToolListMetrics {
  const sent = new CounterFamily(
    `${METRIC_PREFIX}tool_list_bytes_total`,
    'Bytes of tools/list results sent to clients (JSON of the tools array), by endpoint.',
  );
  const full = new CounterFamily(
    `${METRIC_PREFIX}tool_list_full_bytes_total`,
    'Bytes the same tools/list results would have had with every tool the principal may use (exposure: all), by endpoint.',
  );
  const cells = new Map<string, [CounterCell, CounterCell]>();
  const recorders: ToolListRecorders = {
    recordToolList(endpoint, sentBytes, fullBytes): void {
      let pair = cells.get(endpoint);
      if (pair === undefined) cells.set(endpoint, (pair = [sent.cell({ endpoint }), full.cell({ endpoint })]));
      pair[0].value += sentBytes;
      pair[1].value += fullBytes;
    },
  };
  return { sent, full, recorders };
}
