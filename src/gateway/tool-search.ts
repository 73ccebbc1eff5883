/**
 * Tool search exposure (`exposure: search`): an endpoint lists two gateway tools instead of its
 * members' — `search_tools`, a lexical BM25 search (MiniSearch) over the tools the caller may
 * use, and `call_tool`, which the session turns into the real `tools/call` before routing, so
 * authorization, rate limits, guardrails, the usage log and metrics see the real tool.
 *
 * An index is built from one tool list array on its first search and kept while that array is:
 * a view's (and each scope's) list arrays are rebuilt, never changed, when a member's catalog
 * changes, so a `list_changed` makes the next search index the new list. Endpoints with
 * `exposure: all` never build one.
 *
 * @module
 */
import MiniSearch from 'minisearch';
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcRequest } from '../protocol/jsonrpc.js';

/** The name of the search tool. */
export const SEARCH_TOOLS = 'search_tools';
/** The name of the dispatch tool. */
export const CALL_TOOL = 'call_tool';

/** Matches returned when `limit` is not given. */
export const DEFAULT_SEARCH_LIMIT = 10;
/** The largest `limit` accepted. */
export const MAX_SEARCH_LIMIT = 50;
/** The longest `query` accepted, in UTF-16 code units. */
export const MAX_QUERY_LENGTH = 1000;

/**
 * The whole `tools/list` of a search-exposure endpoint. One array for every session, so its JSON
 * is serialised once (`session-lists.ts`).
 */
export const SEARCH_EXPOSURE_TOOLS: JsonObject[] = [
  {
    name: SEARCH_TOOLS,
    title: 'Search tools',
    description:
      'Finds the tools available through this gateway that match a short description of a task ' +
      '(for example "add two numbers" or "create a calendar event"). Returns the best matches first, ' +
      'each with its name, description and input schema. Call a match with call_tool.',
    inputSchema: {
      type: 'object',
      properties: {
        query: {
          type: 'string',
          minLength: 1,
          maxLength: MAX_QUERY_LENGTH,
          description: 'Words describing the task or the tool wanted.',
        },
        limit: {
          type: 'integer',
          minimum: 1,
          maximum: MAX_SEARCH_LIMIT,
          default: DEFAULT_SEARCH_LIMIT,
          description: 'The largest number of matches to return.',
        },
      },
      required: ['query'],
      additionalProperties: false,
    },
    outputSchema: {
      type: 'object',
      properties: {
        tools: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              name: { type: 'string' },
              description: { type: 'string' },
              inputSchema: { type: 'object' },
              score: { type: 'number' },
            },
            required: ['name', 'inputSchema', 'score'],
          },
        },
      },
      required: ['tools'],
    },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  },
  {
    name: CALL_TOOL,
    title: 'Call a tool',
    description:
      'Calls a tool found with search_tools: give its name exactly as search_tools returned it and ' +
      'arguments that match its input schema. Returns that tool’s result.',
    inputSchema: {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, description: 'The tool’s name, as returned by search_tools.' },
        arguments: {
          type: 'object',
          description: 'The tool’s arguments, matching its input schema.',
          additionalProperties: true,
        },
      },
      required: ['name'],
      additionalProperties: false,
    },
  },
];

/** One match of {@link searchTools}. */
export interface ToolMatch {
  /** The tool's name at this endpoint (as `tools/call` and `call_tool` take it). */
  name: string;
  description?: string;
  inputSchema: JsonObject;
  /** BM25 relevance (higher is better; comparable within one result only). */
  score: number;
}

/**
 * Field weights: a word in a tool's name says most about it, then its title, then the names of
 * its arguments, then the prose of its description.
 */
const BOOST = { name: 3, title: 2, params: 1.5, description: 1 } as const;

/**
 * English function words: they say nothing about a tool, and as prefixes (`a`, `in`) they would
 * match most of a large catalog and make a search of a few thousand tools take milliseconds.
 */
const STOP_WORDS = new Set('a an and are as at be by for from in into is it of on or that the this to with'.split(' '));

/** Drops {@link STOP_WORDS} from indexed and searched text. */
function processTerm(term: string): string | null {
  return STOP_WORDS.has(term) ? null : term;
}

/** Prefix matching (`calend` finds `calendar`) from three letters on; shorter prefixes match too much. */
function prefixFor(term: string): boolean {
  return term.length >= 3;
}

/**
 * One typo in words of five letters or more, none in shorter ones: a typo allowed in `two`
 * matches the argument `to` of every messaging tool and drowns the tools that are about two of
 * something.
 */
function typoTolerance(term: string): number | false {
  return term.length >= 5 ? 1 : false;
}

/** Splits `get-sum`, `listFiles`, `github__create_issue` and prose into lowercase words. */
function tokenize(text: string): string[] {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0);
}

/** A document of the index: the searchable text of one tool and its position in the list. */
interface ToolDocument {
  id: number;
  name: string;
  title: string;
  description: string;
  params: string;
}

