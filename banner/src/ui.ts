import css from './banner.css';
import { settings, type Choices, type Prefs } from './settings';
import { buttons, h, link, type Child, type Handler } from './dom';
import { lang, prefs, t } from './i18n';

// The banner's first layer and the host of both layers, inside open shadow roots so
// that the page's CSS and ours do not mix.

// the custom properties of banner.css that settings.m's colours go to, in their order
declare const __THEME__: string[];

/** A host element with an open shadow root that holds our styles, the site's theme
 * and the given content; clicks on [data-action] go to act. */
export const shadow = (tag: string, attrs: Record<string, string | undefined>, act: Handler, ...kids: Child[]) => {
  const host = h(tag, attrs);
  host.lang = lang;
  // on the host: the page's context, so the site's theme wins over our defaults
  (settings.m || []).forEach((c, i) => host.style.setProperty('--' + __THEME__[i], c));
  const root = host.attachShadow({ mode: 'open' });
  root.append(h('style', null, css), h('div', { class: 'w' }, ...kids));
  root.addEventListener('click', (e) => {
    const b = (e.target as Element).closest('[data-action]');
    if (b) act(b.getAttribute('data-action')!, b);
  });
  return host;
};

let root: ShadowRoot | null = null;
let host: Element;
let bar: HTMLElement | null = null;
let fab: HTMLElement | null = null;
// where the focus was before the banner took it, to give it back
let back: Element | null = null;

const focus = (el: Element | null) => {
  if (el instanceof HTMLElement && el.isConnected) el.focus();
};

const mount = (act: Handler): HTMLElement => {
  if (!root) {
    host = shadow('consent-banner', {}, act);
    root = host.shadowRoot!;
    // the first layer does not block the page: an element of the page that gets the
    // focus while the layer covers it moves the layer to the other edge (WCAG 2.4.11)
    document.addEventListener('focusin', (e) => {
      const r = (e.target as Element).getBoundingClientRect();
      const b = bar && bar.getBoundingClientRect();
      if (b && e.target != host && r.bottom > b.top && r.top < b.bottom) bar!.classList.toggle('t');
    });
    // first in the body: reached first by keyboard and screen readers; fixed, so
    // the page does not move
    document.body.prepend(host);
  }
  return root.lastChild as HTMLElement;
};

// While the first layer shows, the page gets room below its content as high as the
// layer, and the browser scrolls a focused element clear of it: nothing of the page
// has to stay under the banner (no cookie wall; WCAG 2.4.11).
const html = document.documentElement.style;
let saved: string[] = [];
let below = 0; // the page's own room below its content
const resized = new ResizeObserver(() => {
  if (bar) {
    const height = Math.ceil(bar.getBoundingClientRect().height);
    html.paddingBottom = below + height + 'px';
    html.scrollPaddingBottom = height + 'px';
  }
});

/** Shows the first layer: a non-blocking region, the page stays usable. It takes the
 * focus only if nothing on the page has it, so it never interrupts typing. */
export const show = (act: Handler) => {
  bar = h('section', { class: 'b', role: 'region', 'aria-label': t.title, tabindex: '-1' },
    h('div', { class: 's' },
      h('h2', null, t.title),
      h('p', null, t.body, ' ', link(settings.p, t.privacy), ' · ', h('button', { class: 'l', 'data-action': 'partners' }, t.partners))),
    buttons('accept-all', 'reject-all', 'customize'));
  saved = [html.paddingBottom, html.scrollPaddingBottom];
  below = parseFloat(getComputedStyle(document.documentElement).paddingBottom);
  mount(act).append(bar);
  resized.observe(bar);
  // at the next frame, which lays the banner out anyway: focusing now would force
  // that work into this task; and only if the page has not taken the focus since
  requestAnimationFrame(() => {
    back = document.activeElement;
    if (bar && (!back || back == document.body)) bar.focus({ preventScroll: true });
  });
};

// the second layer whose dialog is open: the one that opened it, even if the page
// has switched to another language since
let shown: Prefs | undefined;

/** Opens the second layer, a modal dialog, with c pre-set (all off without c) and
 * the visitor's consent id if they have one; partners: the partner list was asked
 * for, so its disclosures are unfolded. It needs the second layer's script (see
 * i18n.ts): without it, it stays closed. When it closes the focus goes back to where
 * it came from, or, if that is gone with the first layer, to where it was before
 * the banner. */
export const open = (act: Handler, c: Choices | null, id: string | undefined, partners: boolean) => {
  if (shown || !prefs) return;
  shown = prefs;
  shown.open(mount(act), c, id, partners, (from) => {
    shown = undefined;
    focus(from && from.isConnected ? from : back);
  });
};

/** Closes the second layer without deciding anything; whether it was open. */
export const close = () => !!shown && shown.close();

/** The switches' state in the open second layer. */
export const picked = (): Choices => shown ? shown.picked() : { categories: {}, partners: {} };

/** Hides the banner after a decision and gives the focus back if the banner had it. */
export const hide = () => {
  const had = root && root.activeElement;
  if (bar) {
    bar.remove();
    resized.disconnect();
    [html.paddingBottom, html.scrollPaddingBottom] = saved;
  }
  bar = null;
  if (!close() && had) focus(back);
};

/** Shows the floating "Cookie settings" button, once. */
export const floating = (act: Handler) => {
  if (!fab) mount(act).append(fab = h('button', { class: 'f', 'data-action': 'open' }, t.settings));
};
