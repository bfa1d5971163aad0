import { settings } from './settings';

// Google Consent Mode v2, basic: Google tags load only after consent, and get the
// signals in the shapes Google documents (the arguments object, not an array).
const w = window as unknown as { dataLayer?: unknown[] };

function gtag(_command: string, _kind: string, _params: object) {
  (w.dataLayer = w.dataLayer || []).push(arguments);
}

const used = settings.q.some((p) => p.m);
let state = false;

/** Pushes the "denied" defaults; must run before any Google tag. */
export const defaults = () => {
  if (used) {
    gtag('consent', 'default', {
      ad_storage: 'denied', ad_user_data: 'denied', ad_personalization: 'denied',
      analytics_storage: 'denied', wait_for_update: 500,
    });
  }
};

/** Pushes an update when the advertising signals change. */
export const update = (on: boolean) => {
  if (used && on != state) {
    state = on;
    const v = on ? 'granted' : 'denied';
    gtag('consent', 'update', { ad_storage: v, ad_user_data: v, ad_personalization: v });
  }
};
