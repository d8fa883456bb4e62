import type { PcscBackend, PcscEvent } from '../../apdu/pcsc/types.js';

/** Resolves with the first event matching `match`, or rejects after `timeoutMs`. */
export function nextEvent<T extends PcscEvent['type']>(
  backend: PcscBackend,
  type: T,
  match: (event: Extract<PcscEvent, { type: T }>) => boolean = () => true,
  timeoutMs = 5000,
): Promise<Extract<PcscEvent, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`no ${type} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = backend.subscribe((event) => {
      if (event.type === type && match(event as Extract<PcscEvent, { type: T }>)) {
        clearTimeout(timer);
        unsubscribe();
        resolve(event as Extract<PcscEvent, { type: T }>);
      }
    });
  });
}
