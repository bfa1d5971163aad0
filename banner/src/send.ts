import { config, type Choices } from './config';
import { lang } from './i18n';

// The backend is where this script came from. document.currentScript is only set
// while the script first runs, so this module reads it at load.
const script = (document.currentScript ||
  document.querySelector('script[src*="/v1/banner/"]')) as HTMLScriptElement | null;
const endpoint = script ? new URL(script.src).origin + '/v1/consents' : '';

/** The actions a record can carry (consent.Action). */
export type Action = 'accept_all' | 'reject_all' | 'custom' | 'withdraw' | 'gpc';

/** Where the visitor decided (consent.Surface). */
export type Surface = 'banner' | 'preferences' | 'browser';

/** Records one decision. text/plain avoids a CORS preflight; errors are swallowed:
 * the choice already applies locally whatever the backend says. */
export const send = (id: string, action: Action, surface: Surface, choices: Choices) => {
  const body = JSON.stringify({
    site: config.s, consent_id: id, action, fingerprint: config.f, choices, language: lang,
    url: location.href, surface, gpc: (navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl === true,
  });
  const beacon = () => {
    try {
      navigator.sendBeacon(endpoint, body); // a string goes as text/plain
    } catch {
      // nothing left to try
    }
  };
  if (!endpoint) return;
  try {
    fetch(endpoint, {
      method: 'POST', keepalive: true, mode: 'cors', headers: { 'Content-Type': 'text/plain' }, body,
    }).then((r) => {
      if (!r.ok) beacon();
    }, beacon);
  } catch {
    beacon();
  }
};
