import { describe, expect, it } from 'vitest';
import { mergeCapabilities } from '../../../src/gateway/capabilities.js';

const TASKS = 'io.modelcontextprotocol/tasks';

describe('mergeCapabilities (views of several upstreams)', () => {
  it('advertises tools even when no member has them yet, with the gateway’s own listChanged', () => {
    expect(mergeCapabilities([])).toEqual({ tools: { listChanged: true } });
    expect(mergeCapabilities([{ tools: { listChanged: false } }])).toEqual({ tools: { listChanged: true } });
  });

  it('advertises a list when any member has it (the union of catalogs), always with listChanged', () => {
    const caps = mergeCapabilities([{ tools: {} }, { prompts: {} }, { resources: {} }]);
    expect(caps).toEqual({
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { listChanged: true },
    });
  });

  it('advertises resources.subscribe only when every member with resources can subscribe', () => {
    expect(mergeCapabilities([{ resources: { subscribe: true } }, { tools: {} }]).resources).toEqual({
      listChanged: true,
      subscribe: true,
    });
    expect(
      mergeCapabilities([{ resources: { subscribe: true } }, { resources: { subscribe: true } }]).resources,
    ).toEqual({ listChanged: true, subscribe: true });
    // One member whose URIs cannot be subscribed to: the view cannot promise it.
    expect(mergeCapabilities([{ resources: { subscribe: true } }, { resources: {} }]).resources).toEqual({
      listChanged: true,
    });
  });

  it('advertises logging and completions when any member has them (the gateway covers the others)', () => {
    const caps = mergeCapabilities([{ logging: {}, tools: {} }, { completions: {}, prompts: {} }, { tools: {} }]);
    expect(caps.logging).toEqual({});
    expect(caps.completions).toEqual({});
    expect(mergeCapabilities([{ tools: {} }])).not.toHaveProperty('logging');
    expect(mergeCapabilities([{ tools: {} }])).not.toHaveProperty('completions');
  });

  it('advertises the tasks extension when any member declares it, and no extension it cannot route', () => {
    const caps = mergeCapabilities([
      { tools: {}, extensions: { [TASKS]: { some: 'setting' }, 'example.com/unknown': {} } },
      { tools: {} },
    ]);
    expect(caps.extensions).toEqual({ [TASKS]: {} });
    expect(mergeCapabilities([{ extensions: { 'example.com/unknown': {} } }])).not.toHaveProperty('extensions');
    expect(mergeCapabilities([{ extensions: null }, { extensions: [] }])).not.toHaveProperty('extensions');
  });

  it('does not advertise experimental features or the 2025 tasks capability', () => {
    const caps = mergeCapabilities([{ tools: {}, experimental: { x: {} }, tasks: { list: {} } }]);
    expect(caps).toEqual({ tools: { listChanged: true } });
  });
});
