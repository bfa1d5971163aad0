package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
)

// The visitor's page (GET /v1/visitor/{site}) in the real browser: the decisions a
// visitor took through the banner, listed in every language of every site; the
// download, byte for byte the API's answer; the states without records; and its
// accessibility, under the page's own Content-Security-Policy.

// MustVisitorTexts reads the visitor page's texts in lang, as shipped.
func MustVisitorTexts(tb testing.TB, lang string) map[string]string {
	tb.Helper()
	return mustTexts(tb, "../server/visitor/i18n/"+lang+".json")
}

// MustBannerTexts reads the banner's texts in lang, as shipped (no site overrides).
func MustBannerTexts(tb testing.TB, lang string) map[string]string {
	tb.Helper()
	return mustTexts(tb, "../banner/i18n/"+lang+".json")
}

func mustTexts(tb testing.TB, file string) map[string]string {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	var texts map[string]string
	if err := json.Unmarshal(data, &texts); err != nil {
		tb.Fatal(err)
	}
	return texts
}

// mustProofInPreferences opens the preferences on the page in lang and checks that
// they show the visitor's consent id, to copy, and the link to their page in lang.
func mustProofInPreferences(t *testing.T, p *Page, site, lang, id string) {
	t.Helper()
	p.MustNavigateLang(lang)
	p.MustReady()
	p.MustInjectAxe()
	openSettings(p)
	texts := MustBannerTexts(t, lang)
	type proof struct {
		Label, ID, Copy, Href, Text, Rel string
	}
	read := `(() => { const i = inDialog('#ci'), a = i.parentElement.querySelector('a');
  return { label: i.labels[0].textContent, id: i.value, copy: i.nextElementSibling.textContent, href: a.href, text: a.textContent, rel: a.rel }; })()`
	got := MustEval[proof](t, p, read)
	want := proof{texts["consentId"], id, texts["copy"], p.Env.VisitorURL(site, lang, id), texts["records"], "noopener noreferrer"}
	if got != want {
		t.Errorf("%s: the preferences show %+v, want %+v", lang, got, want)
	}
	p.MustClick(`"`+texts["copy"]+`"`, `inDialog('#ci').nextElementSibling`)
	p.MustWaitJS("the copy button says "+texts["copied"], `inDialog('#ci').nextElementSibling.textContent === `+jsString(texts["copied"]))
	MustAxe(t, p, site+" "+lang+" preferences with the consent id", false)
	p.MustClick(`"`+texts["close"]+`"`, `inDialog('[data-action="close"]')`)
	p.MustWaitJS("the preferences closed", `!inDialog('[data-action]')`)
}

// VisitorURL returns the address of site's visitor page in lang, as the banner links
// it: the consent id, if any, in the fragment.
func (e *Env) VisitorURL(site, lang, consentID string) string {
	u := "http://" + backendHost + ":" + e.Port + "/v1/visitor/" + site + "?lang=" + lang
	if consentID != "" {
		u += "#" + consentID
	}
	return u
}

