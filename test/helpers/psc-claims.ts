/**
 * What PSC's claims should be for the virtual card of fixtures/profiles/doctor.json, written from the
 * profile and from PSC's UserInfo as ANS's code shows it (member names: prosanteconnect/generate-VIHF,
 * src/main/java/fr/ans/psc/model/prosanteconnect/Activity.java and Practice.java; "" for what is not known).
 */

/** Every member of a PSC activity, "" (PSC's UserInfo of test identities). */
export const PSC_EMPTY_ACTIVITY = {
  codeModeExercice: '', codeSecteurDactivite: '', codeSectionPharmacien: '', codeRole: '', codeGenreActivite: '',
  numeroSiretSite: '', numeroSirenSite: '', numeroFinessSite: '', numeroFinessetablissementJuridique: '',
  identifiantTechniqueDeLaStructure: '', raisonSocialeSite: '', enseigneCommercialeSite: '', complementDestinataire: '',
  complementPointGeographique: '', numeroVoie: '', indiceRepetitionVoie: '', codeTypeDeVoie: '', libelleVoie: '',
  mentionDistribution: '', bureauCedex: '', codePostal: '', codeCommune: '', codePays: '', telephone: '', telephone2: '',
  telecopie: '', adresseEMail: '', codeDepartement: '', ancienIdentifiantDeLaStructure: '', autoriteDenregistrement: '',
};

/** The doctor's SubjectRefPro, member by member. */
export const DOCTOR_SUBJECT_REF_PRO = {
  codeCivilite: '',
  exercices: [
    {
      codeProfession: '10',
      codeCategorieProfessionnelle: '',
      codeCiviliteDexercice: '',
      nomDexercice: 'MEDECIN-TEST',
      prenomDexercice: 'JEANNE',
      codeTypeSavoirFaire: 'S',
      codeSavoirFaire: 'SM26',
      activities: [
        { ...PSC_EMPTY_ACTIVITY, codeSecteurDactivite: 'SA01', raisonSocialeSite: 'HOPITAL GENERIQUE TEST', numeroFinessSite: '0B0307377', ancienIdentifiantDeLaStructure: '10B0307377' },
        { ...PSC_EMPTY_ACTIVITY, codeSecteurDactivite: 'SA07', raisonSocialeSite: 'CABINET DR MEDECIN-TEST', ancienIdentifiantDeLaStructure: '499700735741008' },
      ],
    },
  ],
};

