import { origin } from './backend';
import css from './prefs.css';
import { settings, type Choices, type Partner, type Prefs, type TextKey } from './settings';
import { buttons, h, link, type Child } from './dom';
import { lang, t, x } from './i18n';

// The second layer: a script of its own per language, with all the texts of that
// language, loaded only when a visitor opens the preferences (or views a page in
// another language than the first-layer script came with; see i18n.ts). It hands
// itself to the banner with a "consent-prefs" event on the document.

let dialog: HTMLDialogElement | null = null;

const toggle = (kind: string, id: string, label: string, on: boolean, always?: boolean) => {
  const key = kind[0] + '-' + id;
  return h('div', { class: 'r' },
    h('label', { for: key }, label),
    always && h('span', null, t.alwaysOn),
    h('input', { type: 'checkbox', role: 'switch', id: key, ['data-' + kind]: id, checked: on, disabled: always }));
};

const disclosure = (p: Partner, open: boolean) => {
  const d = x.q![settings.q.indexOf(p)];
  const dl = h('dl');
  const row = (k: TextKey, v: Child) => dl.append(h('dt', null, t[k]), h('dd', null, v));
  row('provider', d.o);
  row('purpose', d.u);
  row('dataShared', d.d.map((s) => t[s as TextKey] || s).join(', ') || t.none);
  row('cookies', d.k.map(([n, l]) => n + ' (' + l + ')').concat(p.s || []).join(', ') || t.none);
  row('leavesEEA', d.x ? t.yes + (d.t ? ' (' + d.t + ')' : '') : t.no);
  row('privacy', link(d.y, d.y));
  return h('details', { open }, h('summary', null, t.details), dl);
};

/** The visitor's consent id, to copy and quote, and the link to their records and
 * receipts on consentd's page for visitors; the id only in the fragment, which no
 * browser sends to a server or in a Referer. */
const proof = (id: string) => {
  const input = h('input', { id: 'ci', readonly: true, value: id, size: '36' }) as HTMLInputElement;
  const copy = h('button', { class: 'l' }, t.copy);
  copy.addEventListener('click', () => {
    const done = () => (copy.textContent = t.copied);
    // without the clipboard API (a page on http), the browser's own copy
    const select = () => {
      input.select();
      if (document.execCommand('copy')) done();
    };
    if (navigator.clipboard) navigator.clipboard.writeText(id).then(done, select);
    else select();
  });
  return h('p', { class: 'i' },
    h('label', { for: 'ci' }, t.consentId), ' ',
    input, copy, ' · ',
    h('a', { href: origin + '/v1/visitor/' + settings.s + '?lang=' + lang + '#' + id, target: '_blank', rel: 'noopener noreferrer' }, t.records));
};

const open: Prefs['open'] = (w, c, id, partners, done) => {
  if (dialog) return;
  const from = (w.getRootNode() as ShadowRoot).activeElement || document.activeElement;
  const d = dialog = h('dialog', { 'aria-labelledby': 'ch', 'aria-modal': 'true' }) as HTMLDialogElement;
  d.append(
    // in the shadow root only while the dialog is open
    h('style', null, css),
    h('div', { class: 's' },
      h('div', { class: 'r' }, h('h2', { id: 'ch' }, t.settings), h('button', { class: 'l', 'data-action': 'close' }, t.close)),
      h('p', null, t.controller + ': ' + x.c + ' · ', link(settings.p, t.privacy)),
      id && proof(id),
      ...settings.g.map((g, i) => h('div', { class: 'c' },
        toggle('category', g.i, x.g[i][0], !!g.r || (!!c && c.categories[g.i] === true), g.r),
        h('p', null, x.g[i][1]),
        ...settings.q.filter((p) => p.g == g.i).map((p) => h('div', { class: 'p' },
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
  // Escape closes too (the native cancel): never consent.
  d.addEventListener('close', () => {
    d.remove();
    if (dialog == d) dialog = null;
    done(from);
  });
  w.append(d);
  d.showModal();
};

const picked = (): Choices => {
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

const close = () => !!dialog && (dialog.close(), true);

const prefs: Prefs = { x, open, picked, close };
document.dispatchEvent(new CustomEvent('consent-prefs', { detail: prefs }));
