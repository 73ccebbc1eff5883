/**
 * A form generated from a tool's `inputSchema` (JSON Schema 2020-12, the subset MCP tools use):
 * string, number and integer inputs, booleans as checkboxes, `enum` as a select, arrays and
 * objects as JSON text areas. Required properties are marked; `default` values pre-fill.
 *
 * @module
 */
import { useState } from 'preact/hooks';
import type { JsonSchema } from './api.ts';
import { scalarText } from './format.ts';

/** The input kind used for one property. */
export type FieldKind = 'string' | 'number' | 'integer' | 'boolean' | 'enum' | 'json';

/** The kind of input a property schema gets. */
export function fieldKind(schema: JsonSchema): FieldKind {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return 'enum';
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type === 'string' || type === 'number' || type === 'integer' || type === 'boolean') return type;
  return 'json';
}

function initialText(schema: JsonSchema): string {
  const d = schema.default;
  if (d === undefined) return '';
  if (fieldKind(schema) === 'json' || typeof d === 'object') return JSON.stringify(d, null, 2);
  return scalarText(d);
}

/** The form's values by property name: text for inputs, `'true'`/`'false'` for checkboxes. */
type Values = Record<string, string>;

/**
 * Converts the form's values to tool arguments; empty optional fields are left out.
 *
 * @returns the arguments, or per-property error messages.
 */
export function toArguments(
  schema: JsonSchema,
  values: Values,
): { args: Record<string, unknown>; errors: Record<string, string> } {
  const args: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  const required = new Set(schema.required ?? []);
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    const kind = fieldKind(prop);
    const raw = values[name] ?? '';
    if (kind === 'boolean') {
      if (raw !== '' || required.has(name)) args[name] = raw === 'true';
      continue;
    }
    if (raw.trim() === '') {
      if (required.has(name)) errors[name] = 'required';
      continue;
    }
    if (kind === 'number' || kind === 'integer') {
      const n = Number(raw);
      if (!Number.isFinite(n) || (kind === 'integer' && !Number.isInteger(n)))
        errors[name] = kind === 'integer' ? 'must be a whole number' : 'must be a number';
      else args[name] = n;
    } else if (kind === 'enum') {
      const match = (prop.enum ?? []).find((v) => String(v) === raw);
      args[name] = match ?? raw;
    } else if (kind === 'json') {
      try {
        args[name] = JSON.parse(raw);
      } catch {
        errors[name] = 'must be valid JSON';
      }
    } else {
      args[name] = raw;
    }
  }
  return { args, errors };
}

/** Props of {@link SchemaForm}. */
export interface SchemaFormProps {
  /** Prefix of the input ids, unique on the page. */
  idPrefix: string;
  schema: JsonSchema;
  /** Whether a call is running (the submit button is disabled). */
  busy: boolean;
  onSubmit: (args: Record<string, unknown>) => void;
}

/** The try-it form of one tool. */
export function SchemaForm({ idPrefix, schema, busy, onSubmit }: SchemaFormProps) {
  const props = Object.entries(schema.properties ?? {});
  const required = new Set(schema.required ?? []);
  const [values, setValues] = useState<Values>(() =>
    Object.fromEntries(
      props.map(([name, prop]) => [
        name,
        fieldKind(prop) === 'boolean' ? (prop.default === true ? 'true' : 'false') : initialText(prop),
      ]),
    ),
  );
  const [errors, setErrors] = useState<Record<string, string>>({});
  const set = (name: string, value: string) => setValues((v) => ({ ...v, [name]: value }));

  const submit = (e: Event) => {
    e.preventDefault();
    const result = toArguments(schema, values);
    setErrors(result.errors);
    if (Object.keys(result.errors).length === 0) onSubmit(result.args);
  };

  return (
    <form class="schema-form" onSubmit={submit} noValidate>
      {props.length === 0 && <p class="muted">This tool takes no arguments.</p>}
      {props.map(([name, prop]) => {
        const id = `${idPrefix}-${name}`;
        const kind = fieldKind(prop);
        const help = prop.description ?? prop.title;
        const describedBy = [help ? `${id}-help` : '', errors[name] ? `${id}-error` : ''].filter(Boolean).join(' ');
        const common = {
          id,
          name,
          'aria-describedby': describedBy || undefined,
          'aria-invalid': errors[name] ? true : undefined,
          'aria-required': required.has(name) ? true : undefined,
        };
        const label = (
          <label for={id}>
            {name}
            {required.has(name) && (
              <span class="required" aria-hidden="true">
                {' '}
                *
              </span>
            )}
            {required.has(name) && <span class="visually-hidden"> (required)</span>}
            <span class="muted"> {kind === 'json' ? `(${String(prop.type ?? 'JSON')}, JSON)` : `(${kind})`}</span>
          </label>
        );
        let input;
        if (kind === 'boolean') {
          input = (
            <input
              {...common}
              type="checkbox"
              checked={values[name] === 'true'}
              onChange={(e) => set(name, e.currentTarget.checked ? 'true' : 'false')}
            />
          );
        } else if (kind === 'enum') {
          input = (
            <select {...common} value={values[name]} onChange={(e) => set(name, e.currentTarget.value)}>
              {!required.has(name) && <option value="">(none)</option>}
              {required.has(name) && values[name] === '' && <option value="">Choose…</option>}
              {(prop.enum ?? []).map((v) => (
                <option key={String(v)} value={String(v)}>
                  {String(v)}
                </option>
              ))}
            </select>
          );
        } else if (kind === 'json') {
          input = (
            <textarea
              {...common}
              rows={3}
              spellcheck={false}
              value={values[name]}
              onInput={(e) => set(name, e.currentTarget.value)}
            />
          );
        } else if (kind === 'string') {
          input = (
            <input {...common} type="text" value={values[name]} onInput={(e) => set(name, e.currentTarget.value)} />
          );
        } else {
          input = (
            <input
              {...common}
              type="number"
              step={kind === 'integer' ? 1 : 'any'}
              value={values[name]}
              onInput={(e) => set(name, e.currentTarget.value)}
            />
          );
        }
        return (
          <div class={kind === 'boolean' ? 'field field-inline' : 'field'} key={name}>
            {kind === 'boolean' ? (
              <>
                {input}
                {label}
              </>
            ) : (
              <>
                {label}
                {input}
              </>
            )}
            {help && (
              <small id={`${id}-help`} class="muted">
                {help}
              </small>
            )}
            {errors[name] && (
              <small id={`${id}-error`} class="field-error">
                {name}: {errors[name]}
              </small>
            )}
          </div>
        );
      })}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Calling…' : 'Call tool'}
        </button>
      </div>
    </form>
  );
}
