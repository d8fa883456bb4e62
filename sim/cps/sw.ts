/** Status words the virtual card answers with, by name (values from ISO 7816-4 and docs/card-facts.md §3.6). */
export const SW = {
  OK: 0x9000,
  END_OF_FILE: 0x6282,
  WRONG_LENGTH: 0x6700,
  LOGICAL_CHANNEL_NOT_SUPPORTED: 0x6881,
  SM_NOT_SUPPORTED: 0x6882,
  LAST_COMMAND_EXPECTED: 0x6883,
  CHAINING_NOT_SUPPORTED: 0x6884,
  INCOMPATIBLE_FILE: 0x6981,
  SECURITY_NOT_SATISFIED: 0x6982,
  AUTH_BLOCKED: 0x6983,
  REF_DATA_NOT_USABLE: 0x6984,
  CONDITIONS_NOT_SATISFIED: 0x6985,
  NO_CURRENT_EF: 0x6986,
  WRONG_DATA: 0x6a80,
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  FILE_NOT_FOUND: 0x6a82,
  WRONG_P1P2: 0x6a86,
  REF_DATA_NOT_FOUND: 0x6a88,
  OFFSET_OUTSIDE_EF: 0x6b00,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  NO_DIAGNOSIS: 0x6f00,
} as const;

/** Thrown inside command handlers to answer a status word with no data. */
export class CardStatus extends Error {
  constructor(readonly sw: number) {
    super(`SW ${sw.toString(16).toUpperCase().padStart(4, '0')}`);
  }
}

export function fail(sw: number): never {
  throw new CardStatus(sw);
}
