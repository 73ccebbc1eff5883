import { describe, expect, it } from 'vitest';
import {
  createRedactor,
  DETECTORS,
  ibanValid,
  luhnValid,
  redactPatternProblem,
} from '../../../src/guardrails/redact.js';

const secrets = createRedactor(['secrets']);
const pii = createRedactor(['pii']);
const both = createRedactor(['secrets', 'pii']);

/** Detector names reported for `text`. */
function found(text: string, redactor = both): string[] {
  const names: string[] = [];
  redactor.redactString(text, (n) => names.push(n));
  return names;
}

const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
const PEM = '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\nabc==\n-----END RSA PRIVATE KEY-----';

describe('secrets detectors: true positives', () => {
  const cases: Array<[string, string]> = [
    ['aws-access-key', 'key=AKIAIOSFODNN7EXAMPLE;'],
    ['aws-access-key', 'ASIAY34FZKBOKMUTVV7A'],
    ['private-key', `before\n${PEM}\nafter`],
    ['private-key', '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----'],
    ['jwt', `token ${JWT}`],
    ['bearer-token', 'Authorization: Bearer abcdef0123456789abcdef'],
    ['github-token', `ghp_${'A1b2C3d4E5'.repeat(3)}abcdef`],
    ['github-token', `github_pat_11ABCDEFG0123456789_${'x'.repeat(59)}`],
    ['slack-token', 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx'],
    ['stripe-key', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'],
    ['google-api-key', 'AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe'],
    ['openai-api-key', 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789'],
    ['openai-api-key', 'OPENAI_API_KEY=sk-AbCdEfGhIjKlMnOpQrSt1234'],
  ];
  for (const [name, text] of cases) {
    it(`finds ${name} in ${JSON.stringify(text.slice(0, 40))}`, () => {
      expect(found(text, secrets)).toEqual([name]);
      expect(secrets.redactString(text)).toContain(`[REDACTED:${name}]`);
    });
  }

  it('replaces only the secret, keeping the text around it', () => {
    expect(secrets.redactString('my key AKIAIOSFODNN7EXAMPLE is here')).toBe(
      'my key [REDACTED:aws-access-key] is here',
    );
    expect(secrets.redactString(`a\n${PEM}\nb`)).toBe('a\n[REDACTED:private-key]\nb');
  });
});

describe('secrets detectors: false positives', () => {
  const clean = [
    'AKIA is a prefix, AKIAshort is not a key',
    'akiaiosfodnn7example in lower case',
    'the task-abcdefghijklmnopqrstuvwxyz runs',
    'risk-management-and-compliance-report-2024',
    'eyJ alone is not a token, nor eyJabc.def',
    'a bearer of bad news',
    'ghp_short',
    'xoxb-',
    'sk_live_short',
    'AIza too short',
    '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----',
  ];
  for (const text of clean) {
    it(`leaves ${JSON.stringify(text.slice(0, 40))} alone (the same string object)`, () => {
      expect(secrets.redactString(text)).toBe(text);
      expect(found(text, secrets)).toEqual([]);
    });
  }
});

describe('pii detectors', () => {
  it('finds e-mail addresses, Luhn-valid cards, mod-97-valid IBANs and phone numbers', () => {
    expect(pii.redactString('write to jane.doe+tag@mail.example.co.uk now')).toBe('write to [REDACTED:email] now');
    expect(pii.redactString('card 4111 1111 1111 1111.')).toBe('card [REDACTED:payment-card].');
    expect(pii.redactString('card 5500-0000-0000-0004')).toBe('card [REDACTED:payment-card]');
    expect(pii.redactString('card 378282246310005')).toBe('card [REDACTED:payment-card]');
    expect(pii.redactString('IBAN GB82 WEST 1234 5698 7654 32')).toBe('IBAN [REDACTED:iban]');
    expect(pii.redactString('IBAN DE89370400440532013000')).toBe('IBAN [REDACTED:iban]');
    expect(pii.redactString('call +1 555 123 4567')).toBe('call [REDACTED:phone]');
    expect(pii.redactString('call (555) 123-4567')).toBe('call [REDACTED:phone]');
    expect(pii.redactString('call +447946095812')).toBe('call [REDACTED:phone]');
  });

  it('leaves numbers that fail the checks or are not personal data alone', () => {
    const clean = [
      'card 4111 1111 1111 1112', // Luhn fails
      'order 1234567890123', // 13 digits, Luhn fails
      'IBAN GB82 WEST 1234 5698 7654 33', // mod 97 fails
      'ip 192.168.100.200 and 10.0.0.1',
      'date 2024-01-15, version 1.2.3, time 12:30:45',
      'user@localhost has no domain',
      'price 1,299.00 and 42',
    ];
    for (const text of clean) expect(pii.redactString(text), text).toBe(text);
  });

  it('is not applied by the secrets set, and vice versa', () => {
    expect(secrets.redactString('jane@example.com')).toBe('jane@example.com');
    expect(pii.redactString('AKIAIOSFODNN7EXAMPLE')).toBe('AKIAIOSFODNN7EXAMPLE');
  });
});

describe('luhnValid / ibanValid', () => {
  it('checks the Luhn sum over 13 to 19 digits', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111 1111 1111 1111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('0000000000')).toBe(false); // too short
    expect(luhnValid('0'.repeat(20))).toBe(false); // too long
  });

  it('checks the IBAN mod-97 remainder and length', () => {
    expect(ibanValid('GB82WEST12345698765432')).toBe(true);
    expect(ibanValid('GB82 WEST 1234 5698 7654 32')).toBe(true);
    expect(ibanValid('GB83WEST12345698765432')).toBe(false);
    expect(ibanValid('GB82WEST')).toBe(false);
    expect(ibanValid('gb82west12345698765432')).toBe(false);
  });
});

describe('custom patterns', () => {
  it('replaces with the given replacement and groups, or [REDACTED:<name>]', () => {
    const r = createRedactor([
      { pattern: 'ticket-(\\d+)', replacement: 'ticket-#' },
      { pattern: 'internal\\.example\\.com', name: 'host', flags: 'i' },
    ]);
    expect(r.redactString('see ticket-42 on INTERNAL.example.com')).toBe('see ticket-# on [REDACTED:host]');
    const names: string[] = [];
    r.redactString('ticket-1 ticket-2', (n) => names.push(n));
    expect(names).toEqual(['custom']);
  });

  it('refuses patterns that do not compile or match the empty string', () => {
    expect(redactPatternProblem('(', '')).toMatch(/^invalid regular expression/);
    expect(redactPatternProblem('a*', '')).toBe('the pattern matches the empty string');
    expect(redactPatternProblem('a+', 'i')).toBeUndefined();
    expect(() => createRedactor([{ pattern: '[' }])).toThrow(/invalid regular expression/);
  });
});

describe('redactValue', () => {
  it('walks objects and arrays in place, changing only strings that contain findings', () => {
    const inner = { note: 'nothing here', list: ['AKIAIOSFODNN7EXAMPLE', 7, null, { deep: 'mail a@b.io' }] };
    const value = { message: 'hi', inner };
    const out = both.redactValue(value);
    expect(out).toBe(value);
    expect(value.inner).toBe(inner);
    expect(value).toEqual({
      message: 'hi',
      inner: { note: 'nothing here', list: ['[REDACTED:aws-access-key]', 7, null, { deep: 'mail [REDACTED:email]' }] },
    });
  });

  it('stops at 64 levels of nesting', () => {
    let deep: Record<string, unknown> = { s: 'AKIAIOSFODNN7EXAMPLE' };
    const root = deep;
    for (let i = 0; i < 70; i++) {
      const next: Record<string, unknown> = { s: 'AKIAIOSFODNN7EXAMPLE' };
      deep.child = next;
      deep = next;
    }
    secrets.redactValue(root);
    expect(root.s).toBe('[REDACTED:aws-access-key]');
    expect(deep.s).toBe('AKIAIOSFODNN7EXAMPLE');
  });

  it('has a detector name for every built-in', () => {
    expect(new Set(DETECTORS.map((d) => d.name)).size).toBe(DETECTORS.length);
  });
});

describe('number boundaries', () => {
  it('redacts a card or phone number at the end of a sentence but not inside a decimal', () => {
    expect(pii.redactString('call +1 555 123 4567.')).toBe('call [REDACTED:phone].');
    expect(pii.redactString('total 4111111111111111.50')).toBe('total 4111111111111111.50');
    expect(pii.redactString('v0.4111111111111111')).toBe('v0.4111111111111111');
  });
});

describe('linear time on hostile text', () => {
  // Before the detectors anchored at run starts, `a.a.a…` took ~36 s for 200 000 characters
  // (every `\b` inside the run restarted an unbounded scan); linear, each is a few milliseconds.
  const n = 200_000;
  const hostile: Record<string, string> = {
    'dotted run': 'a.'.repeat(n / 2),
    'dashed eyJ': 'eyJa-'.repeat(n / 5),
    'dashed AIza': 'AIza-'.repeat(n / 5),
    'repeated sk-': 'sk-'.repeat(n / 3),
    'BEGIN without END': '-----BEGIN RSA PRIVATE KEY-----\nabc\n'.repeat(n / 36),
    'at signs': 'a@'.repeat(n / 2),
    'long domain': `a@b.${'c.'.repeat(n / 2)}`,
    'spaced digits': '1 2 '.repeat(n / 4),
  };
  for (const [what, text] of Object.entries(hostile)) {
    it(`redacts ${n} characters of ${what} in well under a second`, () => {
      const t0 = performance.now();
      both.redactString(text);
      expect(performance.now() - t0).toBeLessThan(1000);
    });
  }
});
