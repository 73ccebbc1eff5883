/**
 * Paths into a parsed configuration tree: formatting them as users read them
 * (`servers["my.server"].url`), looking values up, and the document order issues are reported in.
 *
 * @module
 */
import type { PathSegment } from './interpolate.js';

/**
 * Formats a path as users read it: `servers.everything.args[0]`; keys that are not plain
 * identifiers (server names may contain dots) are quoted: `servers["my.server"].url`.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Position of every node of the tree in document (depth-first) order, by formatted path. */
export function documentOrder(tree: unknown): Map<string, number> {
  const order = new Map<string, number>();
  const walk = (node: unknown, path: PathSegment[]): void => {
    order.set(formatPath(path), order.size);
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, [...path, i]));
    else if (isPlainObject(node)) for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
  };
  walk(tree, []);
  return order;
}

/** Document position of `path`, or of its deepest existing ancestor for a missing key. */
export function orderOf(order: Map<string, number>, path: readonly PathSegment[]): number {
  for (let n = path.length; n >= 0; n--) {
    const at = order.get(formatPath(path.slice(0, n)));
    if (at !== undefined) return at;
  }
  return 0;
}

/** Whether `prefix` is `path` or one of its ancestors. */
export function isPrefix(prefix: readonly PathSegment[], path: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => seg === path[i]);
}

/** The value at `path` in `tree`, or undefined where the path leaves the tree. */
export function valueAt(tree: unknown, path: readonly PathSegment[]): unknown {
  let node = tree;
  for (const seg of path) {
    if (Array.isArray(node) && typeof seg === 'number') node = node[seg];
    else if (isPlainObject(node)) node = node[String(seg)];
    else return undefined;
  }
  return node;
}

/** A plain object (a parsed mapping), not an array, `null` or a class instance. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}
