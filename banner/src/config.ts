// The per-site configuration, injected at build time by banner.Build through
// esbuild's Define (__CONFIG__ becomes a JSON object literal). Keys are one letter
// because every byte ships to every page view; this file is their documentation.

/** A text per site language, in the order of Config.l. */
export type L10n = string[];

/** Keys of the UI texts, as in banner/i18n/*.json. */
export type TextKey =
  | 'title' | 'body' | 'privacy' | 'partners' | 'acceptAll' | 'rejectAll'
  | 'customize' | 'save' | 'close' | 'settings' | 'alwaysOn' | 'controller'
  | 'details' | 'provider' | 'purpose' | 'dataShared' | 'ip_address'
  | 'advertising_id' | 'cookies' | 'none' | 'leavesEEA' | 'yes' | 'no'
  | 'embed' | 'unavailable' | 'allowOnce' | 'allowAlways';

/** UI texts of one language (site overrides applied); {controller} already replaced
 * by the build, {partner} is replaced by the banner. */
export type Texts = Record<TextKey, string>;

export interface Category {
  i: string;   // id
  r?: true;    // required (technical): always on
  n: L10n;     // name
  d: L10n;     // description
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
  o: string;               // provider (legal entity)
  g: string;               // category id
  u: L10n;                 // purpose
  d: string[];             // data shared: "ip_address" | "advertising_id" (keys of Texts)
  k: [string, string][];   // cookies: [name ("*" suffix = prefix), lifetime as told]
  s?: string[];            // localStorage/sessionStorage keys ("*" suffix = prefix)
  x?: true;                // data leaves the EEA
  t?: string;              // transfer safeguard
  y: string;               // privacy policy URL
  m?: true;                // Google Consent Mode v2 signals
  j: Tag[];                // tags, loaded in order after opt-in
}

export interface Config {
  s: string;     // site key
  f: string;     // material fingerprint
  h: string;     // coverage fingerprint (every partner of the catalog, enabled or not)
  l: string[];   // languages (primary subtags), first = default
  p: string;     // privacy policy URL
  v: string;     // privacy policy version
  c: string;     // controller name
  a?: string;    // controller address
  e?: string;    // controller e-mail
  t: Texts[];    // UI texts, in the order of l
  k: {
    n: string;   // cookie name
    d?: string;  // cookie domain (registrable domain)
    c: number;   // consent lifetime, days
    r: number;   // refusal lifetime, days
  };
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

declare const __CONFIG__: Config;

export const config: Config = __CONFIG__;

/** The enabled partner with the given id, if any. */
export const partner = (id: string | undefined): Partner | undefined =>
  config.q.filter((p) => p.i == id)[0];

/** Whether c grants partner p: its own switch and its category's. */
export const granted = (c: Choices, p: Partner): boolean =>
  c.partners[p.i] === true && c.categories[p.g] === true;
