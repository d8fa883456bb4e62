/**
 * idp/claims.ts: the card's identity and practice situations → Pro Santé Connect's SubjectRefPro,
 * SubjectOrganization and Secteur_Activite. Expected values are written from fixtures/profiles/doctor.json
 * and from PSC's UserInfo as ANS's code shows it (member names of prosanteconnect/generate-VIHF Activity.java
 * and Practice.java; "" for what is not known), never from our own encoder.
 */
import { describe, expect, it } from 'vitest';
import { holderClaims, holderClaimsWithSituations, pscActivity, SCOPE_CLAIMS, subjectRefPro } from '../../idp/claims.js';
import type { PracticeSituation } from '../../pkcs/holder.js';
import type { VerifiedHolder } from '../../pkcs/verify.js';
import { DOCTOR_SUBJECT_REF_PRO } from '../helpers/psc-claims.js';

// fixtures/profiles/doctor.json, as the card's situations (index, companyName, structureId, sector).
const HOSPITAL: PracticeSituation = { index: 1, structureName: 'HOPITAL GENERIQUE TEST', structureId: '10B0307377', structureIdKind: 'FINESS', sector: 'SA01' };
const CABINET: PracticeSituation = { index: 2, structureName: 'CABINET DR MEDECIN-TEST', structureId: '499700735741008', structureIdKind: 'RPPS_CABINET', sector: 'SA07' };
const IDENTITY = { nationalId: '899700012349', surname: 'MEDECIN-TEST', givenName: 'JEANNE', profession: { code: '10', label: 'Médecin' }, specialty: 'SM26' };
const HOLDER: VerifiedHolder = {
  nationalId: '899700012349', idKind: 'RPPS', rpps: '99700012349', surname: 'MEDECIN-TEST', givenName: 'JEANNE',
  profession: { code: null, label: 'Médecin' }, certificateSerial: '01', notBefore: '2025-01-01T00:00:00.000Z', notAfter: '2028-01-01T00:00:00.000Z',
  assurance: 'card+pin', certificate: 'MII', origin: 'https://idp.example',
};

describe('subjectRefPro', () => {
  it('maps the doctor profile: profession 10, specialty SM26 as type S, the hospital by FINESS, the cabinet by its card id', () => {
    expect(subjectRefPro(IDENTITY, [HOSPITAL, CABINET])).toEqual(DOCTOR_SUBJECT_REF_PRO);
  });

  it('orders the activities by situation index, whatever order they come in', () => {
    expect(subjectRefPro(IDENTITY, [CABINET, HOSPITAL])).toEqual(DOCTOR_SUBJECT_REF_PRO);
  });

  it('puts each structure id kind in its PSC member, without the type digit; cabinets and unknown kinds only in ancienIdentifiantDeLaStructure', () => {
    const at = (structureId: string, structureIdKind: PracticeSituation['structureIdKind']) =>
      pscActivity({ index: 1, structureName: 'X', structureId, structureIdKind, sector: 'SA07' });
    const ids = (a: ReturnType<typeof pscActivity>) => ({
      siret: a.numeroSiretSite, siren: a.numeroSirenSite, finess: a.numeroFinessSite, ej: a.numeroFinessetablissementJuridique,
      technical: a.identifiantTechniqueDeLaStructure, old: a.ancienIdentifiantDeLaStructure,
    });
    const none = { siret: '', siren: '', finess: '', ej: '', technical: '' };
    expect(ids(at('312345678900017', 'SIRET'))).toEqual({ ...none, siret: '12345678900017', old: '312345678900017' });
    expect(ids(at('2123456789', 'SIREN'))).toEqual({ ...none, siren: '123456789', old: '2123456789' });
    expect(ids(at('5750000017', 'FINESS_EJ'))).toEqual({ ...none, ej: '750000017', old: '5750000017' });
    expect(ids(at('10B0307377', 'FINESS'))).toEqual({ ...none, finess: '0B0307377', old: '10B0307377' });
    expect(ids(at('0751234567', 'ADELI_CABINET'))).toEqual({ ...none, old: '0751234567' });
    expect(ids(at('499700735741008', 'RPPS_CABINET'))).toEqual({ ...none, old: '499700735741008' });
    expect(ids(at('9XYZ', 'UNKNOWN'))).toEqual({ ...none, old: '9XYZ' });
  });

  it('leaves the specialty out unless it is an SM code, and finds the profession code from its label', () => {
    const ref = subjectRefPro({ ...IDENTITY, profession: { code: null, label: 'Pharmacien' }, specialty: 'G15' }, []);
    expect(ref.exercices[0]).toMatchObject({ codeProfession: '21', codeTypeSavoirFaire: '', codeSavoirFaire: '', activities: [] });
    const none = subjectRefPro({ ...IDENTITY, profession: null, specialty: null }, []);
    expect(none.exercices[0]).toMatchObject({ codeProfession: '', codeTypeSavoirFaire: '', codeSavoirFaire: '' });
  });
});

describe('holderClaimsWithSituations', () => {
  it('adds SubjectRefPro, SubjectOrganization and Secteur_Activite (the first situation\'s) to holderClaims', () => {
    const claims = holderClaimsWithSituations(HOLDER, IDENTITY, [CABINET, HOSPITAL]);
    expect(claims).toEqual({
      ...holderClaims(HOLDER),
      SubjectRefPro: DOCTOR_SUBJECT_REF_PRO,
      SubjectOrganization: 'HOPITAL GENERIQUE TEST',
      Secteur_Activite: 'SA01^1.2.250.1.71.4.2.4',
    });
    expect(claims.SubjectRole).toEqual(['10^1.2.250.1.213.1.1.5.5']);
  });

  it('takes names from the verified certificate, not from the card data', () => {
    const claims = holderClaimsWithSituations(HOLDER, { ...IDENTITY, surname: 'OTHER', givenName: 'NAME' } as typeof IDENTITY, [HOSPITAL]);
    expect(claims.SubjectRefPro.exercices[0]).toMatchObject({ nomDexercice: 'MEDECIN-TEST', prenomDexercice: 'JEANNE' });
  });

  it('without situations: an exercice with no activity, no SubjectOrganization nor Secteur_Activite', () => {
    const claims = holderClaimsWithSituations(HOLDER, IDENTITY, []);
    expect(claims.SubjectRefPro.exercices[0]?.activities).toEqual([]);
    expect(claims).not.toHaveProperty('SubjectOrganization');
    expect(claims).not.toHaveProperty('Secteur_Activite');
  });

  it('refuses card data naming someone else than the verified holder', () => {
    expect(() => holderClaimsWithSituations(HOLDER, { ...IDENTITY, nationalId: '899700056783' }, [HOSPITAL])).toThrow(
      expect.objectContaining({ code: 'CARD_DATA_INVALID' }) as Error,
    );
  });

  it('holderClaims alone stays as it was: no situation claims', () => {
    const claims = holderClaims(HOLDER);
    expect(Object.keys(claims).sort()).toEqual(['SubjectIdKind', 'SubjectNameID', 'SubjectProfession', 'SubjectRPPS', 'SubjectRole', 'family_name', 'given_name', 'preferred_username', 'sub']);
  });

  it('scope_all lists the new claims', () => {
    expect(SCOPE_CLAIMS.scope_all).toEqual(expect.arrayContaining(['SubjectRefPro', 'SubjectOrganization', 'Secteur_Activite']));
  });
});
