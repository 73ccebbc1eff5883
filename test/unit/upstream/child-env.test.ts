import { describe, expect, it } from 'vitest';
import { childEnvironment } from '../../../src/upstream/child-env.js';

const source = {
  PATH: '/usr/bin',
  HOME: '/home/ada',
  LC_ALL: 'C.UTF-8',
  TZ: 'UTC',
  SWITCHBOARD_SECRET: 's',
  SWITCHBOARD_DATABASE_URL: 'postgres://x',
  GITHUB_TOKEN: 'ghp',
  AWS_REGION: 'eu-west-1',
  AWS_SECRET_ACCESS_KEY: 'k',
  UNSET: undefined,
};

describe('childEnvironment', () => {
  it('passes only the base allowlist by default', () => {
    expect(childEnvironment({ source, platform: 'linux' })).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/ada',
      LC_ALL: 'C.UTF-8',
      TZ: 'UTC',
    });
  });

  it('adds inheritEnv names and globs, never SWITCHBOARD_* or a forbidden name', () => {
    const env = childEnvironment({
      source,
      platform: 'linux',
      inherit: ['AWS_*', 'SWITCHBOARD_SECRET', 'GITHUB_TOKEN'],
      forbidden: ['GITHUB_TOKEN'],
    });
    expect(Object.keys(env).sort()).toEqual(['AWS_REGION', 'AWS_SECRET_ACCESS_KEY', 'HOME', 'LC_ALL', 'PATH', 'TZ']);
  });

  it('lets * inherit everything but SWITCHBOARD_* and forbidden names', () => {
    const env = childEnvironment({ source, platform: 'linux', inherit: ['*'], forbidden: ['GITHUB_TOKEN'] });
    expect(env.SWITCHBOARD_SECRET).toBeUndefined();
    expect(env.SWITCHBOARD_DATABASE_URL).toBeUndefined();
    expect(env.GITHUB_TOKEN).toBeUndefined();
    expect(env.AWS_REGION).toBe('eu-west-1');
    expect('UNSET' in env).toBe(false);
  });

  it('sets the server’s own env last, over inherited values', () => {
    const env = childEnvironment({ source, platform: 'linux', env: { PATH: '/opt/bin', GITHUB_TOKEN: 'own' } });
    expect(env.PATH).toBe('/opt/bin');
    expect(env.GITHUB_TOKEN).toBe('own');
  });

  it('matches names case-insensitively on Windows, where Path and SystemRoot are spelled freely', () => {
    const env = childEnvironment({
      source: { Path: 'C:\\Windows', SystemRoot: 'C:\\Windows', Switchboard_Secret: 's', github_token: 'g' },
      platform: 'win32',
      inherit: ['*'],
      forbidden: ['GITHUB_TOKEN'],
    });
    expect(env).toEqual({ Path: 'C:\\Windows', SystemRoot: 'C:\\Windows' });
  });
});
