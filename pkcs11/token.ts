/**
 * The token a PKCS#11 application sees for one card: every object with every attribute it may read,
 * built once per card insertion (docs/pkcs11.md, "Objects"). The module caches it, so attribute reads
 * and object searches never reach the daemon, let alone the card.
 */
import { createHash } from 'node:crypto';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { CardObjects, PinStatus } from '../cards/card.js';
import type { PinRule } from '../cards/pin.js';
import type { PublicCardData } from '../cards/public-data.js';
import { CertificateFormatError, holderIdentity } from '../pkcs/holder.js';
import { CKA, CKC_X_509, CKF_HW, CKF_SIGN, CKF_TOKEN, CKK_RSA, CKM, CKO, CKP_PUBLIC_CERTIFICATES_TOKEN } from './constants.js';
import { TAG, field, u32, type Field } from './wire.js';

export type KeyUse = 'auth' | 'sign';

type Attribute = { type: number } & ({ bytes: Uint8Array } | { ulong: number } | { bool: boolean });

export interface TokenObject {
  handle: number;
  attributes: Attribute[];
}

export interface TokenKey {
  use: KeyUse;
  /** Signature length, the modulus's. */
  modulusBytes: number;
  /** The signature key asks the PIN for each signature (CKA_ALWAYS_AUTHENTICATE). */
  alwaysAuthenticate: boolean;
  mechanisms: readonly number[];
}

export interface Token {
  label: string;
  model: string;
  serial: string;
  pinRule: PinRule;
  pinPad: boolean;
  triesLeft: number;
  blocked: boolean;
  mechanisms: readonly number[];
  objects: TokenObject[];
  /** Private-key handle → what it signs with. */
  keys: Map<number, TokenKey>;
  /**
   * What the snapshot learned of the card's directories (application path, key references, PIN
   * reference and rule): handed to the card of each login and signature job, which would otherwise
   * read EF.DIR, the ODF, CDF, PrKDF and AODF again (9 APDUs more per signature). Public data only.
   */
  cardObjects: CardObjects;
}

export interface CardView {
  generation: 'CPS3' | 'CPS4';
  data: PublicCardData;
  objects: CardObjects;
  rule: PinRule;
  pinPad: boolean;
  status: PinStatus;
}

/** What a CPS3 does (PKCS#1 v1.5 only: no PSS, so no TLS 1.3 client authentication) and a CPS4 adds. */
const CPS3_MECHANISMS = [CKM.RSA_PKCS, CKM.SHA1_RSA_PKCS, CKM.SHA256_RSA_PKCS] as const;
const CPS4_MECHANISMS = [...CPS3_MECHANISMS, CKM.RSA_PKCS_PSS, CKM.SHA1_RSA_PKCS_PSS, CKM.SHA256_RSA_PKCS_PSS] as const;

/** Handles are fixed per token: the profile, then certificate, public key, private key per key pair. */
const HANDLES = { profile: 1, auth: { cert: 2, pub: 3, priv: 4 }, sign: { cert: 5, pub: 6, priv: 7 } } as const;

const bytes = (type: number, value: Uint8Array | string): Attribute => ({ type, bytes: typeof value === 'string' ? new TextEncoder().encode(value) : value });
const ulong = (type: number, value: number): Attribute => ({ type, ulong: value });
const bool = (type: number, value: boolean): Attribute => ({ type, bool: value });

interface ParsedCertificate {
  der: Uint8Array;
  subject: Uint8Array;
  issuer: Uint8Array;
  serialNumber: Uint8Array;
  modulus: Uint8Array;
  exponent: Uint8Array;
}

function parseCertificate(der: Uint8Array): ParsedCertificate {
  try {
    const cert = pkijs.Certificate.fromBER(new Uint8Array(der));
    const key = cert.subjectPublicKeyInfo.parsedKey;
    if (!(key instanceof pkijs.RSAPublicKey)) throw new CertificateFormatError('the card certificate has no RSA key');
    return {
      der,
      subject: new Uint8Array(cert.subject.toSchema().toBER()),
      issuer: new Uint8Array(cert.issuer.toSchema().toBER()),
      serialNumber: new Uint8Array(cert.serialNumber.toBER()),
      modulus: unsigned(key.modulus),
      exponent: unsigned(key.publicExponent),
    };
  } catch (error) {
    if (error instanceof CertificateFormatError) throw error;
    throw new CertificateFormatError('the card certificate does not parse', { cause: error });
  }
}

