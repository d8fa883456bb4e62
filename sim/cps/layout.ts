/**
 * Personalisation: builds the card image (files, PKCS#15 directory, PIN objects, keys) for a profile.
 * FIDs and contents marked [V] come from real-card dumps (docs/card-facts.md §2); the PKCS#15 file map of
 * the application DFs is not public and is our choice ([S], docs/virtual-card.md).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { fromHex } from '../../core/bytes.js';
import { encodeTlv } from '../../core/tlv.js';
import type { CardImage, CardKey, SecretCode } from './card.js';
import * as data from './data-objects.js';
import { bits, bool, cat, ctx, ctxPrim, int, nul, octets, seq, utf8 } from './der.js';
import { Df, Ef, type AccessRules } from './fs.js';
import type { CardProfile } from './profile.js';

export interface CardMaterial {
  authCert: Uint8Array;
  authKey: KeyObject;
  signCert: Uint8Array;
  signKey: KeyObject;
  techCert: Uint8Array;
  techKey: KeyObject;
}

export const AID = {
  /** IAS-ECC root application, the MF's DF name (EF.ATR tag 4F) [V]. */
  ias: fromHex('80 25 00 00 01 FF 01 00'),
  /** PKCS#15 application, contact ("CPx IAS") [V]. */
  contact: fromHex('E8 28 BD 08 0F 80 25 00 00 01 FF 00 10'),
  /** PKCS#15 application, contactless ("CPx IAS CL") [V]. */
  contactless: fromHex('E8 28 BD 08 0F 80 25 00 00 01 FF 00 20'),
} as const;

/** EF.ATR of a real CPS3 (OSC issue 2223), leading category indicator 80 included [V]. */
export const EF_ATR = fromHex(
  '80 43 01 B8 46 04 04 B0 EC C1 47 03 94 01 80 4F 08 80 25 00 00 01 FF 01 00 ' +
    'E0 10 02 02 01 04 02 02 01 04 02 02 01 00 02 02 01 00 78 08 06 06 2B 81 22 F8 78 02 82 02 90 00',
);

/** File identifiers inside the application DFs [S] except where noted. */
export const FID = {
  odf: 0x5031,
  tokenInfo: 0x5032,
  prkdf: 0x5001,
  cdf: 0x5002,
  aodf: 0x5003,
  dodf: 0x5004,
  authCert: 0x3001,
  signCert: 0x3002,
  techCert: 0x3003,
  /** Readable in contact mode only: Cryptolib's contact/contactless probe [V]. */
  probe: 0x7001,
  idCard: 0xd001,
  namePs: 0xd002,
  langPs: 0xd004,
  infoPs: 0xd005,
  cpsData: 0xd006,
  sitFact: 0xd110,
  /** CPS_ACTIVITY_01..16_PS: D120..D12F [V]. */
  activity: 0xd120,
} as const;

/** Key references: 0x81 signature, 0x82 authentication [V]; 0x83 contactless technical key [S]. */
export const KEY_REF = { sign: 0x81, auth: 0x82, tech: 0x83 } as const;

const PUBLIC: AccessRules = { contact: 'always', contactless: 'always' };
const CONTACT_ONLY: AccessRules = { contact: 'always', contactless: 'never' };
const PIN_CONTACT: AccessRules = { contact: 'pin', contactless: 'never' };

