import { settings } from './settings';
import type { Action, Surface } from './send';

/** What the consent cookie holds: nothing but the decision and when it was made. */
export interface Stored {
  i: string;                    // consent id (random UUID, kept across decisions)
  f: string;                    // fingerprint of the settings it answered
  h: string;                    // coverage fingerprint of those settings
  c: Record<string, boolean>;   // categories
  p: Record<string, boolean>;   // partners
  t: number;                    // created, Unix seconds
  u: number;                    // updated (this decision), Unix seconds
  s?: number | undefined;       // pending: the backend has not recorded it yet; the attempt
  b?: number | undefined;       // while pending: not sent again before this time, Unix seconds
  a?: Action | undefined;       // while pending: the decision's action
  w?: Surface | undefined;      // while pending: the decision's surface
}

// Blocked cookies (privacy settings, sandboxed frames) make document.cookie throw or
// ignore writes: the decision then applies to this page only.
const cookies = (): [string, string][] => {
  try {
    return document.cookie.split(/; */).map((s) => {
      const i = s.indexOf('=');
      return [s.slice(0, i), s.slice(i + 1)];
    });
  } catch {
    return [];
  }
};

/** Whether the stored answer still holds: it answered this very banner, or nothing
 * but the set of enabled partners changed and it answers each partner enabled now.
 * A partner switched off needs no new answer; one switched on that the visitor never
 * answered does. */
export const covers = (s: Stored): boolean =>
  s.f == settings.f || (s.h == settings.h && settings.q.every((p) => p.i in s.p));

/** The stored decision, or null when there is none or it cannot be read. */
export const read = (): Stored | null => {
  for (const [name, value] of cookies()) {
    if (name == settings.k.n) {
      try {
        const s = JSON.parse(decodeURIComponent(value));
        if (s && s.i && s.f && s.c && s.p) return s;
      } catch {
        // unreadable: ask again
      }
    }
  }
  return null;
};

const set = (name: string, value: string, maxAge: number, domain?: string, path = '/') => {
  try {
    document.cookie = name + '=' + value + ';Max-Age=' + maxAge + ';Path=' + path + ';SameSite=Lax' +
      (location.protocol == 'https:' ? ';Secure' : '') + (domain ? ';Domain=' + domain : '');
  } catch {
    // blocked: see cookies
  }
};

/** Stores s until its decision expires: a decision that grants anything is kept for
 * the consent lifetime, a refusal for the refusal lifetime, both counted from s.u. */
export const write = (s: Stored) => {
  const h = location.hostname;
  const d = settings.k.d;
  const grants = settings.g.some((g) => !g.r && s.c[g.i]) || settings.q.some((p) => s.p[p.i]);
  set(settings.k.n, encodeURIComponent(JSON.stringify(s)),
    Math.round((grants ? settings.k.c : settings.k.r) * 86400 - (Date.now() / 1000 - s.u)),
    d && (h == d || h.endsWith('.' + d)) ? d : undefined);
};

/** Whether name is one of names, where "x*" matches every name with the prefix x. */
const among = (name: string, names: string[]) =>
  names.some((n) => (n.slice(-1) == '*' ? name.indexOf(n.slice(0, -1)) == 0 : name == n));

/** Removes the keys matching names ("x*" a prefix) from the page's localStorage and
 * sessionStorage. */
export const forget = (names: string[] = []) => {
  try {
    for (const store of [localStorage, sessionStorage]) {
      Object.keys(store).forEach((k) => among(k, names) && store.removeItem(k));
    }
  } catch {
    // storage blocked: nothing a tag could have kept there
  }
};

/** Deletes the cookies matching names ("x*" matches a prefix) wherever the page can
 * reach them: host-only and on every parent domain, on "/" and on every prefix of
 * the page's path ("/a/b/" → "/", "/a", "/a/", "/a/b", "/a/b/"). */
export const drop = (names: string[]) => {
  const parts = location.hostname.split('.');
  const path = location.pathname;
  const paths: string[] = [];
  for (let i = 1; i <= path.length; i++) {
    if (path[i - 1] == '/' || path[i] == '/' || i == path.length) paths.push(path.slice(0, i));
  }
  for (const [name] of cookies()) {
    if (among(name, names)) {
      for (const p of paths) {
        set(name, '', 0, '', p);
        for (let i = 0; i < parts.length - 1; i++) set(name, '', 0, parts.slice(i).join('.'), p);
      }
    }
  }
};
