/**
 * The verified holder (cpsd/verify) → the claims the IdP releases, named as Pro Santé Connect names them
 * (reference/cps-cards.md §8): `SubjectNameID` is the national id (idNat, e.g. "899700012349"),
 * `given_name`/`family_name` the certificate's GN/SN, `SubjectRole` the profession of the certificate
 * ("<TRE_G15 code>^<nomenclature OID>", the form PSC's UserInfo uses: [U] from PSC examples, not from a
 * specification), its code found from the certificate's title in the TRE_G15 table. `preferred_username` is the national id, as PSC does.
 *
 * With the card's practice situations (`auth.authenticate` with `situations: true`, docs/protocol.md):
 * `SubjectRefPro`, `SubjectOrganization` and `Secteur_Activite`, in PSC's shapes. Sources [V-3rd], ANS's own
 * code holding PSC UserInfo answers of test identities (no PSC specification of the claim was found):
 *   - https://github.com/prosanteconnect/generate-VIHF/blob/main/src/main/java/fr/ans/psc/model/prosanteconnect/Practice.java
 *     and Activity.java (every field name of an exercice and of an activity);
 *   - https://github.com/prosanteconnect/generate-VIHF/blob/main/src/test/java/fr/ans/psc/VihfBuilderTest.java
 *     (a doctor DOC0036624 with `codeTypeSavoirFaire` "S", `codeSavoirFaire` "SM26", a cabinet whose card-style
 *     id 499700366240007 is `ancienIdentifiantDeLaStructure`, and a hospital whose 10B0172805 gives
 *     `numeroFinessSite` "0B0172805"; `SubjectOrganization` and `Secteur_Activite` ("SA07^1.2.250.1.71.4.2.4")
 *     are those of the first activity);
 *   - https://github.com/erickriegel/esignsante-fse-psc/blob/main/src/test/java/fr/ans/api/sign/esignsante/psc/api/utils/HelperTest.java
 *     (the same shape; PSC writes "" for what it does not know, never null or an absent member).
 * So: every member PSC sends is present, "" where the card does not carry it (civility, category, mode of
 * practice, role, addresses, technical ids: the card has none of them). Nothing is guessed from patterns
 * (e.g. PSC's `identifiantTechniqueDeLaStructure` "F"+FINESS stays ""), only what the card holds is mapped.
 * These values come from the workstation, not from the card's signature (docs/idp.md).
 */
import { CpsdError } from '../core/errors.js';
import { PROFESSIONS, type HolderIdentity, type PracticeSituation } from '../pkcs/holder.js';
import type { VerifiedHolder } from '../pkcs/verify.js';

/** PSC's scope for its own claims (`openid scope_all`): the same name, so PSC clients work unchanged. */
export const PSC_SCOPE = 'scope_all';
/** TRE_G15 (professions) nomenclature OID (docs/card-facts.md). */
export const TRE_G15_OID = '1.2.250.1.71.1.2.7';
/**
 * The OID PSC's UserInfo puts after the profession code in `SubjectRole` ("10^1.2.250.1.213.1.1.5.5"), in
 * every PSC answer published by ANS's own projects (prosanteconnect/generate-VIHF VihfBuilderTest.java,
 * ansforge esignsante-psc HelperTest.java) [U: examples, not a specification]. Ours is the same, so that
 * an application matching on PSC's string works unchanged.
 */
export const PSC_ROLE_OID = '1.2.250.1.213.1.1.5.5';
/** Secteur d'activité nomenclature OID (the second half of PSC's `Secteur_Activite`, docs/card-facts.md §5). */
export const SECTOR_OID = '1.2.250.1.71.4.2.4';
/** The acr of a card + PIN login (PSC's value). */
export const ACR_CARD_PIN = 'eidas1';
export const AMR_CARD_PIN = ['sc', 'pin'] as const;
/**
 * The acr of a contactless login (the card's technical key, no PIN: one factor), only when IT enables it
 * and the application asks for it in acr_values: eIDAS's own URI for level "low", below PSC's eidas1.
 */
export const ACR_CONTACTLESS = 'http://eidas.europa.eu/LoA/low';
export const AMR_CONTACTLESS = ['sc'] as const;

/** Scope → claims, for oidc-provider's `claims` configuration. */
export const SCOPE_CLAIMS = {
  // acr, amr and auth_time are released only when configured (oidc-provider): with openid, in every
  // id_token, whether or not the application sent acr_values or max_age.
  openid: ['sub', 'acr', 'amr', 'auth_time'],
  profile: ['given_name', 'family_name', 'preferred_username'],
  [PSC_SCOPE]: ['SubjectNameID', 'SubjectRole', 'SubjectProfession', 'SubjectIdKind', 'SubjectRPPS', 'SubjectRefPro', 'SubjectOrganization', 'Secteur_Activite'],
} as const;

