// The backend is where this script came from. document.currentScript is only set
// while the script first runs, so this module reads it at load.
const script = (document.currentScript ||
  document.querySelector('script[src*="/v1/banner/"]')) as HTMLScriptElement | null;

/** The script's URL, "" if unknown. */
export const src = script ? script.src : '';

/** The backend's origin, "" if unknown. */
export const origin = src && new URL(src).origin;
