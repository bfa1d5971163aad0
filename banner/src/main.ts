import type { ConsentChange } from '../consent';
import { settings, type Choices } from './settings';
import { covers, drop, forget, read, write, type Stored } from './cookie';
import { defaults } from './consentmode';
import { apply, ran, watch } from './gate';
import { texts } from './i18n';
import { gpc, send, type Action, type Surface } from './send';
import type { Handler } from './dom';
import { close, floating, hide, open, picked, show } from './ui';

// Entry point. Order matters: the Consent Mode defaults go first, before any Google
// tag can run; nothing optional loads and nothing is sent before a decision.

// window.consent is declared in ../consent.d.ts, the file the sites' developers use.

defaults();

let stored = read();
let choices: Choices | null = stored && covers(stored) ? { categories: stored.c, partners: stored.p } : null;
let ready = false;

const emit = (name: string) => {
  document.dispatchEvent(new CustomEvent('consent:' + name, { detail: choices }));
};

/** Runs f, which shows something, once there is a body to show it in and the texts
 * of the page's language are in use, all of them if the second layer is to open. */
const whenBody = (f: () => void, second = false) =>
  texts(second, () => {
    if (document.body) f();
    else document.addEventListener('DOMContentLoaded', f);
  });

/** Shows the floating "Cookie settings" button if the site has one: only then does
 * a page with a decision need the texts of its language. */
const settingsButton = () => settings.b && whenBody(() => floating(act));

// A random (version 4) UUID. Not crypto.randomUUID: it exists only on https pages.
const uuid = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (n, i) =>
    (i == 6 ? n & 15 | 64 : i == 8 ? n & 63 | 128 : n) + 256).map((n) => n.toString(16).slice(1)).join('')
    .replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');

/** Sends the decision s holds. It is written with a pending flag first, so that a
 * visitor who leaves before the backend answers has it sent again on a later page
 * view. A 2xx or a 4xx clears the flag; a failure to send (a network error, a 5xx, a
 * 429) is tried again on later page views, the next at once, then after a minute,
 * ten minutes and an hour, then no more. The flag never changes the choices: they
 * are the visitor's either way. */
const post = (s: Stored) =>
  send(s, s.a!, s.w!).then((again) => {
    if (stored != s) return;
    if (again && s.s! < 5) {
      s.b = Math.floor(Date.now() / 1000) + [0, 60, 600, 3600][s.s! - 1];
      s.s!++;
    } else s.s = s.a = s.w = s.b = undefined;
    write(s);
  });

/** The one code path for every decision: accept all, reject all, save, GPC, the
 * API and a placeholder's "Always allow". sel holds the choices of a custom one. */
const decide = (action: Action, surface: Surface, sel?: Choices) => {
  const c: Choices = { categories: {}, partners: {} };
  for (const g of settings.g) {
    c.categories[g.i] = !!g.r || (sel ? sel.categories[g.i] === true : action == 'accept_all');
  }
  // a partner is granted only with its category; in a custom choice, switching a
  // partner on implies nothing else
  for (const p of settings.q) {
    c.partners[p.i] = c.categories[p.g] && (sel ? sel.partners[p.i] === true : action == 'accept_all');
  }
  // taking back anything granted before is a withdrawal: the partners' cookies go, and
  // tags that already run stop with a reload
  const before = choices;
  const revoked = settings.q.filter((p) => before && before.partners[p.i] && !c.partners[p.i]);
  const withdrawn = !!before && (revoked.length > 0 || settings.g.some((g) => before.categories[g.i] && !c.categories[g.i]));
  if (withdrawn && action != 'gpc') action = 'withdraw';

  const now = Math.floor(Date.now() / 1000);
  write(stored = {
    i: stored ? stored.i : uuid(), f: settings.f, h: settings.h, c: c.categories, p: c.partners,
    t: stored ? stored.t : now, u: now, s: 1, a: action, w: surface,
  });
  revoked.forEach((p) => {
    drop(p.k);
    forget(p.s);
  });
  apply(c);
  const sent = post(stored);
  hide();
  settingsButton();
  choices = c;
  emit('change');
  if (withdrawn && ran) sent.then(() => location.reload());
};

/** A custom decision that changes only what x names; the rest stays as it was. */
const change = (surface: Surface, x: ConsentChange) =>
  decide('custom', surface, {
    categories: Object.assign({}, choices && choices.categories, x.categories),
    partners: Object.assign({}, choices && choices.partners, x.partners),
  });

/** Opens the second layer; partners: with the partners' disclosures unfolded. */
const preferences = (partners: boolean) =>
  whenBody(() => open(act, choices, stored ? stored.i : undefined, partners), true);

const act: Handler = (action, button) => {
  const surface: Surface = button.closest('dialog') ? 'preferences' : 'banner';
  if (action == 'accept-all') decide('accept_all', surface);
  else if (action == 'reject-all') decide('reject_all', surface);
  else if (action == 'save') decide('custom', surface, picked());
  else if (action == 'close') close();
  else preferences(action == 'partners');
};

const markReady = () => {
  ready = true;
  emit('ready');
};

window.consent = {
  open: () => preferences(false),
  get: () => choices,
  set: (x) => change('api', x),
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

// a decision the backend could not take on an earlier page view, once its time came
if (stored && stored.s && !(stored.b! > Date.now() / 1000)) post(stored);

if (choices) {
  apply(choices);
  markReady();
  settingsButton();
} else if (gpc) {
  // GPC is a refusal of advertising: recorded as such, no banner needed
  decide('gpc', 'browser');
  markReady();
} else {
  // in a task of its own: the script's first run and the first layer's build each
  // stay short of a long task (50 ms) on a slow phone, and the page stays responsive
  whenBody(() => setTimeout(() => {
    // unless the page decided meanwhile (window.consent.set)
    if (!choices) show(act);
    markReady();
  }));
}

// embeds and scripts of the page, after the stored decision (if any) applied: an
// allowed embed then never shows a placeholder
watch((category, partner) => change('placeholder', { categories: { [category]: true }, partners: partner ? { [partner]: true } : {} }));