/** An INTEGER's magnitude without its sign byte (CKA_MODULUS is a big-endian unsigned number). */
function unsigned(n: asn1js.Integer): Uint8Array {
  const v = n.valueBlock.valueHexView;
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  return v.slice(i);
}

function keyObjects(use: KeyUse, label: string, id: Uint8Array, cert: ParsedCertificate, mechanisms: readonly number[]): { objects: TokenObject[]; key: TokenKey } {
  const h = HANDLES[use];
  const sign = use === 'sign';
  const common = [bytes(CKA.LABEL, label), bytes(CKA.ID, id), bool(CKA.TOKEN, true), bool(CKA.MODIFIABLE, false), bool(CKA.COPYABLE, false), bool(CKA.DESTROYABLE, false)];
  const rsa = [ulong(CKA.KEY_TYPE, CKK_RSA), bytes(CKA.MODULUS, cert.modulus), ulong(CKA.MODULUS_BITS, cert.modulus.length * 8), bytes(CKA.PUBLIC_EXPONENT, cert.exponent), bytes(CKA.SUBJECT, cert.subject), bool(CKA.LOCAL, true), bool(CKA.DERIVE, false)];
  return {
    objects: [
      {
        handle: h.cert,
        attributes: [
          ulong(CKA.CLASS, CKO.CERTIFICATE),
          ...common,
          bool(CKA.PRIVATE, false),
          ulong(CKA.CERTIFICATE_TYPE, CKC_X_509),
          bool(CKA.TRUSTED, false),
          ulong(CKA.CERTIFICATE_CATEGORY, 1), // token user
          bytes(CKA.SUBJECT, cert.subject),
          bytes(CKA.ISSUER, cert.issuer),
          bytes(CKA.SERIAL_NUMBER, cert.serialNumber),
          bytes(CKA.VALUE, cert.der),
        ],
      },
      {
        handle: h.pub,
        attributes: [ulong(CKA.CLASS, CKO.PUBLIC_KEY), ...common, bool(CKA.PRIVATE, false), ...rsa, bool(CKA.VERIFY, true), bool(CKA.ENCRYPT, false), bool(CKA.WRAP, false), bool(CKA.VERIFY_RECOVER, false)],
      },
      {
        handle: h.priv,
        attributes: [
          ulong(CKA.CLASS, CKO.PRIVATE_KEY),
          ...common,
          // Private keys are listed once logged in (NSS pairs certificates with the public key before).
          bool(CKA.PRIVATE, true),
          ...rsa,
          bool(CKA.SIGN, true),
          bool(CKA.DECRYPT, false),
          bool(CKA.UNWRAP, false),
          bool(CKA.SIGN_RECOVER, false),
          bool(CKA.SENSITIVE, true),
          bool(CKA.ALWAYS_SENSITIVE, true),
          bool(CKA.EXTRACTABLE, false),
          bool(CKA.NEVER_EXTRACTABLE, true),
          bool(CKA.ALWAYS_AUTHENTICATE, sign),
        ],
      },
    ],
    key: { use, modulusBytes: cert.modulus.length, alwaysAuthenticate: sign, mechanisms },
  };
}