// MustAnswer returns the body of consentd's answer to GET path.
func (e *Env) MustAnswer(tb testing.TB, path string) []byte {
	tb.Helper()
	rec := httptest.NewRecorder()
	e.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://"+backendHost+path, nil))
	if rec.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// MustVisit opens u in the tab and waits for its load event.
func (p *Page) MustVisit(u string) {
	p.tb.Helper()
	if err := chromedp.Do(p.ctx, chromedp.Navigate(u)); err != nil {
		p.tb.Fatalf("navigate to %s: %v", u, err)
	}
}

// MustWatchCSP makes every document the tab opens from now on note the violations
// of its Content-Security-Policy; MustNoCSPViolation reads them.
func (p *Page) MustWatchCSP() {
	p.tb.Helper()
	p.MustInitScript(`window.cspViolations = []; document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.effectiveDirective + ' blocked ' + e.blockedURI + ' (' + e.sourceFile + ':' + e.lineNumber + ')'));`)
}

// MustNoCSPViolation fails tb for each violation of the page's policy so far.
func (p *Page) MustNoCSPViolation(where string) {
	p.tb.Helper()
	for _, v := range MustEval[[]string](p.tb, p, `window.cspViolations || ['the CSP watch is not installed']`) {
		p.tb.Errorf("%s: Content-Security-Policy violation: %s", where, v)
	}
}

// MustBypassCSP makes the tab ignore pages' Content-Security-Policy from the next
// navigation on: axe-core comes from a server of its own, which the visitor page's
// policy rightly refuses.
func (p *Page) MustBypassCSP() {
	p.tb.Helper()
	if _, err := chromedp.Call(p.ctx, page.SetBypassCSP, page.SetBypassCSPParams{Enabled: true}); err != nil {
		p.tb.Fatalf("bypass CSP: %v", err)
	}
}

// MustDownload clicks what expr gives, as a visitor would, and waits until the
// browser has saved the download; it returns the name the page gave the file and
// the file's bytes.
func (p *Page) MustDownload(what, expr string) (name string, data []byte) {
	p.tb.Helper()
	dir := p.tb.TempDir()
	type done struct{ guid, state string }
	names, finished := make(chan [2]string, 4), make(chan done, 4)
	// The listener must never block the tab's loop: the channels have room for more
	// downloads than the one clicked, and what does not fit is dropped.
	err := chromedp.Listen(p.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *browser.EventDownloadWillBegin:
			select {
			case names <- [2]string{ev.GUID, ev.SuggestedFilename}:
			default:
			}
		case *browser.EventDownloadProgress:
			if ev.State != browser.DownloadProgressStateInProgress {
				select {
				case finished <- done{ev.GUID, string(ev.State)}:
				default:
				}
			}
		}
	})
	if err != nil {
		p.tb.Fatalf("listen for downloads: %v", err)
	}
	events := true
	if _, err := chromedp.Call(p.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &events,
		BrowserContextID: chromedp.FromContext(p.ctx).BrowserContextID,
	}); err != nil {
		p.tb.Fatalf("allow downloads: %v", err)
	}
	p.MustClick(what, expr)
	timeout := wait.Timeout(p.tb)
	var guid string
	select {
	case n := <-names:
		guid, name = n[0], n[1]
	case <-timeout:
		p.tb.Fatalf("clicking %s started no download", what)
	}
	select {
	case d := <-finished:
		if d.guid != guid || d.state != string(browser.DownloadProgressStateCompleted) {
			p.tb.Fatalf("download %s of %s: %s", d.guid, name, d.state)
		}
	case <-timeout:
		p.tb.Fatalf("the download of %s never completed", name)
	}
	data, err = os.ReadFile(filepath.Join(dir, guid)) // AllowAndName: saved under its guid
	if err != nil {
		p.tb.Fatal(err)
	}
	return name, data
}

// VisitorView is what the visitor's page shows.
type VisitorView struct {
	Lang      string         `json:"lang"`
	Title     string         `json:"title"`
	Status    string         `json:"status"`
	IDs       []string       `json:"ids"`       // the consent id wherever the page shows it
	Records   []VisitorEntry `json:"records"`   // newest first; nil while the list is hidden
	Download  string         `json:"download"`  // the file name the download link gives; "" while it is hidden
	Address   string         `json:"address"`   // the controller to contact
	Structure []string       `json:"structure"` // what is wrong with landmarks, headings and lists
}

// VisitorEntry is one decision in the list.
type VisitorEntry struct {
	Heading string              `json:"heading"`
	Time    string              `json:"time"`  // its datetime attribute
	Terms   map[string][]string `json:"terms"` // each term with its items, or its text
}

