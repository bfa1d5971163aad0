import { src } from './backend';
import { config, type Lang, type Prefs, type Texts } from './config';

// The first-layer script comes with the texts of the language the server picked from
// the browser's Accept-Language, as far as the first layer needs them. The second
// layer is a script of its own per language, with all its texts, loaded beside the
// first when the visitor opens the preferences, or before anything is shown when
// the page's lang names another of the site's languages. Neither request carries
// anything about the visitor.

/** The site language the page asks for: the page's lang, then the browser's
 * languages, then the default; matched on the primary subtag ("de-LU" → "de"). */
const wanted = (): string => {
  for (const tag of [document.documentElement.lang].concat(navigator.languages || [])) {
    const l = (tag || '').split('-')[0].toLowerCase();
    if (config.l.indexOf(l) >= 0) return l;
  }
  return config.l[0];
};

/** The texts in use. */
export let x: Lang = config.t;

/** The language in use. */
export let lang: string = x.l;

/** The UI texts in use. */
export let t: Texts = x.t;

/** The second layer, once loaded, in the language in use. */
export let prefs: Prefs | undefined;

let loading = Promise.resolve();
let asked = lang; // the language in use or on its way

/** Calls f once the texts of the language the page asks for are in use, and the
 * second layer if second, or, if they cannot be had, with those in use before. A
 * second layer of another configuration (cached from before a change) is not taken. */
export const texts = (second: boolean, f: () => void) => {
  const l = wanted();
  if (l != asked || second && !prefs) {
    asked = l;
    loading = new Promise((done) => {
      const take = (e: Event) => {
        const p: Prefs = (e as CustomEvent).detail;
        if (p.x.f == config.f && p.x.l == l) {
          prefs = p;
          x = p.x;
          lang = l;
          t = x.t;
        }
      };
      const s = document.createElement('script');
      s.src = src.replace(/\.js(\?.*)?$/, '/' + l + '.js');
      s.onload = s.onerror = () => {
        document.removeEventListener('consent-prefs', take);
        s.remove();
        asked = lang; // tried again next time if it failed
        done();
      };
      document.addEventListener('consent-prefs', take);
      (document.head || document.documentElement).appendChild(s);
    });
  }
  loading.then(f);
};
