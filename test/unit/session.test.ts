/**
 * The card session (cards/session.ts) over the in-process virtual card: order and fairness, bounds,
 * cancellation, timeouts and recovery on the same session, card removal, reset after a failed job.
 * One behaviour per `it`.
 */
import { describe, expect, it } from 'vitest';
import { InProcessBackend, type InProcessCard } from '../../cards/backends.js';
import { CardSessions, type CardLink } from '../../cards/session.js';
import { PcscUnavailableError } from '../../apdu/pcsc/errors.js';
import type { VirtualCpsCard } from '../../sim/cps/card.js';
import { fixtureCard, loadProfile } from '../../sim/cps/fixtures.js';
import { Pin } from '../../cards/pin.js';

const SERIAL = loadProfile('doctor').serial;

/** A virtual card whose APDUs can be held: `hold()` makes the next APDU wait until `release()`. */
function heldCard(): { card: InProcessCard; inner: VirtualCpsCard; hold: () => void; release: () => void; apdus: () => number } {
  const inner = fixtureCard('doctor');
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let count = 0;
  const card: InProcessCard = {
    atr: inner.atr,
    transmit: async (apdu) => {
      count++;
      if (gate) await gate;
      return inner.transmit(apdu);
    },
    reset: () => inner.reset(),
  };
  return {
    card,
    inner,
    hold: () => (gate = new Promise((r) => (open = r))),
    release: () => {
      gate = undefined;
      open?.();
    },
    apdus: () => count,
  };
}

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('card session: order and fairness', () => {
  it('runs the jobs of one reader one at a time, in the order they came', async () => {
    const sessions = new CardSessions(new InProcessBackend(fixtureCard('doctor')));
    const log: string[] = [];
    let running = 0;
    const job = (n: number) => async () => {
      expect(++running).toBe(1);
      log.push(`start ${n}`);
      await tick();
      log.push(`end ${n}`);
      running--;
      return n;
    };
    expect(await Promise.all([1, 2, 3].map((n) => sessions.run(job(n))))).toEqual([1, 2, 3]);
    expect(log).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  });

  it('alternates between owners, so that one origin cannot starve another', async () => {
    const sessions = new CardSessions(new InProcessBackend(fixtureCard('doctor')));
    const order: string[] = [];
    const job = (tag: string) => async () => void order.push(tag);
    const all = [
      ...['a1', 'a2', 'a3'].map((t) => sessions.run(job(t), { owner: 'https://a.example' })),
      ...['b1', 'b2'].map((t) => sessions.run(job(t), { owner: 'https://b.example' })),
    ];
    await Promise.all(all);
    expect(order).toEqual(['a1', 'b1', 'a2', 'b2', 'a3']);
  });

  it('answers BUSY beyond the queue bound, and serves the queued jobs', async () => {
    const sessions = new CardSessions(new InProcessBackend(fixtureCard('doctor')), { maxQueued: 2 });
    const slow = () => tick(20);
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => sessions.run(slow)));
    // The first runs at once; two wait; the fourth finds the queue full.
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
    expect((results[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'BUSY' });
  });

  it('bounds the jobs of one owner apart from the others', async () => {
    const sessions = new CardSessions(new InProcessBackend(fixtureCard('doctor')), { maxQueuedPerOwner: 1 });
    const slow = () => tick(20);
    const results = await Promise.allSettled([
      sessions.run(slow, { owner: 'a' }),
      sessions.run(slow, { owner: 'a' }),
      sessions.run(slow, { owner: 'a' }),
      sessions.run(slow, { owner: 'b' }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  });
});

describe('card session: cancellation', () => {
  it('drops a queued job whose caller went away, before it reaches the card', async () => {
    const sessions = new CardSessions(new InProcessBackend(fixtureCard('doctor')));
    const controller = new AbortController();
    let ran = false;
    const first = sessions.run(() => tick(20));
    const second = sessions.run(async () => void (ran = true), { signal: controller.signal });
    controller.abort();
    await expect(second).rejects.toMatchObject({ code: 'USER_CANCELLED' });
    await first;
    expect(ran).toBe(false);
  });

  it('stops a running job at the next APDU boundary and resets the card', async () => {
    const held = heldCard();
    const sessions = new CardSessions(new InProcessBackend(held.card));
    const controller = new AbortController();
    let sentAtAbort = 0;
    let serial: Promise<string> | undefined;
    const job = sessions.run(
      async (c) => {
        await c.verifyPin(new Pin('1234'));
        sentAtAbort = held.apdus();
        controller.abort();
        serial = c.serial();
        await serial;
      },
      { signal: controller.signal },
    );
    await expect(job).rejects.toMatchObject({ code: 'USER_CANCELLED' });
    await expect(serial).rejects.toMatchObject({ code: 'USER_CANCELLED' });
    expect(held.apdus()).toBe(sentAtAbort); // nothing reached the card after the abort
    await tick();
    expect(held.inner.pinVerified).toBe(false); // reset: the verified PIN did not outlive the job
  });

  it('answers the caller of a cancelled job at once, even while an APDU hangs', async () => {
    const held = heldCard();
    const sessions = new CardSessions(new InProcessBackend(held.card));
    const controller = new AbortController();
    const job = sessions.run((c) => c.serial(), { signal: controller.signal });
    await tick();
    held.hold();
    const blocked = sessions.run((c) => c.serial());
    await tick();
    controller.abort();
    await expect(job).resolves.toBe(SERIAL); // it had finished before the hold
    held.release();
    expect(await blocked).toBe(SERIAL);
  });

  it('fails the running job with CARD_ABSENT when the card is pulled out', async () => {
    const held = heldCard();
    const backend = new InProcessBackend(held.card);
    const sessions = new CardSessions(backend);
    held.hold();
    const job = sessions.run((c) => c.serial());
    await tick();
    backend.remove();
    await expect(job).rejects.toMatchObject({ code: 'CARD_ABSENT' });
    held.release();
  });

  it('ends waiting and running jobs when closed', async () => {
    const held = heldCard();
    const sessions = new CardSessions(new InProcessBackend(held.card));
    held.hold();
    const running = sessions.run((c) => c.serial());
    const waiting = sessions.run((c) => c.serial());
    await tick();
    await sessions.close();
    await expect(running).rejects.toMatchObject({ code: 'USER_CANCELLED' });
    await expect(waiting).rejects.toMatchObject({ code: 'USER_CANCELLED' });
    held.release();
    await expect(sessions.run((c) => c.serial())).rejects.toMatchObject({ code: 'USER_CANCELLED' });
  });
});

describe('card session: timeouts and recovery', () => {
  it('times a job out with CARD_TIMEOUT, then the next job on the same session works', async () => {
    const held = heldCard();
    const sessions = new CardSessions(new InProcessBackend(held.card), { operationTimeoutMs: 50 });
    held.hold();
    const started = Date.now();
    await expect(sessions.run((c) => c.serial())).rejects.toMatchObject({ code: 'CARD_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(1000);
    const next = sessions.run((c) => c.serial());
    await tick(20);
    held.release(); // the hung APDU comes back; the session resets the card and goes on
    expect(await next).toBe(SERIAL);
  });

  it('resets the card after a failed job and leaves it after a good one', async () => {
    const card = fixtureCard('doctor');
    const sessions = new CardSessions(new InProcessBackend(card));
    await sessions.run((c) => c.verifyPin(new Pin('1234')), { after: 'leave' });
    expect(card.pinVerified).toBe(true);
    await expect(sessions.run(async (c) => (await c.verifyPin(new Pin('1234')), Promise.reject(new Error('x'))))).rejects.toThrow('x');
    expect(card.pinVerified).toBe(false);
  });

  it('runs a read-only job again once when another application reset the card', async () => {
    const { CardResetError } = await import('../../apdu/pcsc/errors.js');
    const sessions = new CardSessions(new InProcessBackend(fixtureCard('doctor')));
    let runs = 0;
    const job = async (): Promise<number> => {
      if (++runs === 1) throw new CardResetError('reset by another application');
      return runs;
    };
    expect(await sessions.run(job, { retryOnReset: true })).toBe(2);
    runs = 0;
    await expect(sessions.run(job)).rejects.toBeInstanceOf(CardResetError);
  });
});

describe('card session: readers', () => {
  it('says PCSC_UNAVAILABLE when the service is gone, not READER_NOT_FOUND', async () => {
    const backend = Object.assign(new InProcessBackend(), { readers: () => [], unavailable: () => new PcscUnavailableError('pcscd is not running') });
    await expect(new CardSessions(backend).run(async () => 1)).rejects.toMatchObject({ code: 'PCSC_UNAVAILABLE' });
  });

  it('says READER_NOT_FOUND for an unknown reader and CARD_ABSENT for an empty one', async () => {
    const sessions = new CardSessions(new InProcessBackend());
    await expect(sessions.run(async () => 1, { reader: 'nope' })).rejects.toMatchObject({ code: 'READER_NOT_FOUND' });
    await expect(sessions.run(async () => 1)).rejects.toMatchObject({ code: 'CARD_ABSENT' });
  });

  it('retries an exclusive connection while another application holds the card, within its limit', async () => {
    const { CardBusyError } = await import('../../apdu/pcsc/errors.js');
    const backend = new InProcessBackend(fixtureCard('doctor'));
    const link = backend.link.bind(backend);
    let refusals = 3;
    const busy = Object.assign(backend, {
      link: (): Promise<CardLink> => (refusals-- > 0 ? Promise.reject(new CardBusyError('in use')) : link()),
    });
    expect(await new CardSessions(busy).run((c) => c.serial(), { exclusive: true })).toBe(SERIAL);
    refusals = 1000;
    await expect(new CardSessions(busy, { exclusiveWaitMs: 100 }).run((c) => c.serial(), { exclusive: true })).rejects.toMatchObject({ code: 'CARD_BUSY' });
  });

  it('a shared job that asks to wait while the card is held elsewhere retries too; one that does not fails at once', async () => {
    const { CardBusyError } = await import('../../apdu/pcsc/errors.js');
    const backend = new InProcessBackend(fixtureCard('doctor'));
    const link = backend.link.bind(backend);
    let refusals = 3;
    const busy = Object.assign(backend, {
      link: (): Promise<CardLink> => (refusals-- > 0 ? Promise.reject(new CardBusyError('in use')) : link()),
    });
    const reader = busy.readers()[0]?.name;
    await expect(new CardSessions(busy).run((c) => c.serial(), { reader })).rejects.toMatchObject({ code: 'CARD_BUSY' });
    refusals = 3;
    expect(await new CardSessions(busy).run((c) => c.serial(), { reader, waitWhileHeld: true })).toBe(SERIAL);
  });
});
