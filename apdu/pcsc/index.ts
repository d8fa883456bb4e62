export * from './errors.js';
export * from './types.js';
export { PcscService, type PcscServiceOptions } from './service.js';
export { pcscliteContextFactory } from './pcsclite.js';
export { smartcardContextFactory } from './smartcard.js';
export {
  DEFAULT_PCSC_BINDING,
  PCSC_BINDINGS,
  PCSC_BINDING_ENV,
  bindingFromEnvironment,
  bindingVersion,
  contextFactoryFor,
  isPcscBindingName,
  type PcscBindingName,
} from './binding.js';
export { PcscTransport, scardCtlCode } from './transport.js';
export { FEATURE, GET_FEATURE_REQUEST, pinVerifyStructure, readerFeatures, verifyOnPinPad, type PinPadVerify } from './pinpad.js';
