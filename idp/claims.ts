/**
 * The verified holder (cpsd/verify) → the claims the IdP releases, named as Pro Santé Connect names them
 * (reference/cps-cards.md §8): `SubjectNameID` is the national id (idNat, e.g. "899700012349"),
 * `given_name`/`family_name` the certificate's GN/SN, `SubjectRole` the profession of the certificate
 * ("<TRE_G15 code>^<nomenclature OID>", the form PSC's UserInfo uses: [U] from PSC examples, not from a
 * specification), its code found from the certificate's title in the TRE_G15 table. `preferred_username` is the national id, as PSC does.
 * Situations (`SubjectRefPro`) need the card's practice data, not the certificate: a later slice.
 */
import { PROFESSIONS } from '../pkcs/holder.js';
import type { VerifiedHolder } from '../pkcs/verify.js';

/** PSC's scope for its own claims (`openid scope_all`): the same name, so PSC clients work unchanged. */
export const PSC_SCOPE = 'scope_all';
/** TRE_G15 (professions) nomenclature OID, the second half of a PSC SubjectRole. */
export const TRE_G15_OID = '1.2.250.1.71.1.2.7';
/** The acr of a card + PIN login (PSC's value). */
export const ACR_CARD_PIN = 'eidas1';
export const AMR_CARD_PIN = ['sc', 'pin'] as const;

/** Scope → claims, for oidc-provider's `claims` configuration. */
export const SCOPE_CLAIMS = {
  // amr is released only when configured (oidc-provider): with openid, in every id_token.
  openid: ['sub', 'amr'],
  profile: ['given_name', 'family_name', 'preferred_username'],
  [PSC_SCOPE]: ['SubjectNameID', 'SubjectRole', 'SubjectProfession', 'SubjectIdKind', 'SubjectRPPS'],
} as const;

export interface HolderClaims {
  sub: string;
  given_name: string;
  family_name: string;
  preferred_username: string;
  SubjectNameID: string;
  SubjectRole: string[];
  /** The profession's label (e.g. "Médecin"), or absent when the certificate has none. */
  SubjectProfession?: string;
  SubjectIdKind: string;
  SubjectRPPS?: string;
}

export function holderClaims(holder: VerifiedHolder): HolderClaims {
  // The certificate names the profession (title=Médecin); its TRE_G15 code is the table's.
  const label = holder.profession?.label;
  const code = holder.profession?.code ?? Object.entries(PROFESSIONS).find(([, l]) => l === label)?.[0] ?? null;
  return {
    sub: holder.nationalId,
    given_name: holder.givenName,
    family_name: holder.surname,
    preferred_username: holder.nationalId,
    SubjectNameID: holder.nationalId,
    SubjectRole: code ? [`${code}^${TRE_G15_OID}`] : [],
    ...(holder.profession ? { SubjectProfession: holder.profession.label } : {}),
    SubjectIdKind: holder.idKind,
    ...(holder.rpps ? { SubjectRPPS: holder.rpps } : {}),
  };
}
