/**
 * The card's file system: DFs and transparent EFs with IAS-ECC file control parameters (FCP).
 *
 * FCP layout copied from real CPS3 dumps (docs/card-facts.md §2.2), e.g. EF.SN.ICC:
 *   62 25 80 02 00 0C 82 01 01 83 02 D0 03 88 01 E0
 *         A1 12 8C 07 7B FF FF FF FF FF 00 9C 07 7B FF FF FF FF FF 00 8A 01 05
 * A1 holds the contact (8C) and contactless (9C) rules in ISO 7816-4 compact form: an access-mode
 * byte then one security condition byte (SCB) per bit set, from b7 down to b1.
 */
import { encodeTlv, encodeTlvs, type TlvInput } from '../../core/tlv.js';

/** Who may read (or use) an object: always, never, or after the holder's PIN (CHV 1). */
export type AccessRule = 'always' | 'never' | 'pin';

/**
 * IAS-ECC SCB values. 0x00 always, 0xFF never; 0x1N = user authentication in security environment N.
 * We use SE #2 for CHV 1 ([S]; a real CPS3's PIN reset rule 0x13 names SE #3, which references the
 * unblocking code, docs/card-facts.md §2.4).
 */
export const SCB: Readonly<Record<AccessRule, number>> = { always: 0x00, never: 0xff, pin: 0x12 };

export interface AccessRules {
  contact: AccessRule;
  contactless: AccessRule;
}

const NEVER_BOTH: AccessRules = { contact: 'never', contactless: 'never' };

export interface EfOptions {
  fid: number;
  sfi?: number | undefined;
  data: Uint8Array;
  read: AccessRules;
  /** Update/delete rule; our files are never written by the host except CPS_DATA on CPS4. */
  update?: AccessRules | undefined;
  /** Human name for traces and docs (EF.DIR, CPS_INFO_PS...). */
  name: string;
}

export class Ef {
  readonly kind = 'ef';
  readonly fid: number;
  readonly sfi: number | undefined;
  readonly read: AccessRules;
  readonly update: AccessRules;
  readonly name: string;
  data: Uint8Array;
  parent: Df | undefined;

  constructor(options: EfOptions) {
    this.fid = options.fid;
    this.sfi = options.sfi;
    this.data = options.data;
    this.read = options.read;
    this.update = options.update ?? NEVER_BOTH;
    this.name = options.name;
  }

  fcp(): Uint8Array {
    const rules = (mode: keyof AccessRules): Uint8Array =>
      // AM 7B: b7 delete, b6 terminate, b5 activate, b4 deactivate, b2 update, b1 read.
      Uint8Array.of(0x7b, SCB[this.update[mode]], 0xff, 0xff, 0xff, SCB[this.update[mode]], SCB[this.read[mode]]);
    const children: TlvInput[] = [
      { tag: 0x80, value: u16(this.data.length) },
      { tag: 0x82, value: Uint8Array.of(0x01) },
      { tag: 0x83, value: u16(this.fid) },
    ];
    if (this.sfi !== undefined) children.push({ tag: 0x88, value: Uint8Array.of(this.sfi << 3) });
    children.push(
      { tag: 0xa1, children: [{ tag: 0x8c, value: rules('contact') }, { tag: 0x9c, value: rules('contactless') }] },
      { tag: 0x8a, value: Uint8Array.of(0x05) },
    );
    return encodeTlv({ tag: 0x62, children });
  }
}

export interface DfOptions {
  fid: number;
  aid?: Uint8Array | undefined;
  name: string;
}

export class Df {
  readonly kind = 'df';
  readonly fid: number;
  readonly aid: Uint8Array | undefined;
  readonly name: string;
  readonly children: (Ef | Df)[] = [];
  parent: Df | undefined;

  constructor(options: DfOptions) {
    this.fid = options.fid;
    this.aid = options.aid;
    this.name = options.name;
  }

  add<T extends Ef | Df>(node: T): T {
    node.parent = this;
    this.children.push(node);
    return node;
  }

  child(fid: number): Ef | Df | undefined {
    return this.children.find((c) => c.fid === fid);
  }

  bySfi(sfi: number): Ef | undefined {
    return this.children.find((c): c is Ef => c.kind === 'ef' && c.sfi === sfi);
  }

  /** Depth-first search for a DF by its AID (DF name). */
  byAid(aid: Uint8Array): Df | undefined {
    if (this.aid && equal(this.aid, aid)) return this;
    for (const c of this.children) {
      if (c.kind !== 'df') continue;
      const hit = c.byAid(aid);
      if (hit) return hit;
    }
    return undefined;
  }

  fcp(): Uint8Array {
    // DF access modes (AM 7F minus the unused bits, as a real CPS3 MF): creation is never allowed.
    const rules = Uint8Array.of(0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00);
    const children: TlvInput[] = [
      { tag: 0x82, value: Uint8Array.of(0x38) },
      { tag: 0x83, value: u16(this.fid) },
    ];
    if (this.aid) children.push({ tag: 0x84, value: this.aid });
    children.push(
      { tag: 0xa1, children: [{ tag: 0x8c, value: rules }, { tag: 0x9c, value: rules }] },
      { tag: 0x8a, value: Uint8Array.of(0x05) },
    );
    return encodeTlvs([{ tag: 0x62, children }]);
  }

  /** FID path from the MF, e.g. [0x3F00, 0x0001]. */
  path(): number[] {
    return this.parent ? [...this.parent.path(), this.fid] : [this.fid];
  }
}

export function u16(n: number): Uint8Array {
  return Uint8Array.of((n >> 8) & 0xff, n & 0xff);
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
