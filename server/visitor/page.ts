// The visitor's own page ("Your consent"): it takes the consent id from the address's
// fragment, which the browser never sends to any server nor puts in a Referer, fetches
// that id's records from this server and lists them, newest first. Every text goes into
// the page as text (textContent), never as HTML: the page's Content-Security-Policy
// forbids HTML sinks anyway (require-trusted-types-for 'script').

/** What the server writes into <script type="application/json" id="data">. */
interface PageData {
  lang: string;
  texts: Record<string, string>;
  /** [id, name in the page's language], in the order of sites.yaml */
  categories: [string, string][];
  partners: [string, string][];
}

/** What the page shows of a record of GET /v1/consents/{consent_id}. */
interface ConsentRecord {
  record_id: string;
  site: string;
  action: string;
  // Go writes a nil map as null
  choices: { categories: Record<string, boolean> | null; partners: Record<string, boolean> | null };
  policy_version: string;
  recorded_at: string;
}

interface History {
  records: ConsentRecord[];
}

const byId = (id: string): HTMLElement => {
  const el = document.getElementById(id);
  if (!el) throw new Error('visitor page: no #' + id);
  return el;
};

const data = JSON.parse(byId('data').textContent || '') as PageData;

/** The page's text for key, or the key itself: an action this page does not know yet shows as sent. */
const t = (key: string): string => data.texts[key] || key;

const element = <K extends keyof HTMLElementTagNameMap>(tag: K, text?: string): HTMLElementTagNameMap[K] => {
  const el = document.createElement(tag);
  if (text !== undefined) el.textContent = text;
  return el;
};

// The server's own check (parseConsentID): a UUID in its canonical form, any case.
const consentID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const when = new Intl.DateTimeFormat(data.lang, {
  year: 'numeric', month: 'long', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});

const status = byId('status');
const list = byId('records');
const download = byId('download');
const link = byId('download-link') as HTMLAnchorElement;
const keys = new URL('../keys', location.href).href;
byId('keys-link').textContent = keys;

/** The names of what answers grants (granted) or refuses: the site's in its order, then any the site no longer has, by id. */
const answered = (known: [string, string][], answers: Record<string, boolean> | null, granted: boolean): string[] => {
  const given = answers || {};
  const names = known.filter(([id]) => given[id] === granted).map(([, name]) => name);
  for (const id of Object.keys(given).sort()) {
    if (given[id] === granted && !known.some(([k]) => k === id)) names.push(id);
  }
  return names;
};

const nameList = (names: string[]): HTMLElement => {
  if (names.length === 0) return element('span', t('none'));
  const ul = element('ul');
  ul.append(...names.map((n) => element('li', n)));
  return ul;
};

const item = (r: ConsentRecord): HTMLLIElement => {
  const li = element('li');
  const time = element('time', when.format(new Date(r.recorded_at)));
  time.dateTime = r.recorded_at;
  const heading = element('h3');
  heading.append(time, ' — ' + t(r.action));
  const dl = element('dl');
  const row = (term: string, value: string | HTMLElement): void => {
    const dd = element('dd');
    dd.append(value);
    dl.append(element('dt', term), dd);
  };
  const answers = (granted: boolean): HTMLElement => nameList(answered(data.categories, r.choices.categories, granted)
    .concat(answered(data.partners, r.choices.partners, granted)));
  row(t('site'), r.site);
  row(t('granted'), answers(true));
  row(t('refused'), answers(false));
  row(t('policyVersion'), r.policy_version);
  row(t('recordId'), element('code', r.record_id));
  li.append(heading, dl);
  return li;
};

/** Shows the state of the page: key names the status text; id is the valid consent id, if any. */
const state = (key: string, id?: string): void => {
  status.textContent = t(key);
  for (const el of document.querySelectorAll<HTMLElement>('[data-id]')) el.hidden = !id;
  for (const el of document.querySelectorAll('.cid')) el.textContent = id || '';
  byId('commands').textContent = 'curl -o keys.json ' + keys + '\nconsentd verify-receipt --public-keys keys.json consent-' + (id || '…') + '.json';
  if (key !== 'loaded') {
    list.hidden = download.hidden = true;
    list.replaceChildren();
    if (link.href) URL.revokeObjectURL(link.href);
    link.removeAttribute('href');
  }
};

// Each showing of an id has its number: an answer for an id the visitor has since
// replaced in the address is dropped.
let showing = 0;

const show = async (): Promise<void> => {
  const run = ++showing;
  const raw = location.hash.slice(1);
  if (!raw) return state('noId');
  if (!consentID.test(raw)) return state('badId');
  const id = raw.toLowerCase();
  state('loading', id);
  let res: Response;
  let body: string;
  try {
    // Relative: /v1/consents/{id} wherever consentd is mounted. No cookies, no Referer.
    res = await fetch(new URL('../consents/' + id, location.href).href, {
      credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer', headers: { Accept: 'application/json' },
    });
    body = await res.text();
  } catch {
    if (run === showing) state('failed', id);
    return;
  }
  if (run !== showing) return;
  if (res.status === 404) return state('notFound', id);
  let history: History;
  try {
    if (!res.ok) throw new Error('status ' + res.status);
    history = JSON.parse(body) as History;
  } catch {
    return state('failed', id);
  }
  list.replaceChildren(...history.records.slice().reverse().map(item));
  // The download is the answer itself, byte for byte: the receipts verify only as sent.
  link.href = URL.createObjectURL(new Blob([body], { type: 'application/json' }));
  link.download = 'consent-' + id + '.json';
  state('loaded', id);
  list.hidden = download.hidden = false;
};

addEventListener('hashchange', () => void show());
void show();

export {};
