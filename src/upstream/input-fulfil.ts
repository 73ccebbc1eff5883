/**
 * A modern upstream's `input_required` result (MCP 2026-07-28, basic/patterns/mrtr) answered on
 * behalf of a 2025-era client: each of its `inputRequests` (sampling, elicitation, roots) is sent
 * to that client as the server→client request a 2025 server would have sent, and the answers
 * become the retry's `inputResponses`, round after round ({@link fulfilInput}).
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import { MCP_MISSING_CLIENT_CAPABILITY } from '../protocol/era.js';
import type { JsonObject, JsonRpcResponse } from '../protocol/jsonrpc.js';
import { SERVER_REQUEST_CAPABILITY, type Caller } from './attribution.js';

/** Most `input_required` rounds one call may take before the gateway gives up. */
export const MAX_INPUT_ROUNDS = 8;

/** Methods whose result may be `input_required` (mrtr §Supported Requests). */
export const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * Asks the client every request of `inputRequests` at once and returns the answers under the
 * same keys.
 *
 * @throws GatewayError `SWB_ERR_ROUTE_CLIENT_CAPABILITY` for a request whose capability the client
 *   did not declare (or a method that is not sampling, elicitation or roots), or the client's own
 *   error answer as `SWB_ERR_UPSTREAM_INPUT_REQUIRED`; the client's request errors (timeout, no
 *   stream) as they come
 */
export async function askForInput(caller: Caller, inputRequests: unknown): Promise<JsonObject> {
  const entries =
    typeof inputRequests === 'object' && inputRequests !== null && !Array.isArray(inputRequests)
      ? Object.entries(inputRequests as JsonObject)
      : [];
  const answers = await Promise.all(
    entries.map(async ([key, value]) => {
      const request = (typeof value === 'object' && value !== null ? value : {}) as JsonObject;
      const method = typeof request.method === 'string' ? request.method : '';
      const capability = SERVER_REQUEST_CAPABILITY[method];
      if (capability === undefined || caller.clientCapabilities?.[capability] === undefined) {
        throw new GatewayError(
          'SWB_ERR_ROUTE_CLIENT_CAPABILITY',
          `the upstream needs ${method || 'an unknown request'} from the client, which did not declare the ${capability ?? 'needed'} capability`,
        );
      }
      const params =
        typeof request.params === 'object' && request.params !== null ? (request.params as JsonObject) : undefined;
      const answer = await caller.request(method, params);
      if (answer.error !== undefined || answer.result === undefined) {
        throw new GatewayError(
          'SWB_ERR_UPSTREAM_INPUT_REQUIRED',
          `the client answered ${method} with an error: ${answer.error?.message ?? 'no result'}`,
        );
      }
      return [key, answer.result] as const;
    }),
  );
  return Object.fromEntries(answers);
}

/** What {@link fulfilInput} needs of the call it answers for. */
export interface InputCall {
  readonly caller: Caller;
  readonly method: string;
  readonly params: JsonObject | undefined;
  readonly cancelled: boolean;
}

/**
 * Takes `input_required` rounds for a 2025-era client until the upstream answers otherwise: asks
 * the client ({@link askForInput}), then sends the retry (`inputResponses`, and the
 * `requestState` echoed byte for byte) through `retry`, which returns the retry's answer.
 *
 * @param refuse - turns an answer the client cannot be given into its error (`detail` says why):
 *   a round past {@link MAX_INPUT_ROUNDS}, an unanswerable request, or a MissingRequiredClient
 *   Capability error of the upstream
 * @returns the upstream's final answer, or the error `refuse` made
 */
export async function fulfilInput(
  first: JsonRpcResponse,
  call: InputCall,
  retry: (params: JsonObject) => Promise<JsonRpcResponse>,
  refuse: (response: JsonRpcResponse, detail: string) => JsonRpcResponse,
): Promise<JsonRpcResponse> {
  let response = first;
  for (let round = 1; 'result' in response && response.result.resultType === 'input_required'; round++) {
    if (call.cancelled) return response;
    if (round > MAX_INPUT_ROUNDS) return refuse(response, ` (more than ${MAX_INPUT_ROUNDS} rounds)`);
    let answers: JsonObject;
    try {
      answers = await askForInput(call.caller, response.result.inputRequests);
    } catch (err) {
      return refuse(response, ` (${err instanceof Error ? err.message : String(err)})`);
    }
    const params: JsonObject = { ...call.params, inputResponses: answers };
    const state = response.result.requestState;
    if (typeof state === 'string') params.requestState = state;
    response = await retry(params);
  }
  if ('error' in response && response.error.code === MCP_MISSING_CLIENT_CAPABILITY) {
    return refuse(response, ` (${response.error.message})`);
  }
  return response;
}
