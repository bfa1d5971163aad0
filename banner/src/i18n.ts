import { config, type L10n, type Texts } from './config';

// The page's lang wins, then the browser's languages, then the site default; matched
// on the primary subtag ("de-LU" → "de").
const index = (): number => {
  for (const tag of [document.documentElement.lang].concat(navigator.languages || [])) {
    const i = config.l.indexOf((tag || '').split('-')[0].toLowerCase());
    if (i >= 0) return i;
  }
  return 0;
};

const li = index();

/** The chosen language. */
export const lang: string = config.l[li];

/** The UI texts in the chosen language. */
export const t: Texts = config.t[li];

/** The chosen language's entry of a per-language text. */
export const tx = (text: L10n): string => text[li];
