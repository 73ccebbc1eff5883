/**
 * Small shared components: status badges (colour and text, never colour alone) and the live
 * region for asynchronous messages.
 *
 * @module
 */
import type { ComponentChildren } from 'preact';

/** How a state or outcome word is shown: its tone picks the colour, the word is always visible. */
export type Tone = 'ok' | 'warn' | 'bad' | 'neutral';

const STATE_TONES: Record<string, Tone> = {
  ready: 'ok',
  ok: 'ok',
  starting: 'warn',
  degraded: 'warn',
  rate_limited: 'warn',
  failed: 'bad',
  error: 'bad',
  blocked: 'bad',
  idle: 'neutral',
  stopped: 'neutral',
  disabled: 'neutral',
};

/** The tone of a server state or a request outcome. */
export function toneOf(word: string): Tone {
  return STATE_TONES[word] ?? 'neutral';
}

/** A word in a coloured pill, e.g. a server's `ready` or a request's `blocked`. */
export function Badge({ word, label }: { word: string; label?: string }) {
  const tone = toneOf(word);
  return (
    <span class={`badge badge-${tone}`} data-state={word}>
      {tone === 'bad' && <span aria-hidden="true">✕ </span>}
      {tone === 'warn' && <span aria-hidden="true">! </span>}
      {label ?? word}
    </span>
  );
}

/** A message that screen readers announce when it changes (`role=status` or `alert`). */
export function Notice({ kind, children }: { kind: 'info' | 'error' | 'success'; children: ComponentChildren }) {
  return (
    <div class={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}
