/**
 * The daemon's PIN window, in French or English (Accept-Language): what is asked (authentication or
 * signature, and for a signature what is signed), with which certificate (signature or authentication),
 * by whom, on whose card, with how many tries left and the card's own PIN rule. At one try left it asks
 * for explicit consent on the page itself. The PIN is posted to the daemon by the page's own script,
 * which then says what happened and closes the window; an open event stream tells the daemon the window
 * is still there (closing it cancels).
 */
import type { PinRule } from '../cards/pin.js';
import { t as message } from '../core/i18n.js';
import { own } from '../core/own.js';

export type Lang = 'fr' | 'en';

export interface PinPageView {
  id: string;
  csrf: string;
  /** A per-response nonce for the page's one script (CSP). */
  scriptNonce: string;
  origin: string | null;
  purpose: 'authentication' | 'signature';
  holder: string;
  triesLeft: number;
  rule: PinRule;
  /** What the certificate of the key used is for, by its keyUsage (nonRepudiation: signature). */
  certificate: 'signature' | 'authentication';
  signature?: { hashAlgorithm: string; hashHex: string; document?: string | undefined } | undefined;
  /** A CIBA request relayed by cpsd-idp (daemon/idp-link.ts): the application that asks and the code it shows. */
  ciba?: { application: string; bindingMessage: string | undefined; register?: boolean } | undefined;
}

const TEXT = {
  fr: {
    title: 'Code porteur de votre carte CPS',
    localApp: 'Une application de ce poste',
    asksAuth: 'demande une <strong>authentification</strong> par votre carte CPS.',
    asksSign: 'demande une <strong>signature</strong> avec votre carte CPS.',
    cibaAsks: 'demande à vous <strong>connecter</strong> avec votre carte CPS, depuis un autre appareil, par',
    cibaBinding: 'Vérifiez que l’application affiche le même code :',
    cibaNoBinding: 'L’application n’a donné aucun code à comparer : ne validez que si c’est bien vous qui venez de la lancer.',
    cibaRegister: 'demande d’<strong>enregistrer ce poste</strong> : vos applications sans navigateur (client lourd, tablette) pourront vous y demander une connexion, jusqu’au retrait de la carte.',
    document: 'Document',
    hash: 'Empreinte',
    card: 'Carte de',
    tries: { one: '# essai restant', other: '# essais restants' },
    lastTry: 'Attention : c’est le dernier essai. Un code faux bloquera la carte.',
    consent: 'J’ai compris : utiliser mon dernier essai',
    pin: 'Code porteur',
    digits: (r: PinRule) => (r.minLength === r.maxLength ? `${r.minLength} chiffres` : `${r.minLength} à ${r.maxLength} chiffres`),
    submit: 'Valider',
    cancel: 'Annuler',
    working: 'Vérification par la carte…',
    closing: 'Cette fenêtre va se fermer.',
  },
  en: {
    title: 'Your CPS card PIN',
    localApp: 'An application on this computer',
    asksAuth: 'asks to <strong>authenticate</strong> you with your CPS card.',
    asksSign: 'asks for a <strong>signature</strong> with your CPS card.',
    cibaAsks: 'asks to <strong>sign you in</strong> with your CPS card, from another device, through',
    cibaBinding: 'Check that the application shows the same code:',
    cibaNoBinding: 'The application gave no code to compare: confirm only if you just started it yourself.',
    cibaRegister: 'asks to <strong>register this computer</strong>: your applications without a browser (thick client, tablet) may then ask you to sign in here, until the card is removed.',
    document: 'Document',
    hash: 'Hash',
    card: 'Card of',
    tries: { one: '# try left', other: '# tries left' },
    lastTry: 'Warning: this is the last try. A wrong PIN will block the card.',
    consent: 'I understand: use my last try',
    pin: 'PIN',
    digits: (r: PinRule) => (r.minLength === r.maxLength ? `${r.minLength} digits` : `${r.minLength} to ${r.maxLength} digits`),
    submit: 'Confirm',
    cancel: 'Cancel',
    working: 'The card is checking…',
    closing: 'This window will close.',
  },
} as const;

/** What the page says once the operation ended, by outcome (the protocol's error codes). */
const OUTCOME: Readonly<Record<Lang, Readonly<Record<string, string>>>> = {
  fr: {
    ok: 'Code accepté : opération effectuée.',
    USER_CANCELLED: 'Opération annulée.',
    TIMEOUT: 'Délai dépassé : aucun code n’a été saisi à temps.',
    PIN_INCORRECT: 'Code incorrect.',
    PIN_BLOCKED: 'Carte bloquée : trop de codes faux. Débloquez-la avec votre code de déblocage.',
    PIN_FORMAT: 'Ce code n’a pas le bon format.',
    PIN_LAST_TRY: 'Dernier essai : cochez la case pour l’utiliser.',
    CARD_ABSENT: 'La carte a été retirée.',
    other: 'L’opération a échoué.',
  },
  en: {
    ok: 'PIN accepted: done.',
    USER_CANCELLED: 'Cancelled.',
    TIMEOUT: 'Timed out: no PIN was entered in time.',
    PIN_INCORRECT: 'Wrong PIN.',
    PIN_BLOCKED: 'The card is blocked: too many wrong PINs. Unblock it with your unblocking code.',
    PIN_FORMAT: 'This PIN does not have the right format.',
    PIN_LAST_TRY: 'Last try: tick the box to use it.',
    CARD_ABSENT: 'The card was removed.',
    other: 'The operation failed.',
  },
};

