/**
 * Catalog: the tools, prompts and resources a client of one endpoint sees (filtered by the
 * caller's scopes), searchable; with `tools.execute`, "Try it" calls a tool through that endpoint
 * with a form generated from its input schema.
 *
 * @module
 */
import { useState } from 'preact/hooks';
import { api, describeError, type Catalog, type CatalogTool, type Me } from '../api.ts';
import { Notice } from '../components.tsx';
import { callTool, JsonRpcError, type ContentItem, type ToolResult } from '../mcp.ts';
import { usePoll } from '../poll.ts';
import { SchemaForm } from '../schema-form.tsx';

function ContentView({ item }: { item: ContentItem }) {
  if (item.type === 'text') return <pre class="result-text">{item.text}</pre>;
  if ((item.type === 'image' || item.type === 'audio') && item.data && item.mimeType) {
    const src = `data:${item.mimeType};base64,${item.data}`;
    return item.type === 'image' ? (
      <img class="result-image" src={src} alt={`Image result (${item.mimeType})`} />
    ) : (
      <audio controls src={src} aria-label={`Audio result (${item.mimeType})`} />
    );
  }
  if (item.type === 'resource_link')
    return (
      <p>
        Resource link: <code>{item.uri}</code> {item.name && <span class="muted">({item.name})</span>}
      </p>
    );
  if (item.type === 'resource' && item.resource)
    return (
      <div>
        <p>
          Resource <code>{item.resource.uri}</code>
        </p>
        {item.resource.text !== undefined && <pre class="result-text">{item.resource.text}</pre>}
      </div>
    );
  return <pre class="result-text">{JSON.stringify(item, null, 2)}</pre>;
}

function ResultView({ result }: { result: ToolResult }) {
  return (
    <div class={result.isError ? 'result result-error' : 'result'} data-testid="tool-result">
      <h4>{result.isError ? 'Tool error (isError: true)' : 'Result'}</h4>
      {(result.content ?? []).map((item, i) => (
        <ContentView key={i} item={item} />
      ))}
      {result.structuredContent !== undefined && (
        <>
          <h5>Structured content</h5>
          <pre class="result-text">{JSON.stringify(result.structuredContent, null, 2)}</pre>
        </>
      )}
    </div>
  );
}

function TryIt({ tool, path }: { tool: CatalogTool; path: string }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ToolResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const call = async (args: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      setResult(await callTool(path, tool.name, args));
    } catch (err) {
      setError(err instanceof JsonRpcError ? `JSON-RPC error ${err.code}: ${err.message}` : describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="try-it">
      <SchemaForm
        idPrefix={`try-${tool.name}`}
        schema={tool.inputSchema ?? {}}
        busy={busy}
        onSubmit={(args) => void call(args)}
      />
      <div aria-live="polite">
        {error && <Notice kind="error">{error}</Notice>}
        {result && <ResultView result={result} />}
      </div>
    </div>
  );
}

function matches(query: string, ...texts: Array<string | undefined>): boolean {
  const q = query.trim().toLowerCase();
  return q === '' || texts.some((t) => t?.toLowerCase().includes(q));
}

/** The catalog page. */
export function CatalogPage({ me }: { me: Me }) {
  const [endpoint, setEndpoint] = useState('mcp');
  const [query, setQuery] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const { data, error } = usePoll(
    (signal) => api<Catalog>(`catalog?endpoint=${encodeURIComponent(endpoint)}`, { signal }),
    0,
    [endpoint],
  );
  const tools = (data?.tools ?? []).filter((t) => matches(query, t.name, t.title, t.description));
  const prompts = (data?.prompts ?? []).filter((p) => matches(query, p.name, p.description));
  const resources = (data?.resources ?? []).filter((r) => matches(query, r.name, r.uri, r.description));

  return (
    <>
      <div class="toolbar">
        <div class="field">
          <label for="catalog-endpoint">Endpoint</label>
          <select
            id="catalog-endpoint"
            value={endpoint}
            onChange={(e) => {
              setEndpoint(e.currentTarget.value);
              setOpen(null);
            }}
          >
            {(data?.endpoints ?? [{ id: 'mcp', path: '/mcp', label: 'All servers' }]).map((ep) => (
              <option key={ep.id} value={ep.id}>
                {ep.label} ({ep.path})
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="catalog-search">Search</label>
          <input
            id="catalog-search"
            type="search"
            value={query}
            onInput={(e) => setQuery(e.currentTarget.value)}
            placeholder="name or description"
          />
        </div>
      </div>
      <div aria-live="polite">
        {error && <Notice kind="error">{error}</Notice>}
        {data && (
          <p class="muted">
            {tools.length} tools, {prompts.length} prompts, {resources.length} resources at <code>{data.path}</code>
            {!me.can.toolsExecute && ' (this token may not call tools)'}.
          </p>
        )}
      </div>

      <section aria-labelledby="tools-title">
        <h2 id="tools-title">Tools</h2>
        <ul class="catalog-list">
          {tools.map((t) => (
            <li key={t.name} class="catalog-item" data-tool={t.name}>
              <div class="catalog-head">
                <div>
                  <h3 class="catalog-name">
                    <code>{t.name}</code>
                  </h3>
                  <span class="muted small">
                    {t.server} · {t.upstreamName}
                  </span>
                </div>
                {me.can.toolsExecute && data && (
                  <button
                    type="button"
                    aria-expanded={open === t.name}
                    aria-label={`${open === t.name ? 'Close' : 'Try it'}: ${t.name}`}
                    onClick={() => setOpen(open === t.name ? null : t.name)}
                  >
                    {open === t.name ? 'Close' : 'Try it'}
                  </button>
                )}
              </div>
              {t.description && <p class="catalog-desc">{t.description}</p>}
              {open === t.name && data && <TryIt tool={t} path={data.path} />}
            </li>
          ))}
        </ul>
        {data && tools.length === 0 && <p>No tools match.</p>}
      </section>
      <section aria-labelledby="prompts-title">
        <h2 id="prompts-title">Prompts</h2>
        <ul class="catalog-list">
          {prompts.map((p) => (
            <li key={p.name} class="catalog-item">
              <h3 class="catalog-name">
                <code>{p.name}</code>
              </h3>
              {p.description && <p class="catalog-desc">{p.description}</p>}
              {p.arguments && p.arguments.length > 0 && (
                <p class="small muted">
                  Arguments: {p.arguments.map((a) => `${a.name}${a.required ? ' (required)' : ''}`).join(', ')}
                </p>
              )}
            </li>
          ))}
        </ul>
        {data && prompts.length === 0 && <p>No prompts match.</p>}
      </section>
      <section aria-labelledby="resources-title">
        <h2 id="resources-title">Resources</h2>
        {data && resources.length === 0 && <p>No resources match.</p>}
        {resources.length > 0 && (
          <table class="data">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">URI</th>
                <th scope="col">Server</th>
                <th scope="col">Type</th>
              </tr>
            </thead>
            <tbody>
              {resources.map((r) => (
                <tr key={r.uri}>
                  <td>{r.name}</td>
                  <td>
                    <code>{r.uri}</code>
                  </td>
                  <td>{r.server}</td>
                  <td>{r.mimeType ?? '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}
