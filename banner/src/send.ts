import { origin } from './backend';
import { settings } from './settings';
import type { Stored } from './cookie';
import { lang } from './i18n';

/** Whether the browser sends the Global Privacy Control signal. */
export const gpc = (navigator as { globalPrivacyControl?: boolean }).globalPrivacyControl === true;

/** The actions a record can carry (consent.Action). */
export type Action = 'accept_all' | 'reject_all' | 'custom' | 'withdraw' | 'gpc';

/** Where the visitor decided (consent.Surface). */
export type Surface = 'banner' | 'preferences' | 'placeholder' | 'api' | 'browser';

/** Records the decision s holds, with the fingerprint it answered. text/plain avoids
 * a CORS preflight. Resolves to whether it must be sent again later: on a network
 * error, a 5xx or a 429 (too many decisions from the visitor's network for now); a
 * 2xx is done and any other 4xx will never succeed. */
export const send = (s: Stored, action: Action, surface: Surface): Promise<boolean> =>
  fetch(origin + '/v1/consents', {
    method: 'POST', keepalive: true, mode: 'cors', headers: { 'Content-Type': 'text/plain' },
    body: JSON.stringify({
      site: settings.s, consent_id: s.i, action, fingerprint: s.f, choices: { categories: s.c, partners: s.p },
      language: lang, url: location.href, surface,
      gpc,
    }),
  }).then((r) => r.status > 499 || r.status == 429, () => true);