/** French unless the browser prefers English to French. */
export function pickLang(acceptLanguage: string | undefined): Lang {
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .map((part, i) => {
      const [tag = '', ...params] = part.trim().toLowerCase().split(';');
      const q = Number(params.find((p) => p.trim().startsWith('q='))?.split('=')[1] ?? 1);
      return { lang: tag.split('-')[0], q: Number.isFinite(q) ? q : 0, i };
    })
    .filter((x) => x.lang === 'fr' || x.lang === 'en')
    .sort((a, b) => b.q - a.q || a.i - b.i);
  return ranked[0]?.lang === 'en' ? 'en' : 'fr';
}

export function triesText(lang: Lang, n: number): string {
  const form = new Intl.PluralRules(lang).select(n) === 'one' ? 'one' : 'other';
  return TEXT[lang].tries[form].replace('#', String(n));
}

/** The sentence the page shows for an outcome (the tries left after a wrong PIN included). */
export function outcomeText(lang: Lang, code: string, triesLeft?: number): string {
  const base = own(OUTCOME[lang], code) ?? OUTCOME[lang].other ?? '';
  return code === 'PIN_INCORRECT' && triesLeft !== undefined ? `${base} ${triesText(lang, triesLeft)}.` : base;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function pinPage(p: PinPageView, lang: Lang): string {
  const t = TEXT[lang];
  const who = p.origin ? `<strong>${escapeHtml(p.origin)}</strong>` : escapeHtml(t.localApp);
  const sig = p.signature;
  const ciba = p.ciba;
  const asks = ciba?.register
    ? `${who} ${t.cibaRegister}`
    : ciba
    ? `<strong id="application">${escapeHtml(ciba.application)}</strong> ${t.cibaAsks} ${who}.`
    : `${who} ${p.purpose === 'signature' ? t.asksSign : t.asksAuth}`;
  const binding = ciba && !ciba.register
    ? ciba.bindingMessage
      ? `<p id="binding">${t.cibaBinding} <strong id="binding-message">${escapeHtml(ciba.bindingMessage)}</strong></p>`
      : `<p id="binding" class="warn">${t.cibaNoBinding}</p>`
    : '';
  const signed = sig
    ? `<dl id="signed">${sig.document ? `<dt>${t.document}</dt><dd id="document">${escapeHtml(sig.document)}</dd>` : ''}` +
      `<dt>${t.hash} ${escapeHtml(sig.hashAlgorithm)}</dt><dd id="hash"><code>${escapeHtml(sig.hashHex.replace(/(.{8})/g, '$1 ').trim())}</code></dd></dl>`
    : '';
  const last = p.triesLeft === 1;
  const pattern = `[0-9]{${p.rule.minLength},${p.rule.maxLength}}`;
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>cpsd — ${escapeHtml(t.title)}</title>
<style>body{font:16px system-ui;margin:1.5em;max-width:30em}input[name=pin]{font-size:1.4em;width:7em;letter-spacing:.3em}
code{font-size:.85em;word-break:break-all}.warn{color:#a40000;font-weight:600}#result{font-weight:600}</style></head>
<body><h1>${escapeHtml(t.title)}</h1>
<p id="purpose" data-purpose="${p.purpose}"${ciba ? ` data-ciba="${ciba.register ? 'register' : 'request'}"` : ''}>${asks}</p>
${binding}${signed}
<p id="certificate" data-certificate="${p.certificate}">${escapeHtml(message(p.certificate === 'signature' ? 'pinWindow.certificate.signature' : 'pinWindow.certificate.authentication', {}, lang))}</p>
<p>${t.card} <strong>${escapeHtml(p.holder)}</strong> — <span id="tries">${triesText(lang, p.triesLeft)}</span>.</p>
<form id="pin-form" method="post" autocomplete="off">
<input type="hidden" name="csrf" value="${p.csrf}">
${last ? `<p class="warn" id="last-try">${t.lastTry}</p><p><label><input type="checkbox" name="consent" value="1" required> ${t.consent}</label></p>` : ''}
<p><label>${t.pin} (${t.digits(p.rule)}) <input name="pin" type="password" inputmode="numeric" pattern="${pattern}" minlength="${p.rule.minLength}" maxlength="${p.rule.maxLength}" required autofocus></label></p>
<button type="submit">${t.submit}</button> <button type="submit" name="cancel" value="1" formnovalidate>${t.cancel}</button>
</form>
<p id="result" role="status" aria-live="polite"></p>
<script nonce="${p.scriptNonce}">
(() => {
  const base = location.pathname;
  // Held open while the window is: the daemon cancels the entry when it closes.
  const alive = new EventSource(base + '/alive');
  const form = document.getElementById('pin-form');
  const result = document.getElementById('result');
  const finish = (text, done) => {
    result.textContent = text;
    if (!done) return;
    form.hidden = true;
    alive.close();
    setTimeout(() => window.close(), 1500);
  };
  alive.addEventListener('end', (e) => finish(JSON.parse(e.data).message + ' ' + ${JSON.stringify(t.closing)}, true));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = new URLSearchParams(new FormData(form));
    if (e.submitter && e.submitter.name === 'cancel') body.set('cancel', '1');
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    result.textContent = ${JSON.stringify(t.working)};
    try {
      const r = await fetch(base, { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      const answer = await r.json();
      finish(answer.message + (answer.done ? ' ' + ${JSON.stringify(t.closing)} : ''), answer.done);
    } catch {
      finish(${JSON.stringify(OUTCOME[lang].other)}, true);
    } finally {
      for (const b of form.querySelectorAll('button')) b.disabled = false;
    }
  });
})();
</script>
</body></html>`;
}
