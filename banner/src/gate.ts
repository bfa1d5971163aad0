import { settings, granted, partner, type Choices, type Tag } from './settings';
import { update } from './consentmode';
import { lang, t, texts, x } from './i18n';
import { buttons, h } from './dom';
import { shadow } from './ui';

// What runs only after opt-in: the partners' tags from sites.yaml, and elements of
// the page marked with data-category (scripts as type="text/plain", embeds with
// data-src). An element naming a partner that is not enabled never runs.
const SELECTOR = 'script[type="text/plain"][data-category],[data-category][data-src]';

let current: Choices | null = null;
const loaded: Record<string, boolean> = {};
// embeds allowed once on this page, by partner id (or "#" + category without one)
const once: Record<string, boolean> = {};
const placeholders = new Map<Element, Element>();

/** Whether anything optional has run on this page (a withdrawal then reloads). */
export let ran = false;

/** Called on "Always allow" with the category and partner to grant. */
type Always = (category: string, partner?: string) => void;
let always: Always;

/** Runs a partner's tags strictly in the order of sites.yaml: a tag after a script
 * waits until that script has loaded (or failed), as a snippet that uses what the
 * script defines expects (Microsoft's UET, for one). */
const run = (tags: Tag[]) => {
  const tag = tags[0];
  if (!tag) return;
  const s = document.createElement('script');
  const next = () => run(tags.slice(1));
  if (tag.s) {
    s.src = tag.s;
    s.onload = s.onerror = next;
  } else s.text = tag.i || '';
  (document.head || document.documentElement).appendChild(s);
  if (!tag.s) next();
};

const key = (el: HTMLElement) => el.dataset.partner || '#' + el.dataset.category;

const allowed = (el: HTMLElement): boolean => {
  const d = el.dataset;
  const p = d.partner;
  const known = p == null || partner(p) != null;
  return known && (!!current && current.categories[d.category!] === true && (p == null || granted(current, partner(p)!)) ||
    !(el instanceof HTMLScriptElement) && once[key(el)]);
};

const activate = (el: HTMLElement) => {
  ran = true;
  const src = el.dataset.src;
  if (el instanceof HTMLScriptElement) {
    const s = document.createElement('script');
    for (const a of el.attributes) {
      if (a.name != 'type' && a.name != 'data-src') s.setAttribute(a.name, a.value);
    }
    if (src) {
      // keep the page's order among activated scripts
      s.async = false;
      s.src = src;
    } else {
      s.text = el.text;
    }
    el.replaceWith(s);
  } else if (src) {
    const ph = placeholders.get(el);
    if (ph) {
      ph.remove();
      placeholders.delete(el);
    }
    // A fresh element: an iframe that gets a src while the page is still being parsed
    // (on a reload, say) may never navigate.
    const n = el.cloneNode(true) as HTMLElement;
    n.style.display = '';
    n.removeAttribute('data-src');
    n.setAttribute('src', src);
    el.replaceWith(n);
  }
};

// An embed that may not load yet gets, just before it, a placeholder that names the
// partner and offers to allow it; the embed is hidden meanwhile. The placeholder takes
// its place at once, so that the page does not shift; its texts, in the page's
// language, follow once they are in use (see i18n.ts).
const placehold = (el: HTMLElement) => {
  const d = el.dataset;
  const p = partner(d.partner);
  const g = settings.g.map((g) => g.i).indexOf(d.category!);
  const ph = shadow('consent-placeholder', { 'data-partner': d.partner }, (action) => {
    if (action == 'allow-once') {
      once[key(el)] = true;
      scan();
    } else always(p ? p.g : d.category!, d.partner);
  });
  placeholders.set(el, ph);
  el.before(ph);
  el.style.display = 'none';
  texts(false, () => {
    // an embed may name its own provider: a video gated on partner google-ads is
    // YouTube's; an embed of no enabled partner is not available at all
    const name = d.partner ? p && (d.provider || p.n) : g >= 0 && (d.provider || x.g[g][0]);
    ph.lang = lang;
    ph.shadowRoot!.lastChild!.appendChild(h('div', { class: 'x' },
      h('p', null, name ? t.embed.replace(/{partner}/g, name) : t.unavailable),
      name && buttons('allow-once', 'allow-always')));
  });
};

// While the parser is still adding elements, an inline script's text may be cut:
// scripts wait until parsing is done; embeds are complete when parsed, so they get
// their placeholders at once and the page does not shift later.
const scan = () => {
  const loading = document.readyState == 'loading';
  // an embed the page took away takes its placeholder with it
  placeholders.forEach((ph, el) => el.isConnected || (ph.remove(), placeholders.delete(el)));
  document.querySelectorAll<HTMLElement>(SELECTOR).forEach((el) => {
    if (el instanceof HTMLScriptElement) {
      if (!loading && allowed(el)) activate(el);
    } else if (allowed(el)) activate(el);
    else if (!placeholders.has(el)) placehold(el);
  });
};

/** Starts gating the page's elements, now and as they are added; a with what to do on
 * "Always allow". */
export const watch = (a: Always) => {
  always = a;
  document.addEventListener('DOMContentLoaded', scan);
  new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  scan();
};

/** Loads what c grants and was not loaded yet. Nothing is ever injected twice; a
 * Google tag gets the Consent Mode update before it loads. */
export const apply = (c: Choices) => {
  current = c;
  let on = false;
  for (const p of settings.q) {
    if (granted(c, p)) {
      if (p.m) on = true;
      if (!loaded[p.i]) {
        loaded[p.i] = ran = true;
        if (p.m) update(true);
        run(p.j);
      }
    }
  }
  if (!on) update(false);
  scan();
};
