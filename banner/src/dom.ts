import type { TextKey } from './settings';
import { t } from './i18n';

// Building blocks of the banner's DOM, for both layers. Texts are always inserted as
// text nodes, never parsed as HTML.

export type Child = Node | string | false | null | undefined;

/** Called with the data-action of a clicked button and the button. */
export type Handler = (action: string, button: Element) => void;

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

/** Buttons of equal size, weight and colours: accept and reject look the same. Each
 * one's text is the action in camelCase: "accept-all" → t.acceptAll. */
export const buttons = (...actions: string[]) =>
  h('div', { class: 'k' }, ...actions.map((a) => h('button', { 'data-action': a },
    t[a.replace(/-(.)/g, (_, c: string) => c.toUpperCase()) as TextKey])));

/** A link that opens in a new tab, leaving the page as it is. */
export const link = (href: string, text: string) => h('a', { href, target: '_blank', rel: 'noopener' }, text);