// MustVisitorView reads what the visitor's page shows.
func MustVisitorView(tb testing.TB, p *Page) VisitorView {
	tb.Helper()
	return MustEval[VisitorView](tb, p, `(() => {
  const shown = (el) => !!el && !el.closest('[hidden]');
  const list = document.getElementById('records'), link = document.getElementById('download-link');
  const structure = [];
  const count = (sel, n) => { const c = document.querySelectorAll(sel).length; if (c !== n) structure.push(c + ' ' + sel + ', want ' + n); };
  count('header', 1); count('main', 1); count('footer', 1); count('h1', 1); count('main > section > h2', 3);
  for (const li of list.children) {
    if (!li.querySelector(':scope > h3 > time')) structure.push('an entry without its heading and time');
    const dl = li.querySelector(':scope > dl');
    if (!dl || dl.querySelectorAll(':scope > dt').length !== dl.querySelectorAll(':scope > dd').length) structure.push('an entry without a list of terms and their descriptions');
  }
  return {
    lang: document.documentElement.lang,
    title: document.querySelector('h1').textContent,
    status: document.getElementById('status').textContent,
    ids: [...document.querySelectorAll('.cid')].filter(shown).map((el) => el.textContent),
    records: shown(list) ? [...list.children].map((li) => ({
      heading: li.querySelector('h3').textContent,
      time: li.querySelector('time').getAttribute('datetime'),
      terms: Object.fromEntries([...li.querySelectorAll('dt')].map((dt) => {
        const dd = dt.nextElementSibling, items = [...dd.querySelectorAll('li')];
        return [dt.textContent, items.length ? items.map((i) => i.textContent) : [dd.textContent]];
      })),
    })) : null,
    download: shown(link) && link.href.startsWith('blob:') ? link.download : '',
    address: document.querySelector('address').textContent,
    structure,
  };
})()`)
}

// MustVisitorState waits until the page's status says the text of key in texts.
func (p *Page) MustVisitorState(texts map[string]string, key string) {
	p.tb.Helper()
	p.MustWaitJS("the page says "+key, `document.getElementById('status').textContent === `+jsString(texts[key]))
}