export function personalise(profile: CardProfile, material: CardMaterial): CardImage {
  const mf = new Df({ fid: 0x3f00, aid: AID.ias, name: 'MF' });
  const ef = (fid: number, name: string, bytes: Uint8Array, read: AccessRules, sfi?: number): Ef =>
    new Ef({ fid, name, data: bytes, read, sfi });

  mf.add(ef(0x2f00, 'EF.DIR', efDir(), PUBLIC, 0x1e));
  mf.add(ef(0x2f01, 'EF.ATR', EF_ATR, PUBLIC, 0x1d));
  mf.add(ef(0xd003, 'EF.SN.ICC', cat([fromHex('5A 0A 80 25 00 00 01'), fromHex(profile.serial)]), PUBLIC, 0x1c));
  const actua = profile.state?.actua;
  if (actua) mf.add(ef(0xd010, 'EF_ACTUA', data.actua(actua.start, actua.end), PUBLIC));

  // Contact application.
  const app = mf.add(new Df({ fid: 0x0001, aid: AID.contact, name: 'PKCS15 contact' }));
  const appPath = [0x3f00, 0x0001];
  const dataObjects: DataObjectSpec[] = [
    { label: 'CPS_DATA', fid: FID.cpsData, bytes: new Uint8Array(0), pin: false },
    { label: 'CPS_ID_CARD', fid: FID.idCard, bytes: data.idCard(profile), pin: false },
    { label: 'CPS_NAME_PS', fid: FID.namePs, bytes: data.namePs(profile), pin: false },
    { label: 'CPS_LANG_PS', fid: FID.langPs, bytes: data.langPs(), pin: false },
    { label: 'CPS_INFO_PS', fid: FID.infoPs, bytes: data.infoPs(profile), pin: false },
  ];
  for (const s of profile.situations) {
    dataObjects.push({
      label: `CPS_ACTIVITY_${String(s.index).padStart(2, '0')}_PS`,
      fid: FID.activity + s.index - 1,
      bytes: data.activity(s),
      pin: true,
    });
  }
  dataObjects.push({ label: 'CPS_SIT_FACT', fid: FID.sitFact, bytes: data.sitFact(profile), pin: true });

  const authModulus = modulusBytes(material.authKey);
  const signModulus = modulusBytes(material.signKey);
  const appFiles: [number, string, Uint8Array, AccessRules][] = [
    [FID.odf, 'ODF', odf(appPath, true), CONTACT_ONLY],
    [FID.tokenInfo, 'TokenInfo', tokenInfo(profile, 'CPS'), CONTACT_ONLY],
    [
      FID.prkdf,
      'PrKDF',
      cat([
        prkdfEntry('CPS_PRIV_SIG', objectId(AID.contact, 0x01), KEY_REF.sign, [9], signModulus * 8, appPath),
        prkdfEntry('CPS_PRIV_AUT', objectId(AID.contact, 0x02), KEY_REF.auth, [1, 2], authModulus * 8, appPath),
      ]),
      CONTACT_ONLY,
    ],
    [
      FID.cdf,
      'CDF',
      cat([
        cdfEntry('CPS_SIG_CERT', objectId(AID.contact, 0x01), [...appPath, FID.signCert]),
        cdfEntry('CPS_AUT_CERT', objectId(AID.contact, 0x02), [...appPath, FID.authCert]),
      ]),
      CONTACT_ONLY,
    ],
    [FID.aodf, 'AODF', aodfEntry(profile), CONTACT_ONLY],
    [FID.dodf, 'DODF', cat(dataObjects.map((d) => dodfEntry(d, appPath))), CONTACT_ONLY],
    [FID.authCert, 'CPS_AUT_CERT', material.authCert, CONTACT_ONLY],
    [FID.signCert, 'CPS_SIG_CERT', material.signCert, CONTACT_ONLY],
    [FID.probe, 'EF.7001', Uint8Array.of(0x00), CONTACT_ONLY],
  ];
  for (const [fid, name, bytes, read] of appFiles) app.add(ef(fid, name, bytes, read));
  for (const d of dataObjects) app.add(ef(d.fid, d.label, d.bytes, d.pin ? PIN_CONTACT : CONTACT_ONLY));

  // Contactless application: the technical authentication key, usable without PIN [V], no signature.
  const cl = mf.add(new Df({ fid: 0x0002, aid: AID.contactless, name: 'PKCS15 contactless' }));
  const clPath = [0x3f00, 0x0002];
  const techModulus = modulusBytes(material.techKey);
  const clFiles: [number, string, Uint8Array][] = [
    [FID.odf, 'ODF', odf(clPath, false)],
    [FID.tokenInfo, 'TokenInfo', tokenInfo(profile, 'CPS CL')],
    [
      FID.prkdf,
      'PrKDF',
      prkdfEntry('CPS_PRIV_TECH_AUT', objectId(AID.contactless, 0x03), KEY_REF.tech, [2], techModulus * 8, clPath, false),
    ],
    [FID.cdf, 'CDF', cdfEntry('CPS_TECH_AUT_CERT', objectId(AID.contactless, 0x03), [...clPath, FID.techCert])],
    [FID.techCert, 'CPS_TECH_AUT_CERT', material.techCert],
    [FID.idCard, 'CPS_ID_CARD', data.idCard(profile)],
    [FID.namePs, 'CPS_NAME_PS', data.namePs(profile)],
  ];
  for (const [fid, name, bytes] of clFiles) cl.add(ef(fid, name, bytes, PUBLIC));

  const keys: CardKey[] = [
    // CPS4 ChipDoc names the keys 0x10 (signature) and 0x20 (authentication) [V card-cps4.c, internal.h].
    { ref: KEY_REF.sign, df: app, key: material.signKey, modulusBytes: signModulus, uses: ['cds'], rule: PIN_CONTACT, aliases: [0x90] },
    {
      ref: KEY_REF.auth,
      df: app,
      key: material.authKey,
      modulusBytes: authModulus,
      uses: ['int-auth', 'decipher'],
      rule: PIN_CONTACT,
      aliases: [0xa0],
    },
    { ref: KEY_REF.tech, df: cl, key: material.techKey, modulusBytes: techModulus, uses: ['int-auth'], rule: PUBLIC },
  ];
  const state = profile.state ?? {};
  const pin: SecretCode = {
    ref: 0x01,
    value: profile.pin,
    triesMax: 3,
    triesLeft: state.pinTriesLeft ?? 3,
    minLength: 4,
    maxLength: 4,
  };
  const puk: SecretCode = {
    ref: 0x02,
    value: profile.puk,
    triesMax: 10,
    triesLeft: state.pukTriesLeft ?? 10,
    usesLeft: state.pukUsesLeft ?? 100,
    minLength: 8,
    maxLength: 8,
  };
  return { mf, pin, puk, keys };
}

