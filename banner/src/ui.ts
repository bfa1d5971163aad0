import css from './banner.css';
import { config, type Choices, type Partner, type TextKey } from './config';
import { lang, t, tx } from './i18n';

// The banner's DOM, inside open shadow roots so that the page's CSS and ours do not
// mix. Texts are always inserted as text nodes, never parsed as HTML.

type Child = Node | string | false | null | undefined;

/** Creates an element; true sets an empty attribute, false/undefined none. */
export const h = (tag: string, attrs?: Record<string, string | boolean | undefined> | null, ...kids: Child[]): HTMLElement => {
  const el = document.createElement(tag);
  for (const name in attrs) {
    const v = attrs[name];
    if (v !== false && v != null) el.setAttribute(name, v === true ? '' : v);
  }
  for (const k of kids) if (k) el.append(k);
  return el;
};

/** Called with the data-action of a clicked button and the button. */
export type Handler = (action: string, button: Element) => void;

// the custom properties of banner.css, in the order of consent.ThemeNames
const vars = ['bg', 'fg', 'ac', 'on', 'bd', 'fc'];

/** A host element with an open shadow root that holds our styles, the site's theme
 * and the given content; clicks on [data-action] go to act. */
export const shadow = (tag: string, attrs: Record<string, string | undefined>, act: Handler, ...kids: Child[]) => {
  const host = h(tag, attrs);
  host.lang = lang;
  // on the host: the page's context, so the site's theme wins over our defaults
  (config.m || []).forEach((c, i) => host.style.setProperty('--' + vars[i], c));
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
let dialog: HTMLDialogElement | null = null;
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

/** Buttons of equal size, weight and colours: accept and reject look the same. Each
 * one's text is the action in camelCase: "accept-all" → t.acceptAll. */
export const buttons = (...actions: string[]) =>
  h('div', { class: 'k' }, ...actions.map((a) => h('button', { 'data-action': a },
    t[a.replace(/-(.)/g, (_, c: string) => c.toUpperCase()) as TextKey])));

const link = (href: string, text: string) => h('a', { href, target: '_blank', rel: 'noopener' }, text);

/** Shows the first layer: a non-blocking region, the page stays usable. It takes the
 * focus only if nothing on the page has it, so it never interrupts typing. */
export const show = (act: Handler) => {
  bar = h('section', { class: 'b', role: 'region', 'aria-label': t.title, tabindex: '-1' },
    h('div', { class: 's' },
      h('h2', null, t.title),
      h('p', null, t.body),
      h('p', null, link(config.p, t.privacy), ' · ', h('button', { class: 'l', 'data-action': 'partners' }, t.partners))),
    buttons('accept-all', 'reject-all', 'customize'));
  mount(act).append(bar);
  back = document.activeElement;
  if (!back || back == document.body) bar.focus({ preventScroll: true });
};

const toggle = (kind: string, id: string, label: string, on: boolean, always?: boolean) => {
  const key = kind[0] + '-' + id;
  return h('div', { class: 'r' },
    h('label', { for: key }, label),
    always && h('span', null, t.alwaysOn),
    h('input', { type: 'checkbox', role: 'switch', id: key, ['data-' + kind]: id, checked: on, disabled: always }));
};

const disclosure = (p: Partner, open: boolean) => {
  const dl = h('dl');
  const row = (k: TextKey, v: Child) => dl.append(h('dt', null, t[k]), h('dd', null, v));
  row('provider', p.o);
  row('purpose', tx(p.u));
  row('dataShared', p.d.map((d) => t[d as TextKey] || d).join(', ') || t.none);
  row('cookies', p.k.map(([n, l]) => n + ' (' + l + ')').concat(p.s || []).join(', ') || t.none);
  row('leavesEEA', p.x ? t.yes + (p.t ? ' (' + p.t + ')' : '') : t.no);
  row('privacy', link(p.y, p.y));
  return h('details', { open }, h('summary', null, t.details), dl);
};

/** Opens the second layer, a modal dialog, with c pre-set (all off without c);
 * partners: the partner list was asked for, so its disclosures are unfolded. */
export const open = (act: Handler, c: Choices | null, partners: boolean) => {
  if (dialog) return;
  const w = mount(act);
  const from = root!.activeElement || document.activeElement;
  const d = dialog = h('dialog', { 'aria-labelledby': 'ch', 'aria-modal': 'true' }) as HTMLDialogElement;
  d.append(
    h('div', { class: 's' },
      h('div', { class: 'r' }, h('h2', { id: 'ch' }, t.settings), h('button', { class: 'l', 'data-action': 'close' }, t.close)),
      h('p', null, t.controller + ': ' + [config.c, config.a, config.e].filter((x) => x).join(', ') + ' · ', link(config.p, t.privacy)),
      ...config.g.map((g) => h('div', { class: 'c' },
        toggle('category', g.i, tx(g.n), !!g.r || (!!c && c.categories[g.i] === true), g.r),
        h('p', null, tx(g.d)),
        ...config.q.filter((p) => p.g == g.i).map((p) => h('div', { class: 'p' },
          toggle('partner', p.i, p.n, !!c && c.partners[p.i] === true),
          disclosure(p, partners)))))),
    buttons('accept-all', 'reject-all', 'save'));
  // A partner counts only with its purpose: switching one on switches its purpose
  // on, switching a purpose off switches its partners off, in view before saving.
  d.addEventListener('change', (e) => {
    const i = e.target as HTMLInputElement;
    const group = i.closest('.c')!;
    if (i.dataset.partner && i.checked) (group.querySelector('[data-category]') as HTMLInputElement).checked = true;
    if (i.dataset.category && !i.checked) group.querySelectorAll<HTMLInputElement>('[data-partner]').forEach((p) => (p.checked = false));
  });
  // Escape closes too (the native cancel): never consent. The focus goes back to
  // where it came from, or, if that is gone with the first layer, to where it was
  // before the banner.
  d.addEventListener('close', () => {
    d.remove();
    if (dialog == d) dialog = null;
    focus(from && from.isConnected ? from : back);
  });
  w.append(d);
  d.showModal();
};

/** Closes the second layer without deciding anything. */
export const close = () => {
  dialog && dialog.close();
};

/** The toggles' state in the open dialog. */
export const picked = (): Choices => {
  const c: Choices = { categories: {}, partners: {} };
  if (dialog) {
    dialog.querySelectorAll('input').forEach((i) => {
      const d = i.dataset;
      if (d.category) c.categories[d.category] = i.checked;
      if (d.partner) c.partners[d.partner] = i.checked;
    });
  }
  return c;
};

/** Hides the banner after a decision and gives the focus back if the banner had it;
 * the floating button stays if configured. */
export const hide = (act: Handler) => {
  const had = root && root.activeElement;
  bar && bar.remove();
  bar = null;
  if (dialog) close();
  else if (had) focus(back);
  if (config.b && !fab) {
    mount(act).append(fab = h('button', { class: 'f', 'data-action': 'open' }, t.settings));
  }
};