/**
 * Claims given by UserInfo only, never in the id_token: `SubjectRefPro` (about 2 KB per practice
 * situation once signed) would make the id_token, and every logout URL carrying it as id_token_hint,
 * several kilobytes. PSC's applications read it from UserInfo (ANS's own code builds its VIHF from the
 * UserInfo answer).
 */
export const USERINFO_ONLY_CLAIMS = ['SubjectRefPro'] as const;

/** The claims only a login with the practice situations fills (holderClaimsWithSituations), all in `scope_all`. */
export const SITUATION_CLAIMS = ['SubjectRefPro', 'SubjectOrganization', 'Secteur_Activite'] as const;

/** One activity of a PSC exercice: one practice situation of the card. */
export interface PscActivity {
  codeModeExercice: string;
  codeSecteurDactivite: string;
  codeSectionPharmacien: string;
  codeRole: string;
  codeGenreActivite: string;
  numeroSiretSite: string;
  numeroSirenSite: string;
  numeroFinessSite: string;
  numeroFinessetablissementJuridique: string;
  identifiantTechniqueDeLaStructure: string;
  raisonSocialeSite: string;
  enseigneCommercialeSite: string;
  complementDestinataire: string;
  complementPointGeographique: string;
  numeroVoie: string;
  indiceRepetitionVoie: string;
  codeTypeDeVoie: string;
  libelleVoie: string;
  mentionDistribution: string;
  bureauCedex: string;
  codePostal: string;
  codeCommune: string;
  codePays: string;
  telephone: string;
  telephone2: string;
  telecopie: string;
  adresseEMail: string;
  codeDepartement: string;
  ancienIdentifiantDeLaStructure: string;
  autoriteDenregistrement: string;
}

/** One PSC exercice: the profession of the card, its activities. */
export interface PscExercice {
  codeProfession: string;
  codeCategorieProfessionnelle: string;
  codeCiviliteDexercice: string;
  nomDexercice: string;
  prenomDexercice: string;
  codeTypeSavoirFaire: string;
  codeSavoirFaire: string;
  activities: PscActivity[];
}

export interface SubjectRefPro {
  codeCivilite: string;
  exercices: PscExercice[];
}

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

/** A login with the practice situations (holderClaimsWithSituations). */
export interface HolderClaimsWithSituations extends HolderClaims {
  SubjectRefPro: SubjectRefPro;
  /** The first situation's raison sociale, as PSC gives its first activity's; absent without situations. */
  SubjectOrganization?: string;
  /** The first situation's sector, e.g. "SA07^1.2.250.1.71.4.2.4"; absent without situations. */
  Secteur_Activite?: string;
}

/** The card data does not belong to the verified holder. */
export class CardDataMismatchError extends CpsdError {
  readonly code = 'CARD_DATA_INVALID';
}

/** TRE_G15 code of a profession: the card's, or the table's for its label. */
function professionCode(profession: { code: string | null; label: string } | null | undefined): string | null {
  const label = profession?.label;
  return profession?.code ?? Object.entries(PROFESSIONS).find(([, l]) => l === label)?.[0] ?? null;
}

export function holderClaims(holder: VerifiedHolder): HolderClaims {
  // The certificate names the profession (title=Médecin); its TRE_G15 code is the table's.
  const code = professionCode(holder.profession);
  return {
    sub: holder.nationalId,
    given_name: holder.givenName,
    family_name: holder.surname,
    preferred_username: holder.nationalId,
    SubjectNameID: holder.nationalId,
    SubjectRole: code ? [`${code}^${PSC_ROLE_OID}`] : [],
    ...(holder.profession ? { SubjectProfession: holder.profession.label } : {}),
    SubjectIdKind: holder.idKind,
    ...(holder.rpps ? { SubjectRPPS: holder.rpps } : {}),
  };
}

