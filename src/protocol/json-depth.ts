/**
 * A nesting-depth check on JSON text, run before `JSON.parse` on the request path.
 *
 * `JSON.parse` accepts any depth, but every later recursive walk of the value — `JSON.stringify`
 * on the way to an upstream, a structured clone, a schema validator — overflows the stack on a
 * deep enough one (a `RangeError` where a per-request error was meant). Refusing such a message
 * at the edge keeps it from reaching anything shared.
 *
 * @module
 */

const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]

/**
 * True when the JSON text nests objects and arrays more than `maxDepth` deep: `{}` is depth 1,
 * `{"a":[1]}` depth 2. A text with no more than `maxDepth` opening brackets in all is within the
 * limit (counted with native `indexOf`, the usual case); otherwise one pass over the text with no
 * allocation: brackets are counted outside strings (RFC 8259 §2), and each string is skipped with
 * a native `indexOf` for its closing quote, so long string values cost little.
 *
 * The text is not validated: malformed JSON within the limit returns false and is left to
 * `JSON.parse`, which reports it.
 *
 * @param text - the JSON text (a whole request body)
 * @param maxDepth - the largest depth allowed (≥ 1)
 */
export function exceedsJsonDepth(text: string, maxDepth: number): boolean {
  // Nesting deeper than maxDepth takes at least maxDepth + 1 opening and as many closing brackets.
  const n = text.length;
  if (n < 2 * (maxDepth + 1)) return false;
  // The same bound, counted with native searches: the opening brackets anywhere in the text (in
  // strings too, which only over-counts) bound the depth. A usual message has a handful.
  let opens = 0;
  for (let i = text.indexOf('{'); i !== -1 && opens <= maxDepth; i = text.indexOf('{', i + 1)) opens++;
  for (let i = text.indexOf('['); i !== -1 && opens <= maxDepth; i = text.indexOf('[', i + 1)) opens++;
  if (opens <= maxDepth) return false;
  let depth = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      // Find the closing quote: one preceded by an even number of backslashes.
      let end = text.indexOf('"', i + 1);
      while (end !== -1) {
        let k = end - 1;
        while (text.charCodeAt(k) === BACKSLASH) k--;
        if (((end - 1 - k) & 1) === 0) break;
        end = text.indexOf('"', end + 1);
      }
      if (end === -1) return false; // an unterminated string: JSON.parse refuses it
      i = end;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}
