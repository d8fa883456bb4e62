import { CpsdError } from '../core/errors.js';

export type DocumentSignatureErrorCode = 'PDF_INVALID' | 'PDF_ENCRYPTED' | 'DOCUMENT_NOT_SIGNED' | 'SIGNING_STATE_INVALID' | 'SIGNATURE_INVALID';

/** A document, a signing state or a document signature refused (docs/errors.md, "Document signatures"). */
export class DocumentSignatureError extends CpsdError {
  readonly code: DocumentSignatureErrorCode;

  constructor(code: DocumentSignatureErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
