/**
 * Every concrete error class of cpsd as one union, as jose's AnyJOSEError: `switch (error.code)` narrows
 * to the class. Type-only imports: core loads none of the layers above it.
 */
import type { ApduFormatError, AtrError, CardProtocolError } from '../apdu/errors.js';
import type {
  CardAbsentError,
  CardBusyError,
  CardResetError,
  CardUnresponsiveError,
  PcscCancelledError,
  PcscError,
  PcscTimeoutError,
  PcscUnavailableError,
  ProtocolMismatchError,
  ReaderNotFoundError,
  UnsupportedFeatureError,
} from '../apdu/pcsc/errors.js';
import type { CardStatusError } from '../apdu/status.js';
import type { UnsupportedCardError } from '../cards/atr-table.js';
import type { CardTimeoutError, LastPinTryError, ObjectNotFoundError, PinPadTimeoutError, UserCancelledError } from '../cards/card.js';
import type { PinFormatError } from '../cards/pin.js';
import type { QueueFullError, SessionClosedError } from '../cards/session.js';
import type { MidstateError } from '../cards/sha-midstate.js';
import type { CardDataError } from '../cli/commands/identity.js';
import type { PinMismatchError } from '../cli/commands/pin.js';
import type { Pkcs11ModuleNotFoundError } from '../cli/commands/pkcs11.js';
import type { SignCommandError } from '../cli/commands/sign.js';
import type { NoInputError } from '../cli/prompt.js';
import type { ConfigError } from '../daemon/config.js';
import type { ProtocolError } from '../daemon/protocol.js';
import type { Pkcs11Error } from '../pkcs11/ckr.js';
import type { CertificateFormatError } from '../pkcs/holder.js';
import type { LogoutDeliveryError } from '../idp/logout.js';
import type { StoreError, StoreReplicationError } from '../idp/store.js';
import type { UpstreamError } from '../idp/upstream.js';
import type { CibaError } from '../idp/ciba.js';
import type { NonceStoreError } from '../pkcs/nonce-redis.js';
import type { TokenError } from '../pkcs/token.js';
import type { TrustError } from '../pkcs/trust-types.js';
import type { DocumentSignatureError } from '../sign/errors.js';
import type { UnknownProfileError } from '../sim/cps/fixtures.js';
import type { VpcdError } from '../sim/vpcd.js';
import type { CpsdErrorCode } from './errors.js';
import type { TlvError } from './tlv.js';

export type AnyCpsdError =
  | ApduFormatError
  | AtrError
  | CardProtocolError
  | TlvError
  | CardStatusError
  | PcscError
  | PcscUnavailableError
  | ReaderNotFoundError
  | CardAbsentError
  | CardResetError
  | CardUnresponsiveError
  | CardBusyError
  | ProtocolMismatchError
  | UnsupportedFeatureError
  | PcscTimeoutError
  | PcscCancelledError
  | UnsupportedCardError
  | MidstateError
  | PinFormatError
  | LastPinTryError
  | CardTimeoutError
  | ObjectNotFoundError
  | UserCancelledError
  | PinPadTimeoutError
  | QueueFullError
  | SessionClosedError
  | CertificateFormatError
  | TokenError
  | TrustError
  | NonceStoreError
  | StoreError
  | StoreReplicationError
  | UpstreamError
  | LogoutDeliveryError
  | CibaError
  | ConfigError
  | ProtocolError
  | VpcdError
  | UnknownProfileError
  | NoInputError
  | PinMismatchError
  | CardDataError
  | Pkcs11ModuleNotFoundError
  | SignCommandError
  | Pkcs11Error
  | DocumentSignatureError;

/** Compiles only while every code of CpsdErrorCode is carried by some class of AnyCpsdError. */
export type CodesWithoutClass = Exclude<CpsdErrorCode, AnyCpsdError['code']>;
const everyCodeHasAClass: [CodesWithoutClass] extends [never] ? true : CodesWithoutClass = true;
void everyCodeHasAClass;