// TestVisitorPage: a visitor rejects all in the banner, then allows advertising
// with one partner in its preferences; the preferences then show their consent id
// and link to their page, in every language of the site; the page lists both decisions, newest first,
// in every language of the site, offers the API's answer byte for byte as a
// download, keeps to its Content-Security-Policy, and is accessible.
func TestVisitorPage(t *testing.T) {
	forEachSite(t, func(t *testing.T, env *Env, site string) {
		st := env.Config.Sites[site]
		enabled := EnabledPartners(env.Config, site)
		chosen := enabled[len(enabled)-1]

		b := MustOpenPage(t, env, site)
		b.MustNavigate()
		b.MustBannerVisible()
		id := MustRejectAll(t, b).ID
		openSettings(b)
		b.MustClick("the advertising toggle", `inDialog('input[data-category="advertising"]')`)
		b.MustWaitJS("the advertising toggle is on", `inDialog('input[data-category="advertising"]').checked`)
		b.MustClick("the "+chosen+" toggle", `inDialog('input[data-partner=`+jsString(chosen)+`]')`)
		b.MustWaitJS("the "+chosen+" toggle is on", `inDialog('input[data-partner=`+jsString(chosen)+`]').checked`)
		b.MustClick(`"Save"`, `inDialog('[data-action="save"]')`)
		records := env.MustRecords(t, id, 2)
		answer := env.MustAnswer(t, "/v1/consents/"+id)
		for _, lang := range st.Languages {
			mustProofInPreferences(t, b, site, lang, id)
		}

		for _, lang := range st.Languages {
			t.Run(lang, func(t *testing.T) {
				texts := MustVisitorTexts(t, lang)
				name := func(cat string) string { return st.Category(cat).Name[lang] }
				partner := func(id string) string { return st.Partner(id).Name }
				var refused []string
				for _, p := range enabled {
					if p != chosen {
						refused = append(refused, partner(p))
					}
				}

				p := MustOpenPage(t, env, site)
				p.MustWatchCSP()
				mark := env.Requests.Mark()
				p.MustVisit(env.VisitorURL(site, lang, id))
				p.MustVisitorState(texts, "loaded")
				want := []string{"GET /v1/visitor/" + site, "GET /v1/consents/" + id}
				if got := env.Requests.Backend(mark); !equalLists(got, want) {
					t.Errorf("requests for the page = %q, want %q: the page and the records, nothing else", got, want)
				}

				v := MustVisitorView(t, p)
				for _, s := range v.Structure {
					t.Errorf("structure: %s", s)
				}
				if v.Lang != lang || v.Title != texts["title"] || !strings.Contains(v.Address, st.Controller.Address) {
					t.Errorf("page in %q titled %q, controller %q; want %s, %q, %q", v.Lang, v.Title, v.Address, lang, texts["title"], st.Controller.Address)
				}
				if !equalLists(v.IDs, []string{id, id}) {
					t.Errorf("consent id shown as %q, want %s at the top and in the contact", v.IDs, id)
				}
				if len(v.Records) != 2 {
					t.Fatalf("%d decisions listed, want 2: %+v", len(v.Records), v.Records)
				}
				for i, w := range []struct {
					r                 *consent.Record
					action            string
					granted, declined []string
				}{
					// newest first: the custom choice, then the refusal
					{records[1], "custom", []string{name("technical"), name("advertising"), partner(chosen)}, refused},
					{records[0], "reject_all", []string{name("technical")}, append([]string{name("advertising")}, mapNames(enabled, partner)...)},
				} {
					e := v.Records[i]
					if !strings.HasSuffix(e.Heading, " — "+texts[w.action]) || e.Time != w.r.RecordedAt.Format(time.RFC3339Nano) {
						t.Errorf("decision %d: heading %q, time %s; want the %s action %q at %s", i+1, e.Heading, e.Time, lang, texts[w.action], w.r.RecordedAt)
					}
					for term, items := range map[string][]string{
						texts["granted"]: w.granted, texts["refused"]: w.declined, texts["site"]: {site},
						texts["policyVersion"]: {st.Policy.Version}, texts["recordId"]: {w.r.ID},
					} {
						if got := e.Terms[term]; !equalLists(got, items) {
							t.Errorf("decision %d (%s): %q = %q, want %q", i+1, w.action, term, got, items)
						}
					}
				}

				if v.Download != "consent-"+id+".json" {
					t.Errorf("download link names the file %q, want consent-%s.json", v.Download, id)
				}
				file, data := p.MustDownload(`"`+texts["download"]+`"`, `document.getElementById('download-link')`)
				if file != "consent-"+id+".json" || !bytes.Equal(data, answer) {
					t.Errorf("downloaded %s:\n%s\nwant consent-%s.json, exactly GET /v1/consents/%s:\n%s", file, data, id, id, answer)
				}
				p.MustNoCSPViolation(site + " " + lang)

				mustVisitorA11y(t, p, texts, "loaded", site+" "+lang)
			})
		}
	})
}

func mapNames(ids []string, name func(string) string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = name(id)
	}
	return out
}

