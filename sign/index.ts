/**
 * `cpsd/sign`: PAdES and CAdES signatures made with the card's signing key, prepared and finished on an
 * editor's server (only a hash goes to the workstation and the card), and verified on the trust layer.
 * docs/signing.md shows the round trip.
 */
export { preparePdf, finishPdf, finishPdfIncrement, PADES_STATE_FORMAT, type PdfSignOptions, type PdfSigningState, type PreparedPdf, type PdfIncrement } from './pades.js';
export { prepareCades, finishCades, contentDigest, CADES_STATE_FORMAT, type CadesSignOptions, type CadesSigningState, type CadesContent, type PreparedCades } from './cades.js';
export { verifyPdf, verifyCades, type SignatureVerifyOptions, type VerifiedSignature, type VerifiedPdfSignature } from './verify.js';
export { DocumentSignatureError, type DocumentSignatureErrorCode } from './errors.js';
export type { CertificateBytes, SignerOptions, ToSign } from './state.js';
export { TrustError } from '../pkcs/trust-types.js';
