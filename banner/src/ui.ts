import css from './banner.css';
import { config, type Choices, type Partner, type TextKey } from './config';
import { lang, t, tx } from './i18n';

// The banner's DOM, inside an open shadow root so that the page's CSS and ours do not
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

/** Called with the data-action of a clicked button and whether it is in the dialog. */
export type Handler = (action: string, preferences: boolean) => void;

let wrap: HTMLElement | null = null;
let bar: HTMLElement | null = null;
let dialog: HTMLDialogElement | null = null;
let fab: HTMLElement | null = null;

const mount = (act: Handler): HTMLElement => {
  if (!wrap) {
    const host = document.createElement('consent-banner');
    const root = host.attachShadow({ mode: 'open' });
    wrap = h('div', { class: 'w', lang });
    root.append(h('style', null, css), wrap);
    root.addEventListener('click', (e) => {
      const b = (e.target as Element).closest('[data-action]');
      if (b) act(b.getAttribute('data-action')!, !!b.closest('dialog'));
    });
    // first in the body: reached first by keyboard and screen readers; fixed, so
    // the page does not move
    document.body.prepend(host);
  }
  return wrap;
};

const labels: Record<string, TextKey> = {
  'accept-all': 'acceptAll', 'reject-all': 'rejectAll', customize: 'customize', save: 'save',
};

// Accept and reject (and the rest) are the same button: same size, weight, colours.
const buttons = (...actions: string[]) =>
  h('div', { class: 'k' }, ...actions.map((a) => h('button', { type: 'button', 'data-action': a }, t[labels[a]])));

const link = (href: string, text: string) => h('a', { href, target: '_blank', rel: 'noopener' }, text);

/** Shows the first layer: non-blocking, the page stays usable. */
export const show = (act: Handler) => {
  bar = h('section', { class: 'b', role: 'region', 'aria-label': t.title },
    h('h2', null, t.title),
    h('p', null, t.body),
    h('p', null, link(config.p, t.privacy), ' · ', h('button', { type: 'button', class: 'l', 'data-action': 'partners' }, t.partners)),
    buttons('accept-all', 'reject-all', 'customize'));
  mount(act).append(bar);
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
  row('cookies', p.k.map(([n, l]) => n + ' (' + l + ')').join(', ') || t.none);
  row('leavesEEA', p.x ? t.yes + (p.t ? ' (' + p.t + ')' : '') : t.no);
  row('privacy', link(p.y, p.y));
  return h('details', { open }, h('summary', null, t.details), dl);
};

/** Opens the second layer with c pre-set (all off without c); partners: the partner
 * list was asked for, so its disclosures are shown unfolded. */
export const open = (act: Handler, c: Choices | null, partners: boolean) => {
  if (dialog) return;
  const w = mount(act);
  const back = (w.getRootNode() as ShadowRoot).activeElement || document.activeElement;
  const d = dialog = h('dialog', { 'aria-labelledby': 'ch' }) as HTMLDialogElement;
  d.append(
    h('div', { class: 'r' }, h('h2', { id: 'ch' }, t.settings), h('button', { type: 'button', class: 'l', 'data-action': 'close' }, t.close)),
    h('p', null, t.controller + ': ' + [config.c, config.a, config.e].filter((x) => x).join(', ') + ' · ', link(config.p, t.privacy)),
    ...config.g.map((g) => h('div', { class: 'c' },
      toggle('category', g.i, tx(g.n), !!g.r || (!!c && c.categories[g.i] === true), g.r),
      h('p', null, tx(g.d)),
      ...config.q.filter((p) => p.g == g.i).map((p) => h('div', { class: 'p' },
        toggle('partner', p.i, p.n, !!c && c.partners[p.i] === true),
        disclosure(p, partners))))),
    buttons('reject-all', 'accept-all', 'save'));
  // Escape closes too (the native cancel): never consent
  d.addEventListener('close', () => {
    d.remove();
    if (dialog == d) dialog = null;
    if (back instanceof HTMLElement) back.focus();
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

/** Hides the banner after a decision; the floating button stays if configured. */
export const hide = (act: Handler) => {
  close();
  bar && bar.remove();
  bar = null;
  if (config.b && !fab) {
    mount(act).append(fab = h('button', { type: 'button', class: 'f', 'data-action': 'open' }, t.settings));
  }
};
