export { VirtualCpsCard, type CardImage, type CardKey, type SecretCode, type PinFormat, type VirtualCpsCardOptions } from './card.js';
export { personalise, AID, FID, KEY_REF, EF_ATR, type CardMaterial } from './layout.js';
export { PERSONALITIES, type Personality, type PersonalityName } from './personality.js';
export type { CardProfile, CardState, Holder, Situation, CardGeneration, CardType } from './profile.js';
export { fixtureCard, fixturesDir, loadMaterial, loadProfile, profileNames, UnknownProfileError } from './fixtures.js';
