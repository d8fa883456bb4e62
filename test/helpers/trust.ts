/** Assertions shared by the trust-layer tests. */
import { expect } from 'vitest';
import { TrustError, type ValidationResult } from '../../pkcs/trust-types.js';

/** The TrustError a validation ended with (a sync throw or a rejection both count); fails on acceptance. */
export async function refusal(run: () => Promise<ValidationResult>): Promise<TrustError> {
  let result: ValidationResult | undefined;
  try {
    result = await run();
  } catch (error) {
    expect(error).toBeInstanceOf(TrustError);
    return error as TrustError;
  }
  const path = result.path.map((p) => p.subject.replace(/\n/g, ',')).join(' → ');
  throw new Error(`accepted, path ${path}, revocation ${JSON.stringify(result.revocation)}`);
}
