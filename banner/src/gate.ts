import { config, granted, partner, type Choices, type Tag } from './config';
import { update } from './consentmode';

// What runs only after opt-in: the partners' tags from sites.yaml, and elements of
// the page marked with data-category (scripts as type="text/plain", embeds with
// data-src). An element naming a partner that is not enabled never runs.
const SELECTOR = 'script[type="text/plain"][data-category],[data-category][data-src]';

let current: Choices | null = null;
const loaded: Record<string, boolean> = {};

/** Whether anything optional has run on this page (a withdrawal then reloads). */
export let ran = false;

const head = () => document.head || document.documentElement;

const inject = (tag: Tag) => {
  const s = document.createElement('script');
  if (tag.s) {
    s.async = true;
    s.src = tag.s;
  } else {
    s.text = tag.i || '';
  }
  head().appendChild(s);
};

const allowed = (el: HTMLElement): boolean => {
  const d = el.dataset;
  const p = d.partner;
  return !!current && current.categories[d.category || ''] === true &&
    (p == null || (partner(p) != null && granted(current, partner(p)!)));
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
    el.removeAttribute('data-src');
    el.setAttribute('src', src);
  }
};

// While the parser is still adding elements, an inline script's text may be cut:
// scan once parsing is done, then on every later change.
const scan = () => {
  if (current && document.readyState != 'loading') {
    document.querySelectorAll<HTMLElement>(SELECTOR).forEach((el) => {
      if (allowed(el)) activate(el);
    });
  }
};

let watching = false;

/** Loads what c grants and was not loaded yet. Nothing is ever injected twice. */
export const apply = (c: Choices) => {
  current = c;
  let on = false;
  for (const p of config.q) {
    if (granted(c, p)) {
      if (p.m) on = true;
      if (!loaded[p.i]) {
        loaded[p.i] = ran = true;
        if (p.m) update(true);
        p.j.forEach(inject);
      }
    }
  }
  if (!on) update(false);
  if (!watching) {
    watching = true;
    document.addEventListener('DOMContentLoaded', scan);
    new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
  }
  scan();
};