interface DataObjectSpec {
  label: string;
  fid: number;
  bytes: Uint8Array;
  pin: boolean;
}

function modulusBytes(key: KeyObject): number {
  const bitsLength = createPublicKey(key).asymmetricKeyDetails?.modulusLength;
  if (!bitsLength) throw new TypeError('card keys must be RSA');
  return bitsLength / 8;
}

function pathBytes(fids: readonly number[]): Uint8Array {
  return Uint8Array.from(fids.flatMap((f) => [f >> 8, f & 0xff]));
}

/** PKCS#15 Path ::= SEQUENCE { path OCTET STRING } */
const path = (fids: readonly number[]): Uint8Array => seq(octets(pathBytes(fids)));

/**
 * EF.DIR: one application template (61) per PKCS#15 application: 4F AID, 50 label, 51 path.
 * The contactless application comes first: OpenSC 0.23's sc_enum_apps swaps the first two known
 * applications, and OpenSC binds the contact application of a real card (OSC issue 2267), so the real
 * file must list them in this order [inferred].
 */
function efDir(): Uint8Array {
  const app = (aid: Uint8Array, label: string, df: number): Uint8Array =>
    encodeTlv({
      tag: 0x61,
      children: [
        { tag: 0x4f, value: aid },
        { tag: 0x50, value: new TextEncoder().encode(label) },
        { tag: 0x51, value: pathBytes([0x3f00, df]) },
      ],
    });
  return cat([app(AID.contactless, 'CPx IAS CL', 0x0002), app(AID.contact, 'CPx IAS', 0x0001)]);
}

/** ODF: privateKeys [0], certificates [4], dataObjects [7], authObjects [8]. */
function odf(app: readonly number[], contact: boolean): Uint8Array {
  const parts = [ctx(0, path([...app, FID.prkdf])), ctx(4, path([...app, FID.cdf]))];
  if (contact) parts.push(ctx(7, path([...app, FID.dodf])), ctx(8, path([...app, FID.aodf])));
  return cat(parts);
}

