import { config } from './config';

/** What the consent cookie holds: nothing but the decision and when it was made. */
export interface Stored {
  i: string;                    // consent id (random UUID, kept across decisions)
  f: string;                    // fingerprint of the config it answered
  h: string;                    // coverage fingerprint of that config
  c: Record<string, boolean>;   // categories
  p: Record<string, boolean>;   // partners
  t: number;                    // created, Unix seconds
  u: number;                    // updated, Unix seconds
}

const cookies = (): [string, string][] =>
  document.cookie.split(/; */).map((s) => {
    const i = s.indexOf('=');
    return [s.slice(0, i), s.slice(i + 1)];
  });

/** Whether the stored answer still holds: it answered this very banner, or nothing
 * but the set of enabled partners changed and it answers each partner enabled now.
 * A partner switched off needs no new answer; one switched on that the visitor never
 * answered does. */
export const covers = (s: Stored): boolean =>
  s.f == config.f || (s.h == config.h && config.q.every((p) => p.i in s.p));

/** The stored decision, or null when there is none or it cannot be read. */
export const read = (): Stored | null => {
  for (const [name, value] of cookies()) {
    if (name == config.k.n) {
      try {
        const s = JSON.parse(decodeURIComponent(value));
        if (s && typeof s.i == 'string' && typeof s.f == 'string' && s.c && s.p) return s;
      } catch {
        // unreadable: ask again
      }
    }
  }
  return null;
};

const set = (name: string, value: string, maxAge: number, domain?: string) => {
  document.cookie = name + '=' + value + ';Max-Age=' + maxAge + ';Path=/;SameSite=Lax' +
    (location.protocol == 'https:' ? ';Secure' : '') + (domain ? ';Domain=' + domain : '');
};

/** Stores s; a decision that grants anything is kept for the consent lifetime. */
export const write = (s: Stored, grants: boolean) => {
  const h = location.hostname;
  const d = config.k.d;
  set(config.k.n, encodeURIComponent(JSON.stringify(s)),
    Math.round((grants ? config.k.c : config.k.r) * 86400),
    d && (h == d || h.endsWith('.' + d)) ? d : undefined);
};

/** Deletes the cookies matching names ("x*" matches a prefix), host-only and on
 * every parent domain, since partners usually set them on the registrable domain. */
export const drop = (names: string[]) => {
  const parts = location.hostname.split('.');
  for (const [name] of cookies()) {
    if (names.some((n) => (n.slice(-1) == '*' ? name.indexOf(n.slice(0, -1)) == 0 : name == n))) {
      set(name, '', 0);
      for (let i = 0; i < parts.length - 1; i++) set(name, '', 0, parts.slice(i).join('.'));
    }
  }
};