function documentOf(tool: JsonObject, id: number): ToolDocument {
  const schema = tool.inputSchema as JsonObject | undefined;
  const props = schema?.properties;
  const annotations = tool.annotations as JsonObject | undefined;
  const title = typeof tool.title === 'string' ? tool.title : annotations?.title;
  return {
    id,
    name: typeof tool.name === 'string' ? tool.name : '',
    title: typeof title === 'string' ? title : '',
    description: typeof tool.description === 'string' ? tool.description : '',
    params: props !== null && typeof props === 'object' && !Array.isArray(props) ? Object.keys(props).join(' ') : '',
  };
}

/** A BM25 index over one tool list. */
export class ToolIndex {
  readonly #tools: JsonObject[];
  readonly #search: MiniSearch<ToolDocument>;

  /** Indexes `tools` (`tools/list` items); they are read, never changed. */
  constructor(tools: JsonObject[]) {
    this.#tools = tools;
    this.#search = new MiniSearch<ToolDocument>({
      fields: ['name', 'title', 'description', 'params'],
      tokenize,
      processTerm,
      searchOptions: { boost: BOOST, prefix: prefixFor, fuzzy: typoTolerance, combineWith: 'OR' },
    });
    this.#search.addAll(tools.map(documentOf));
  }

  /** Number of indexed tools. */
  get size(): number {
    return this.#tools.length;
  }

  /**
   * The tools best matching `query`, best first.
   *
   * @param limit - the largest number of matches
   * @param allowed - when given, only tools for which it returns true are returned
   */
  search(query: string, limit: number, allowed?: (tool: JsonObject) => boolean): ToolMatch[] {
    const filter = allowed === undefined ? undefined : (r: { id: unknown }) => allowed(this.#tools[r.id as number]!);
    const hits = this.#search.search(query, filter === undefined ? {} : { filter });
    const out: ToolMatch[] = [];
    for (const h of hits) {
      if (out.length >= limit) break;
      const tool = this.#tools[h.id as number]!;
      const match: ToolMatch = {
        name: tool.name as string,
        inputSchema: (tool.inputSchema as JsonObject | undefined) ?? { type: 'object' },
        score: Math.round(h.score * 1000) / 1000,
      };
      if (typeof tool.description === 'string') match.description = tool.description;
      out.push(match);
    }
    return out;
  }
}

const INDEXES = new WeakMap<JsonObject[], ToolIndex>();

/**
 * The index of a tool list array, built on first use and kept as long as the array lives (a
 * changed catalog gives a view new arrays, hence a new index).
 */
export function indexOf(tools: JsonObject[]): ToolIndex {
  let index = INDEXES.get(tools);
  if (index === undefined) {
    index = new ToolIndex(tools);
    INDEXES.set(tools, index);
  }
  return index;
}

/**
 * The validated arguments of a `search_tools` call.
 *
 * @throws GatewayError `SWB_ERR_PROTOCOL_INVALID_PARAMS` for a missing, empty or too long
 *   `query`, or a `limit` that is not an integer from 1 to {@link MAX_SEARCH_LIMIT}
 */
export function searchArguments(params: JsonObject | undefined): { query: string; limit: number } {
  const args = params?.arguments as JsonObject | undefined;
  const query = args?.query;
  if (typeof query !== 'string' || query.trim() === '' || query.length > MAX_QUERY_LENGTH)
    throw new GatewayError(
      'SWB_ERR_PROTOCOL_INVALID_PARAMS',
      `${SEARCH_TOOLS}: query must be a non-empty string of at most ${MAX_QUERY_LENGTH} characters`,
    );
  const limit = args?.limit ?? DEFAULT_SEARCH_LIMIT;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_SEARCH_LIMIT)
    throw new GatewayError(
      'SWB_ERR_PROTOCOL_INVALID_PARAMS',
      `${SEARCH_TOOLS}: limit must be an integer from 1 to ${MAX_SEARCH_LIMIT}`,
    );
  return { query, limit };
}

/** The `tools/call` result of a search: JSON text content and `structuredContent` (MCP tools §Structured content). */
export function searchResult(matches: ToolMatch[]): JsonObject {
  const structured = { tools: matches };
  return { content: [{ type: 'text', text: JSON.stringify(structured) }], structuredContent: structured };
}

/**
 * Turns a `tools/call` of `call_tool` into the `tools/call` of the tool it names, keeping the
 * request's id and `_meta` (progress token, task request).
 *
 * @throws GatewayError `SWB_ERR_PROTOCOL_INVALID_PARAMS` when `arguments.name` is not a non-empty
 *   string or `arguments.arguments` is present and not an object
 */
export function unwrapCallTool(req: JsonRpcRequest): JsonRpcRequest {
  const outer = req.params ?? {};
  const args = outer.arguments as JsonObject | undefined;
  const name = args?.name;
  const inner = args?.arguments ?? {};
  if (typeof name !== 'string' || name === '')
    throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_PARAMS', `${CALL_TOOL}: name must be a non-empty string`);
  if (inner === null || typeof inner !== 'object' || Array.isArray(inner))
    throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_PARAMS', `${CALL_TOOL}: arguments must be an object`);
  const params: JsonObject = { ...outer, name, arguments: inner };
  return { ...req, params };
}