/** The token of a card, from its public data (both certificates read) and PIN status. */
export function buildToken(view: CardView): Token {
  const { data, objects } = view;
  const cps4 = view.generation === 'CPS4';
  const mechanisms = cps4 ? CPS4_MECHANISMS : CPS3_MECHANISMS;
  const out: TokenObject[] = [{ handle: HANDLES.profile, attributes: [ulong(CKA.CLASS, CKO.PROFILE), bool(CKA.TOKEN, true), bool(CKA.PRIVATE, false), ulong(CKA.PROFILE_ID, CKP_PUBLIC_CERTIFICATES_TOKEN)] }];
  const keys = new Map<number, TokenKey>();
  let holder = data.serial;
  for (const use of ['auth', 'sign'] as const) {
    const der = use === 'auth' ? data.authCertificate : data.signCertificate;
    if (!der) continue;
    const cert = parseCertificate(der);
    if (use === 'auth') {
      const identity = holderIdentity({ certificate: der, serial: data.serial, data: data.data });
      holder = `${identity.givenName} ${identity.surname}`;
    }
    const ref = objects[use].certificate;
    // A non-empty CKA_ID shared by the pair (Java pairs keys and certificates by it); the card's own if it has one.
    const id = ref?.id && ref.id.length > 0 ? ref.id : new Uint8Array(createHash('sha1').update(cert.modulus).digest());
    const label = ref?.label || (use === 'auth' ? 'CPS authentication' : 'CPS signature');
    const pair = keyObjects(use, label, id, cert, mechanisms);
    out.push(...pair.objects);
    keys.set(HANDLES[use].priv, pair.key);
  }
  return {
    label: `${view.generation} ${holder}`,
    model: view.generation,
    serial: data.serial,
    pinRule: view.rule,
    pinPad: view.pinPad,
    triesLeft: view.status.triesLeft,
    blocked: view.status.blocked,
    mechanisms,
    objects: out,
    keys,
    cardObjects: objects,
  };
}

/** CK_TOKEN_INFO.flags: a read-only token whose PIN counter shows in the flags. */
export function tokenFlags(token: Pick<Token, 'pinPad' | 'triesLeft' | 'blocked'>): number {
  let flags = CKF_TOKEN.LOGIN_REQUIRED | CKF_TOKEN.USER_PIN_INITIALIZED | CKF_TOKEN.TOKEN_INITIALIZED | CKF_TOKEN.WRITE_PROTECTED;
  if (token.pinPad) flags |= CKF_TOKEN.PROTECTED_AUTHENTICATION_PATH;
  if (token.blocked || token.triesLeft === 0) flags |= CKF_TOKEN.USER_PIN_LOCKED;
  else if (token.triesLeft === 1) flags |= CKF_TOKEN.USER_PIN_FINAL_TRY | CKF_TOKEN.USER_PIN_COUNT_LOW;
  else if (token.triesLeft === 2) flags |= CKF_TOKEN.USER_PIN_COUNT_LOW;
  return flags;
}

function attributeField(a: Attribute): Field {
  const kind = 'bytes' in a ? 0 : 'ulong' in a ? 1 : 2;
  const value = 'bytes' in a ? a.bytes : 'ulong' in a ? u32(a.ulong) : { u8: a.bool ? 1 : 0 };
  return field(TAG.ATTR, [field(TAG.ATTR_TYPE, u32(a.type)), field(TAG.ATTR_KIND, { u8: kind }), field(TAG.ATTR_VALUE, value)]);
}

/** The TOKEN answer's nested field. */
export function tokenField(token: Token, generation: number): Field {
  const keyBits = Math.max(2048, ...[...token.keys.values()].map((k) => k.modulusBytes * 8));
  return field(TAG.TOKEN, [
    field(TAG.GENERATION, u32(generation)),
    field(TAG.LABEL, { utf8: token.label }),
    field(TAG.MANUFACTURER, { utf8: 'ANS' }),
    field(TAG.MODEL, { utf8: token.model }),
    field(TAG.SERIAL, { utf8: token.serial }),
    field(TAG.TOKEN_FLAGS, u32(tokenFlags(token))),
    field(TAG.PIN_MIN, u32(token.pinRule.minLength)),
    field(TAG.PIN_MAX, u32(token.pinRule.maxLength)),
    ...token.mechanisms.map((m) =>
      field(TAG.MECHANISM, [field(TAG.MECH_TYPE, u32(m)), field(TAG.MECH_MIN, u32(keyBits)), field(TAG.MECH_MAX, u32(keyBits)), field(TAG.MECH_FLAGS, u32(CKF_HW | CKF_SIGN))]),
    ),
    ...token.objects.map((o) => field(TAG.OBJECT, [field(TAG.HANDLE, u32(o.handle)), ...o.attributes.map(attributeField)])),
  ]);
}
