// How a site's own code uses banner/consent.d.ts; tsc checks it with the banner, so
// the declarations keep describing an API a site can call.
import type { ConsentChoices } from '../consent';

const ads = (c: ConsentChoices | null): boolean => !!c && c.categories['advertising'] === true;

window.consent.on('ready', (c) => console.log('ads allowed:', ads(c)));
window.consent.on('consent:change', (c) => console.log(c && c.partners['meta-pixel']));
document.addEventListener('consent:change', (e) => console.log(e.detail.categories));
window.consent.set({ categories: { advertising: false } });
if (window.consent.get() === null) window.consent.open();

export {};
