/** Human output in French or English, from LC_ALL / LC_MESSAGES / LANG (JSON output never changes). */
export type Lang = 'fr' | 'en';

export function lang(env: NodeJS.ProcessEnv = process.env): Lang {
  const value = env.LC_ALL || env.LC_MESSAGES || env.LANG || '';
  return value.toLowerCase().startsWith('fr') ? 'fr' : 'en';
}

const MESSAGES = {
  reader: { en: 'Reader', fr: 'Lecteur' },
  card: { en: 'Card', fr: 'Carte' },
  serial: { en: 'Serial', fr: 'Numéro de série' },
  sameCard: { en: 'Same card also in', fr: 'Même carte aussi dans' },
  contactless: { en: 'contactless', fr: 'sans contact' },
  contact: { en: 'contact', fr: 'contact' },
  pin: { en: 'PIN', fr: 'Code porteur' },
  triesLeft: { en: 'tries left', fr: 'essais restants' },
  blocked: { en: 'BLOCKED', fr: 'BLOQUÉ' },
  verified: { en: 'verified', fr: 'vérifié' },
  holder: { en: 'Holder', fr: 'Titulaire' },
  nationalId: { en: 'National id', fr: 'Identifiant national' },
  profession: { en: 'Profession', fr: 'Profession' },
  specialty: { en: 'Specialty', fr: 'Spécialité' },
  validUntil: { en: 'Valid until', fr: "Valide jusqu'au" },
  situation: { en: 'Practice situation', fr: "Situation d'exercice" },
  certificate: { en: 'Certificate', fr: 'Certificat' },
  authentication: { en: 'authentication', fr: 'authentification' },
  signature: { en: 'signature', fr: 'signature' },
  enterPin: { en: 'PIN: ', fr: 'Code porteur : ' },
  enterPinOnReader: { en: 'Type your PIN on the reader.\n', fr: 'Tapez votre code porteur sur le lecteur.\n' },
  enterNewPin: { en: 'New PIN: ', fr: 'Nouveau code porteur : ' },
  confirmPin: { en: 'New PIN again: ', fr: 'Nouveau code porteur (confirmation) : ' },
  enterPuk: { en: 'Unblocking code: ', fr: 'Code de déblocage : ' },
  pinOk: { en: 'PIN verified.', fr: 'Code porteur vérifié.' },
  pinChanged: { en: 'PIN changed.', fr: 'Code porteur modifié.' },
  pinUnblocked: { en: 'PIN unblocked and changed.', fr: 'Code porteur débloqué et modifié.' },
  mismatch: { en: 'the two new PINs differ', fr: 'les deux nouveaux codes diffèrent' },
  ok: { en: 'ok', fr: 'ok' },
  fail: { en: 'FAILED', fr: 'ÉCHEC' },
  warn: { en: 'warning', fr: 'attention' },
  skip: { en: 'skipped', fr: 'non vérifié' },
} as const;

export type MessageKey = keyof typeof MESSAGES;

export function t(key: MessageKey, l: Lang = lang()): string {
  return MESSAGES[key][l];
}
