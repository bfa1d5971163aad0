import { config, type Choices } from './config';
import { covers, drop, read, write } from './cookie';
import { defaults } from './consentmode';
import { apply, ran } from './gate';
import { send, type Action, type Surface } from './send';
import { close, hide, open, picked, show } from './ui';

// Entry point. Order matters: the Consent Mode defaults go first, before any Google
// tag can run; nothing optional loads and nothing is sent before a decision.

type Listener = (choices: Choices | null) => void;

declare global {
  interface Window {
    consent: {
      open(): void;
      get(): Choices | null;
      on(event: string, fn: Listener): void;
    };
  }
}

defaults();

let stored = read();
let choices: Choices | null = stored && covers(stored) ? { categories: stored.c, partners: stored.p } : null;
let ready = false;

const emit = (name: string) => {
  document.dispatchEvent(new CustomEvent('consent:' + name, { detail: choices }));
};

const whenBody = (f: () => void) => {
  if (document.body) f();
  else document.addEventListener('DOMContentLoaded', f);
};

// A random (version 4) UUID. Not crypto.randomUUID: it exists only on https pages.
const uuid = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (n, i) =>
    (i == 6 ? n & 15 | 64 : i == 8 ? n & 63 | 128 : n) + 256).map((n) => n.toString(16).slice(1)).join('')
    .replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');

/** The one code path for every decision: accept all, reject all, save, GPC. */
const decide = (action: Action, surface: Surface, sel?: Choices) => {
  const c: Choices = { categories: {}, partners: {} };
  let grants = false;
  for (const g of config.g) {
    c.categories[g.i] = !!g.r || (sel ? sel.categories[g.i] === true : action == 'accept_all');
    if (!g.r && c.categories[g.i]) grants = true;
  }
  // a partner is granted only with its category; in a custom choice, switching a
  // partner on implies nothing else
  for (const p of config.q) {
    if (c.partners[p.i] = c.categories[p.g] === true && (sel ? sel.partners[p.i] === true : action == 'accept_all')) grants = true;
  }
  // taking back anything granted before is a withdrawal: the partners' cookies go, and
  // tags that already run stop with a reload
  const before = choices;
  const revoked = config.q.filter((p) => before && before.partners[p.i] && !c.partners[p.i]);
  const withdrawn = !!before && (revoked.length > 0 || config.g.some((g) => before.categories[g.i] && !c.categories[g.i]));
  if (withdrawn && (action == 'custom' || action == 'reject_all')) action = 'withdraw';

  const now = Math.floor(Date.now() / 1000);
  const id = stored ? stored.i : uuid();
  write(stored = { i: id, f: config.f, h: config.h, c: c.categories, p: c.partners, t: stored ? stored.t : now, u: now }, grants);
  revoked.forEach((p) => drop(p.k.map((k) => k[0])));
  apply(c);
  send(id, action, surface, c);
  whenBody(() => hide(act));
  choices = c;
  emit('change');
  if (withdrawn && ran) location.reload();
};

const act = (action: string, preferences: boolean) => {
  const surface: Surface = preferences ? 'preferences' : 'banner';
  if (action == 'accept-all') decide('accept_all', surface);
  else if (action == 'reject-all') decide('reject_all', surface);
  else if (action == 'save') decide('custom', surface, picked());
  else if (action == 'close') close();
  else open(act, choices, action == 'partners');
};

const markReady = () => {
  ready = true;
  emit('ready');
};

window.consent = {
  open: () => whenBody(() => open(act, choices, false)),
  get: () => choices,
  on: (event, fn) => {
    const name = event.indexOf(':') < 0 ? 'consent:' + event : event;
    if (name == 'consent:ready' && ready) fn(choices);
    else document.addEventListener(name, (e) => fn((e as CustomEvent).detail));
  },
};

// "Cookie settings" links anywhere on the page, also those added later
document.addEventListener('click', (e) => {
  if (e.target instanceof Element && e.target.closest('[data-consent-open]')) {
    e.preventDefault();
    window.consent.open();
  }
});

if (choices) {
  apply(choices);
  markReady();
  whenBody(() => hide(act));
} else if ((navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl === true) {
  // GPC is a refusal of advertising: recorded as such, no banner needed
  decide('gpc', 'browser');
  markReady();
} else {
  whenBody(() => {
    show(act);
    markReady();
  });
}
