/**
 * The contract of the certificate validator (`validateCertificate`, exported by `cpsd/verify`): what a
 * relying party passes, what it gets, and how a refusal is told. The rules are RFC 5280 §6 path
 * validation plus the IGC-Santé profile (docs/integration.md).
 */
import type { X509Certificate as NodeCertificate } from 'node:crypto';
import { CpsdError } from '../core/errors.js';

/** DER bytes, PEM text, or a node:crypto X509Certificate. */
export type CertificateInput = Uint8Array | string | NodeCertificate;

export type RevocationMode = 'ocsp' | 'crl' | 'ocsp-then-crl' | 'off';

/** How the holder's key was protected, as far as the certificate tells. */
export type Assurance = 'card+pin' | 'card';

export type TrustErrorCode =
  | 'CERT_MALFORMED'
  | 'CERT_UNTRUSTED'
  | 'CERT_EXPIRED'
  | 'CERT_NOT_YET_VALID'
  | 'CERT_REVOKED'
  | 'CERT_WRONG_PURPOSE'
  | 'CERT_POLICY'
  | 'CERT_ALGORITHM'
  | 'CRL_INVALID'
  | 'REVOCATION_UNKNOWN';

/**
 * A refusal: a stable code, the certificate it is about (its subject, `leaf`/`intermediate`/`anchor`
 * position) and the rule that failed, e.g. `{ code: 'CERT_UNTRUSTED', rule: 'pathLenConstraint' }`.
 */
export class TrustError extends CpsdError {
  readonly code: TrustErrorCode;
  readonly rule: string;
  /** Subject DN of the certificate the rule failed on (RFC 4514 string), when there is one. */
  readonly certificate: string | undefined;

  constructor(code: TrustErrorCode, rule: string, message: string, certificate?: string, options?: ErrorOptions) {
    super(certificate ? `${message} (${certificate})` : message, options);
    this.code = code;
    this.rule = rule;
    this.certificate = certificate;
  }
}

export interface OcspOptions {
  /** Use this responder instead of the certificate's AIA (a designated, locally configured responder). */
  url?: string;
  /** A responder certificate trusted directly (besides the CA itself and CA-delegated OCSPSigning ones). */
  responderCertificates?: readonly CertificateInput[];
  /** Send a nonce (default true); a function decides per responder URL. */
  nonce?: boolean | ((url: string) => boolean);
  /** Oldest acceptable thisUpdate, in seconds (default 900 + the 15-minute skew). */
  maxAgeSeconds?: number;
  /** Per request (default 5000). */
  timeoutMs?: number;
}

export interface CrlOptions {
  /** Fetch CRLs from the certificates' CRL distribution points over http (default true). */
  fetch?: boolean;
  /** Per download (default 5000). */
  timeoutMs?: number;
}

export interface ValidationOptions {
  /** Roots the relying party trusts (self-signed or not): the path ends at one of them. */
  trustAnchors: readonly CertificateInput[];
  /** CA certificates that may complete the path (the token carries only the leaf). */
  intermediates?: readonly CertificateInput[];
  /** Validation time (default now). */
  now?: Date;
  /** Default 'ocsp-then-crl'; 'off' only when said. */
  revocation?: RevocationMode;
  /** CRLs given by the caller, DER or PEM; unrelated ones are ignored. */
  crls?: readonly (Uint8Array | string)[];
  ocsp?: OcspOptions;
  crl?: CrlOptions;
  /**
   * Certificate policies accepted for the leaf: OIDs, or arcs ending with '.' (default: ANS's IGC-Santé
   * arc `1.2.250.1.213.1.`). The leaf must carry one of them. The contactless technical certificate's
   * policy is refused unless `allowContactless`.
   */
  policies?: readonly string[];
  /** Accept the contactless technical certificate (no PIN): the result says `assurance: 'card'`. */
  allowContactless?: boolean;
  /** Accept SHA-1 signatures (never MD5). Default false. */
  allowSha1?: boolean;
  /** Smallest RSA modulus accepted, in bits. Default 2048. */
  minRsaBits?: number;
  /** What the leaf must be for: 'authentication' (default: clientAuth, digitalSignature) or 'any'. */
  purpose?: 'authentication' | 'any';
  /** Revocation answers kept until their nextUpdate (share one between calls). */
  cache?: RevocationCache;
  /** The HTTP client for OCSP and CRL downloads (default: global fetch). */
  fetch?: typeof fetch;
}

export interface RevocationStatus {
  /** Subject of the certificate checked. */
  certificate: string;
  method: 'ocsp' | 'crl' | 'off';
  /** thisUpdate of the answer used. */
  thisUpdate?: Date;
  nextUpdate?: Date;
  /** Where the answer came from (responder URL, CRL URL, or 'given'). */
  source?: string;
}

export interface ValidatedHolder {
  nationalId: string;
  idKind: string;
  rpps: string | null;
  surname: string;
  givenName: string;
  profession: { code: string | null; label: string } | null;
  certificateSerial: string;
  notBefore: string;
  notAfter: string;
}

export interface ValidationResult {
  /** The validated path, leaf first, trust anchor last. */
  path: NodeCertificate[];
  holder: ValidatedHolder;
  assurance: Assurance;
  /** One entry per certificate checked (every certificate of the path but the anchor). */
  revocation: RevocationStatus[];
}

/** A cache of revocation answers by key; entries expire at the answer's nextUpdate. */
export interface RevocationCache {
  get(key: string): { value: Uint8Array; until: number } | undefined;
  set(key: string, value: Uint8Array, until: number): void;
}
