import { src } from './backend';
import { settings, type Lang, type Prefs, type Texts } from './settings';

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
    if (settings.l.indexOf(l) >= 0) return l;
  }
  return settings.l[0];
};

/** The texts in use. */
export let x: Lang = settings.t;

/** The language in use. */
export let lang: string = x.l;

/** The UI texts in use. */
export let t: Texts = x.t;

/** The second layer, once loaded, in the language in use. */
export let prefs: Prefs | undefined;

let loading = Promise.resolve();
// the language in use or on its way, and the one whose second layer is
let asked = lang;
let requested: string | undefined;

/** Calls f once the texts of the language the page asks for are in use, and the
 * second layer if second, or, if they cannot be had within a few seconds, with those
 * in use before. The second layer asked for is the one of this script's
 * configuration, which consentd keeps for a while after a change of sites.yaml for
 * the scripts still in browsers' caches. */
export const texts = (second: boolean, f: () => void) => {
  const l = wanted();
  if (l != asked || second && requested != l) {
    asked = requested = l;
    loading = new Promise((done) => {
      const s = document.createElement('script');
      const take = (e: Event) => {
        const p: Prefs = (e as CustomEvent).detail;
        if (p.x.f == settings.f && p.x.l == l) {
          prefs = p;
          x = p.x;
          lang = l;
          t = x.t;
        }
      };
      const settle = () => {
        clearTimeout(late);
        document.removeEventListener('consent-prefs', take);
        s.remove();
        // tried again next time, if it failed
        asked = lang;
        requested = prefs && prefs.x.l;
        done();
      };
      const late = setTimeout(settle, 5000);
      s.src = src.replace(/\.js(\?.*)?$/, '/' + l + '.js?f=' + settings.f);
      s.onload = s.onerror = settle;
      document.addEventListener('consent-prefs', take);
      (document.head || document.documentElement).appendChild(s);
    });
  }
  loading.then(f);
};
