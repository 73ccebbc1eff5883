/**
 * Configuration: schema, loading (YAML/JSON/TOML), `${VAR}` interpolation, client-config import
 * and hot reload. See docs/configuration.md for the file format.
 *
 * @module
 */
export * from './schema.js';
export * from './interpolate.js';
export * from './load.js';
export * from './import.js';
export * from './watch.js';