/** The members of a PSC activity the card never carries: "" as PSC writes what it does not know. */
const EMPTY_ACTIVITY: PscActivity = {
  codeModeExercice: '',
  codeSecteurDactivite: '',
  codeSectionPharmacien: '',
  codeRole: '',
  codeGenreActivite: '',
  numeroSiretSite: '',
  numeroSirenSite: '',
  numeroFinessSite: '',
  numeroFinessetablissementJuridique: '',
  identifiantTechniqueDeLaStructure: '',
  raisonSocialeSite: '',
  enseigneCommercialeSite: '',
  complementDestinataire: '',
  complementPointGeographique: '',
  numeroVoie: '',
  indiceRepetitionVoie: '',
  codeTypeDeVoie: '',
  libelleVoie: '',
  mentionDistribution: '',
  bureauCedex: '',
  codePostal: '',
  codeCommune: '',
  codePays: '',
  telephone: '',
  telephone2: '',
  telecopie: '',
  adresseEMail: '',
  codeDepartement: '',
  ancienIdentifiantDeLaStructure: '',
  autoriteDenregistrement: '',
};

/** The PSC member that holds a card structure id of this TRE_G07 kind, without its type digit. */
const STRUCTURE_MEMBER: Partial<Record<PracticeSituation['structureIdKind'], keyof PscActivity>> = {
  FINESS: 'numeroFinessSite',
  FINESS_EJ: 'numeroFinessetablissementJuridique',
  SIRET: 'numeroSiretSite',
  SIREN: 'numeroSirenSite',
  // ADELI and RPPS cabinets: PSC has no member for their number; it is in ancienIdentifiantDeLaStructure.
};

/** One card situation → one PSC activity. */
export function pscActivity(situation: PracticeSituation): PscActivity {
  const member = STRUCTURE_MEMBER[situation.structureIdKind];
  return {
    ...EMPTY_ACTIVITY,
    codeSecteurDactivite: situation.sector,
    raisonSocialeSite: situation.structureName,
    // PSC's "old structure id" is the card's form: type digit + identifier (VihfBuilderTest: 10B0172805, 499700366240007).
    ancienIdentifiantDeLaStructure: situation.structureId,
    ...(member && situation.structureId.length > 1 ? { [member]: situation.structureId.slice(1) } : {}),
  };
}

/**
 * PSC's `SubjectRefPro` from the card identity and its practice situations: one exercice (the card's
 * profession), one activity per situation in index order. The specialty goes to `codeSavoirFaire` with
 * `codeTypeSavoirFaire` "S" (spécialité ordinale) only for an `SMnn` code, the pairing PSC's examples show;
 * any other code is left out rather than typed by guess.
 */
export function subjectRefPro(
  identity: Pick<HolderIdentity, 'surname' | 'givenName' | 'profession' | 'specialty'>,
  situations: readonly PracticeSituation[],
): SubjectRefPro {
  const specialty = identity.specialty && /^SM\d{2}$/.test(identity.specialty) ? identity.specialty : null;
  return {
    codeCivilite: '',
    exercices: [
      {
        codeProfession: professionCode(identity.profession) ?? '',
        codeCategorieProfessionnelle: '',
        codeCiviliteDexercice: '',
        nomDexercice: identity.surname,
        prenomDexercice: identity.givenName,
        codeTypeSavoirFaire: specialty ? 'S' : '',
        codeSavoirFaire: specialty ?? '',
        activities: [...situations].sort((a, b) => a.index - b.index).map(pscActivity),
      },
    ],
  };
}

/**
 * `holderClaims` plus `SubjectRefPro`, `SubjectOrganization` and `Secteur_Activite`, for a login whose
 * daemon answer carried the card identity and situations. The identity must name the verified holder
 * (same national id), else CardDataMismatchError; names and profession are the verified certificate's,
 * only the specialty and the situations come from the card data (unsigned: read by the workstation).
 */
export function holderClaimsWithSituations(
  holder: VerifiedHolder,
  identity: Pick<HolderIdentity, 'nationalId' | 'profession' | 'specialty'>,
  situations: readonly PracticeSituation[],
): HolderClaimsWithSituations {
  if (identity.nationalId !== holder.nationalId) {
    throw new CardDataMismatchError(`the card data names ${identity.nationalId}, the verified certificate ${holder.nationalId}`);
  }
  const claims = holderClaims(holder);
  const ref = subjectRefPro(
    { surname: holder.surname, givenName: holder.givenName, profession: holder.profession ?? identity.profession, specialty: identity.specialty },
    situations,
  );
  const first = ref.exercices[0]?.activities[0];
  return {
    ...claims,
    SubjectRefPro: ref,
    ...(first ? { SubjectOrganization: first.raisonSocialeSite } : {}),
    ...(first?.codeSecteurDactivite ? { Secteur_Activite: `${first.codeSecteurDactivite}^${SECTOR_OID}` } : {}),
  };
}
