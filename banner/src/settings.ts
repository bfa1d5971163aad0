// The site's settings, injected at build time by banner.Build through
// esbuild's Define (__SETTINGS__ becomes a JSON object literal). Keys are one letter
// because every byte ships to every page view; this file is their documentation.

/** Keys of the UI texts, as in banner/i18n/*.json. */
export type TextKey =
  | 'title' | 'body' | 'privacy' | 'partners' | 'acceptAll' | 'rejectAll'
  | 'customize' | 'save' | 'close' | 'settings' | 'alwaysOn' | 'controller'
  | 'details' | 'provider' | 'purpose' | 'dataShared' | 'ip_address'
  | 'advertising_id' | 'cookies' | 'none' | 'leavesEEA' | 'yes' | 'no'
  | 'embed' | 'unavailable' | 'allowOnce' | 'allowAlways'
  | 'consentId' | 'copy' | 'copied' | 'records';

/** UI texts of one language (site overrides applied); {controller} already replaced
 * by the build, {partner} is replaced by the banner. */
export type Texts = Record<TextKey, string>;

export interface Category {
  i: string;   // id
  r?: true;    // required (technical): always on
}

/** What the banner shows in one language. The first-layer script carries the part
 * that the first layer, the placeholders and the floating button need; the second
 * layer's script carries all of it (see i18n.ts). */
export interface Lang {
  l: string;              // language (primary subtag)
  f?: string;             // second layer: material fingerprint of the settings it belongs to
  t: Texts;               // in the first-layer script, only the keys it needs
  g: string[][];          // per category, in the order of Settings.g: name (and in the second layer, description)
  c?: string;             // second layer: controller's name, address, e-mail
  q?: Disclosure[];       // second layer: per partner, in the order of Settings.q
}

/** What the second layer tells about a partner. */
export interface Disclosure {
  u: string;               // purpose
  o: string;               // provider (legal entity)
  d: string[];             // data shared: "ip_address" | "advertising_id" (keys of Texts)
  k: [string, string][];   // cookies: [name ("*" suffix = prefix), lifetime as told]
  x?: true;                // data leaves the EEA
  t?: string;              // transfer safeguard
  y: string;               // privacy policy URL
}

/** One piece of partner code: a script URL (s) or an inline snippet (i). */
export interface Tag {
  s?: string;
  i?: string;
}

/** An enabled partner (disabled partners are never in the bundle). */
export interface Partner {
  i: string;               // id
  n: string;               // name
  g: string;               // category id
  k: string[];             // cookie names ("*" suffix = prefix)
  s?: string[];            // localStorage/sessionStorage keys ("*" suffix = prefix)
  m?: true;                // Google Consent Mode v2 signals
  j: Tag[];                // tags, loaded in order after opt-in
}

/** Where and how long the banner keeps the visitor's choice. */
export interface Cookie {
  n: string;     // cookie name
  d?: string;    // cookie domain (registrable domain)
  c: number;     // consent lifetime, days
  r: number;     // refusal lifetime, days
}

export interface Settings {
  s: string;     // site key
  f: string;     // material fingerprint
  h: string;     // coverage fingerprint (every partner of the catalog, enabled or not)
  l: string[];   // languages (primary subtags), first = default
  t: Lang;       // the texts this script came with
  p: string;     // privacy policy URL
  v: string;     // privacy policy version
  k: Cookie;
  g: Category[];
  q: Partner[];
  b?: true;      // floating "Cookie settings" button
  m?: string[];  // theme colours, in the order of consent.ThemeNames (site's theme only)
}

/** The visitor's explicit answer per category and partner, as sent to the backend. */
export interface Choices {
  categories: Record<string, boolean>;
  partners: Record<string, boolean>;
}

/** The second layer, with all texts of one language, a script of its own (prefs.ts). */
export interface Prefs {
  x: Lang;
  /** Opens the dialog in w, the banner's shadow content, with c pre-set and the
   * visitor's consent id, if they have one; done gets, when it closes, the element
   * that had the focus before. */
  open(w: HTMLElement, c: Choices | null, id: string | undefined, partners: boolean, done: (from: Element | null) => void): void;
  /** The switches' state in the open dialog. */
  picked(): Choices;
  /** Closes the dialog, deciding nothing; whether one was open. */
  close(): boolean;
}

declare const __SETTINGS__: Settings;

export const settings: Settings = __SETTINGS__;

/** The enabled partner with the given id, if any. */
export const partner = (id: string | undefined): Partner | undefined =>
  settings.q.filter((p) => p.i == id)[0];

/** Whether c grants partner p: its own switch and its category's. */
export const granted = (c: Choices, p: Partner): boolean =>
  c.partners[p.i] === true && c.categories[p.g] === true;