function tokenInfo(profile: CardProfile, label: string): Uint8Array {
  return seq(
    int(0), // version v1
    octets(new TextEncoder().encode(`8025000001${profile.serial.toUpperCase()}`)),
    utf8('ANS'), // manufacturerID
    ctxPrim(0, new TextEncoder().encode(`${label} ${profile.holder.lastName} ${profile.holder.firstName}`)),
    bits([]), // tokenflags: none (not read-only: CPS_DATA is writable on CPS4)
    ctx(2, ...SUPPORTED_ALGORITHMS.map(([ref, mechanism, op, algRef]) => seq(int(ref), int(mechanism), nul(), bits([op]), int(algRef)))),
  );
}

/**
 * TokenInfo supportedAlgorithms: [reference, PKCS#11 mechanism, operation bit, card algorithm
 * reference of §3.5]. OpenSC's CPx hot patch of the PrKDF links keys to these entries by mechanism and
 * operation, then puts algRef in MSE SET; without them it cannot sign [S: the real list is not public].
 */
const SUPPORTED_ALGORITHMS: readonly (readonly [number, number, number, number])[] = [
  [1, 0x0001, 1, 0x02], // CKM_RSA_PKCS, compute-signature: INTERNAL AUTHENTICATE (AT)
  [2, 0x0001, 5, 0x1a], // CKM_RSA_PKCS, decipher (CT)
  [3, 0x0006, 1, 0x12], // CKM_SHA1_RSA_PKCS, compute-signature (DST)
  [4, 0x0040, 1, 0x42], // CKM_SHA256_RSA_PKCS, compute-signature (DST)
  [5, 0x0220, 6, 0x10], // CKM_SHA_1, hash (HT)
  [6, 0x0250, 6, 0x40], // CKM_SHA256, hash (HT)
];

/** PrivateRSAKey entry: usage bits are PKCS#15 KeyUsageFlags (1 decrypt, 2 sign, 9 nonRepudiation). */
/** Object IDs of a real CPS3: the application AID followed by a one-byte index (OSC issue 2267) [V]. */
function objectId(aid: Uint8Array, index: number): Uint8Array {
  return cat([aid, Uint8Array.of(index)]);
}

function prkdfEntry(
  label: string,
  id: Uint8Array,
  keyRef: number,
  usage: readonly number[],
  modulusBits: number,
  app: readonly number[],
  needsPin = true,
): Uint8Array {
  const common = needsPin
    ? seq(utf8(label), bits([0]), octets(Uint8Array.of(0x01)))
    : seq(utf8(label), bits([]));
  return seq(
    common,
    seq(octets(id), bits(usage), bool(true), bits([0, 2, 3, 4]), int(keyRef)),
    ctx(1, seq(path(app), int(modulusBits))),
  );
}

function cdfEntry(label: string, id: Uint8Array, fids: readonly number[]): Uint8Array {
  return seq(seq(utf8(label)), seq(octets(id)), ctx(1, seq(path(fids))));
}

/** The holder's PIN: ascii-numeric, 4..4 digits, global reference 1, initialised, local=false. */
function aodfEntry(profile: CardProfile): Uint8Array {
  void profile;
  return seq(
    seq(utf8('PIN'), bits([0])),
    seq(octets(Uint8Array.of(0x01))),
    ctx(
      1,
      seq(
        bits([0, 4]), // case-sensitive, initialized
        encodeTlv({ tag: 0x0a, value: Uint8Array.of(1) }), // ascii-numeric
        int(4), // minLength
        int(4), // storedLength
        int(4), // maxLength
        ctxPrim(0, Uint8Array.of(0x01)), // pinReference: global CHV 1, no path (it lives in the MF)
      ),
    ),
  );
}

function dodfEntry(d: DataObjectSpec, app: readonly number[]): Uint8Array {
  const common = d.pin ? seq(utf8(d.label), bits([0]), octets(Uint8Array.of(0x01))) : seq(utf8(d.label));
  return seq(common, seq(utf8('CPS')), ctx(1, path([...app, d.fid])));
}