// mustVisitorA11y reloads the page p shows, without its Content-Security-Policy so
// that axe-core can load, waits for the state key, and checks it: axe-core in light
// and dark mode, no horizontal scrolling on a phone and a desktop, and every link
// reachable by keyboard with its focus visible.
func mustVisitorA11y(t *testing.T, p *Page, texts map[string]string, key, where string) {
	t.Helper()
	p.MustBypassCSP()
	p.MustReload()
	p.MustVisitorState(texts, key)
	p.MustInjectAxe()
	p.MustMedia("light", false)
	MustAxeDocument(t, p, where+" light", false)
	p.MustMedia("dark", false)
	MustAxeDocument(t, p, where+" dark", true)
	p.MustMedia("light", false)

	for _, v := range []Viewport{phone, desktop} {
		p.MustViewport(v)
		if w := MustEval[[]int](t, p, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`); w[0] > w[1] {
			t.Errorf("%s %s: the page scrolls horizontally (scrollWidth %d > clientWidth %d)", where, v.Name, w[0], w[1])
		}
	}

	p.MustFocusEmulation()
	links := MustEval[[]string](t, p, `[...document.querySelectorAll('a[href]')].filter((a) => !a.closest('[hidden]')).map((a) => a.textContent)`)
	var reached []string
	for range len(links) {
		p.MustPress(kb.Tab)
		f := MustA11yEval[Focused](t, p, `(() => { const a = document.activeElement; return { desc: describe(a), focusVisible: a.matches(':focus-visible'), ring: focusRing(a), match: a.tagName === 'A' }; })()`)
		if !f.Match || !f.Visible || f.Ring != "" {
			t.Errorf("%s: Tab to %s: a link %t, :focus-visible %t, %s", where, f.Desc, f.Match, f.Visible, f.Ring)
		}
		reached = append(reached, f.Desc)
	}
	if len(links) < 3 || len(slices.Compact(slices.Sorted(slices.Values(reached)))) != len(links) {
		t.Errorf("%s: Tab reached %q, want each of the %d links %q", where, reached, len(links), links)
	}
}

// TestVisitorPageStates: without a consent id, with one that is not valid, with one
// that has no records, and with the records out of reach, the page says so in the
// visitor's language, fetches nothing it need not, and stays accessible.
func TestVisitorPageStates(t *testing.T) {
	sites := sitesWhere(t, func(s *consent.Site) bool { return len(s.Languages) == len(consent.Languages) })
	forSites(t, sites[:1], func(t *testing.T, env *Env, site string) {
		for _, lang := range env.Config.Sites[site].Languages {
			t.Run(lang, func(t *testing.T) {
				texts := MustVisitorTexts(t, lang)
				p := MustOpenPage(t, env, site)
				p.MustWatchCSP()
				mark := env.Requests.Mark()
				p.MustVisit(env.VisitorURL(site, lang, ""))
				p.MustVisitorState(texts, "noId")
				// A fragment changed in the address loads no new page: the page follows it.
				MustEval[bool](t, p, `(location.hash = 'not-a-consent-id', true)`)
				p.MustVisitorState(texts, "badId")
				if got, want := env.Requests.Backend(mark), []string{"GET /v1/visitor/" + site}; !equalLists(got, want) {
					t.Errorf("requests without a valid consent id = %q, want only %q", got, want)
				}
				unknown := uuid.NewString()
				MustEval[bool](t, p, `(location.hash = `+jsString(strings.ToUpper(unknown))+`, true)`)
				p.MustVisitorState(texts, "notFound")
				env.SetHistoryDown(true)
				defer env.SetHistoryDown(false)
				MustEval[bool](t, p, `(location.hash = `+jsString(uuid.NewString())+`, true)`)
				p.MustVisitorState(texts, "failed")
				if got := env.Requests.Backend(mark); !slices.Contains(got, "GET /v1/consents/"+unknown) {
					t.Errorf("requests = %q, want GET /v1/consents/%s: an id in upper case is the same id", got, unknown)
				}

				v := MustVisitorView(t, p)
				for _, s := range v.Structure {
					t.Errorf("structure: %s", s)
				}
				if v.Title != texts["title"] || v.Records != nil || v.Download != "" || !strings.Contains(v.Address, env.Config.Sites[site].Controller.Email) {
					t.Errorf("failed state: %+v; want the page titled %q with the controller's address, no decisions and no download", v, texts["title"])
				}
				p.MustNoCSPViolation(site + " " + lang)
				mustVisitorA11y(t, p, texts, "failed", site+" "+lang+" failed")
			})
		}
	})
}
