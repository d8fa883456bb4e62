import type { PcscError } from './errors.js';

/** How the card is shared with other applications. cpsd always says which one it wants. */
export type ShareMode = 'shared' | 'exclusive' | 'direct';
/** Transmission protocol: T=0 (byte-oriented, what CPS3 uses), T=1 (block), RAW (direct mode). */
export type Protocol = 'T0' | 'T1' | 'RAW';
/** What happens to the card when a connection ends. */
export type Disposition = 'leave' | 'reset' | 'unpower' | 'eject';

/** SCARD_STATE_* flags (pcsc-lite and WinSCard share them). pcsc-lite keeps an event counter in bits 16-31. */
export const ReaderStateFlags = {
  UNAWARE: 0x0000,
  IGNORE: 0x0001,
  CHANGED: 0x0002,
  UNKNOWN: 0x0004,
  UNAVAILABLE: 0x0008,
  EMPTY: 0x0010,
  PRESENT: 0x0020,
  ATRMATCH: 0x0040,
  EXCLUSIVE: 0x0080,
  INUSE: 0x0100,
  MUTE: 0x0200,
  UNPOWERED: 0x0400,
} as const;

/** What is known of one reader right now. */
export interface ReaderInfo {
  readonly name: string;
  readonly cardPresent: boolean;
  /** The card's ATR; empty when no card, or when the card is mute. */
  readonly atr: Uint8Array;
  /** A card is in the reader but did not answer the reset. */
  readonly mute: boolean;
  /** Another handle holds the card (shared or exclusive). */
  readonly inUse: boolean;
  /** Another handle holds the card exclusively. */
  readonly exclusive: boolean;
}

export type PcscEvent =
  | { readonly type: 'reader-added'; readonly reader: string }
  | { readonly type: 'reader-removed'; readonly reader: string }
  | { readonly type: 'card-inserted'; readonly reader: string; readonly atr: Uint8Array; readonly mute: boolean }
  | { readonly type: 'card-removed'; readonly reader: string }
  /** The PC/SC service went away: every reader is gone and every connection is dead until `service-up`. */
  | { readonly type: 'service-down'; readonly error: PcscError }
  | { readonly type: 'service-up' };

export interface ConnectOptions {
  /** Required on purpose: cpsd never relies on a binding's default share mode. */
  readonly share: ShareMode;
  /** Protocols acceptable, in any order; default T=0 or T=1. Ignored in `direct` mode. */
  readonly protocols?: readonly Protocol[];
}

/** One open handle on a card (or on a reader, in direct mode). */
export interface PcscConnection {
  readonly reader: string;
  /** The protocol negotiated; undefined in direct mode without a card. */
  readonly protocol: Protocol | undefined;
  /** Sends raw APDU bytes, returns the raw response (data and SW1 SW2). */
  transmit(command: Uint8Array, options?: { maxResponseLength?: number }): Promise<Uint8Array>;
  /** SCardControl: a reader-driver request (e.g. CM_IOCTL_GET_FEATURE_REQUEST). */
  control(controlCode: number, data?: Uint8Array, maxResponseLength?: number): Promise<Uint8Array>;
  /** Ends the connection; default disposition `leave` so other middleware keeps its state. Idempotent. */
  disconnect(disposition?: Disposition): Promise<void>;
}

/** The project's PC/SC interface. The daemon and the CLI see only this; tests substitute it. */
export interface PcscBackend {
  /** True while the PC/SC service answers. */
  readonly available: boolean;
  /** Snapshot of the readers known now. */
  readers(): ReaderInfo[];
  /** Listens to reader, card and service events; returns the unsubscribe function. */
  subscribe(listener: (event: PcscEvent) => void): () => void;
  connect(reader: string, options: ConnectOptions): Promise<PcscConnection>;
  close(): Promise<void>;
}

/** Callbacks through which one binding context reports what it sees to the supervisor. */
export interface ContextListener {
  readerAdded(reader: string): void;
  readerRemoved(reader: string): void;
  readerState(reader: string, flags: number, atr: Uint8Array): void;
  /** The context is dead (service stopped, link broken): the supervisor will throw it away. */
  failed(error: PcscError): void;
}

/**
 * One PC/SC context as a binding provides it (the seam between `PcscService` and a native binding:
 * pcsclite.ts, smartcard.ts; binding.ts picks one). Created by a factory, never revived once failed.
 * Every binding error comes out as a typed PcscError (errors.ts), never as a throw from a listener or
 * an unhandled 'error' event; reader states keep pcsc-lite's event counter in bits 16-31.
 */
export interface PcscContext {
  /**
   * One live connection per reader: a second connect to the same reader fails with CardBusyError until
   * the first is disconnected (a connect waits for a disconnect still in flight).
   */
  connect(reader: string, options: ConnectOptions): Promise<PcscConnection>;
  /** Releases every handle and thread of the context. Must not throw or emit. */
  close(): void;
}

/** Creates a context; throws a PcscError (typically PCSC_UNAVAILABLE) when the service is not there. */
export type PcscContextFactory = (listener: ContextListener) => PcscContext;
