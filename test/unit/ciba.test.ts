/**
 * CIBA's pure parts (docs/idp.md, section 16): the daemon's `idp` and `pinWindowCommand` settings, the
 * PIN window of a CIBA request or registration, and the challenges the card signs (pkcs/ciba-challenge.ts).
 * End to end: test/e2e/idp-ciba.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, validateConfig } from '../../daemon/config.js';
import { DEFAULT_PIN_RULE } from '../../cards/pin.js';
import { pinPage, type PinPageView } from '../../daemon/pin-page.js';
import { NONCE_MAX_LENGTH, NONCE_MIN_LENGTH } from '../../pkcs/token.js';
import { jwkThumbprint, registrationNonce, requestNonce } from '../../pkcs/ciba-challenge.js';

const VIEW: PinPageView = {
  id: '0'.repeat(32),
  csrf: 'c',
  scriptNonce: 'n',
  origin: 'https://idp.hopital.example',
  purpose: 'authentication',
  certificate: 'authentication',
  holder: 'JEANNE MEDECIN-TEST',
  triesLeft: 3,
  rule: DEFAULT_PIN_RULE,
};

describe('daemon settings for the link to cpsd-idp', () => {
  it('is off by default', () => {
    expect(DEFAULTS.idp).toBeNull();
  });

  it('takes an https origin and normalises it', () => {
    expect(validateConfig({ idp: 'https://idp.hopital.example/' }, 'f').idp).toBe('https://idp.hopital.example');
  });

  it('refuses http:// for another host than localhost', () => {
    expect(() => validateConfig({ idp: 'http://idp.hopital.example' }, 'f')).toThrow(ConfigError);
  });

  it('refuses http://localhost without allowHttpLocalhost, takes it with', () => {
    expect(() => validateConfig({ idp: 'http://localhost:9000' }, 'f')).toThrow(ConfigError);
    expect(validateConfig({ allowHttpLocalhost: true, idp: 'http://localhost:9000' }, 'f').idp).toBe('http://localhost:9000');
  });

  it('refuses a pinWindowCommand that is not a non-empty list of strings', () => {
    expect(() => validateConfig({ pinWindowCommand: 'xdg-open' }, 'f')).toThrow(/pinWindowCommand/);
    expect(() => validateConfig({ pinWindowCommand: [] }, 'f')).toThrow(/pinWindowCommand/);
    expect(validateConfig({ pinWindowCommand: ['chromium', '--app'] }, 'f').pinWindowCommand).toEqual(['chromium', '--app']);
  });
});

describe('the PIN window of a CIBA request', () => {
  it('names the application and shows the binding message, both escaped', () => {
    const html = pinPage({ ...VIEW, ciba: { application: 'DPI <b>', bindingMessage: 'LIT "12"' } }, 'fr');
    expect(html).toContain('<strong id="application">DPI &#60;b&#62;</strong>');
    expect(html).toContain('<strong id="binding-message">LIT &#34;12&#34;</strong>');
    expect(html).toContain('data-ciba="request"');
  });

  it('warns when the application gave no binding message', () => {
    expect(pinPage({ ...VIEW, ciba: { application: 'DPI', bindingMessage: undefined } }, 'en')).toContain('gave no code to compare');
  });

  it('says what a registration is, in English for an English browser', () => {
    const html = pinPage({ ...VIEW, ciba: { application: 'cpsd-idp', bindingMessage: undefined, register: true } }, 'en');
    expect(html).toContain('register this computer');
    expect(html).toContain('data-ciba="register"');
    expect(html).not.toContain('id="binding"');
  });
});

describe('what the card signs for CIBA', () => {
  it('is a valid token nonce (64 hex characters)', () => {
    const nonce = requestNonce('req', 'client', 'LIT 12');
    expect(nonce).toMatch(/^[0-9a-f]{64}$/);
    expect(nonce.length).toBeGreaterThanOrEqual(NONCE_MIN_LENGTH);
    expect(nonce.length).toBeLessThanOrEqual(NONCE_MAX_LENGTH);
  });

  it('changes with the auth_req_id, the client and the binding message', () => {
    const base = requestNonce('req', 'client', 'LIT 12');
    expect(new Set([base, requestNonce('req2', 'client', 'LIT 12'), requestNonce('req', 'client2', 'LIT 12'), requestNonce('req', 'client', 'LIT 13')]).size).toBe(4);
  });

  it('cannot be confused between fields (a separator inside a value changes nothing)', () => {
    expect(requestNonce('a', 'b c', undefined)).not.toBe(requestNonce('a b', 'c', undefined));
  });

  it('is never the same for a registration and a request with the same values', () => {
    expect(registrationNonce('x', 'y')).not.toBe(requestNonce('x', 'y', undefined));
  });

  it('thumbprints the device key on crv, kty, x, y only (RFC 7638), and refuses a non-P-256 key', () => {
    const jwk = { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };
    expect(jwkThumbprint({ ...jwk, kid: 'ignored' } as typeof jwk)).toBe(jwkThumbprint(jwk));
    expect(() => jwkThumbprint({ kty: 'RSA' })).toThrow(TypeError);
  });
});
