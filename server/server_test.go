package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/scrape"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/storetest"
)

const (
	testSite   = "mixvoip.com"
	testOrigin = "https://www.mixvoip.com"
)

// countingStore is the real bbolt store, counting the appends that reached it, so a
// test can tell that a refused request stored nothing at all.
type countingStore struct {
	consent.Store
	appends atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, r *consent.Record) (*consent.Receipt, error) {
	s.appends.Add(1)
	return s.Store.Append(ctx, r)
}

type fixture struct {
	srv   *server.Server
	store *countingStore
	cfg   *config.Config
}

// fixtures are built once per test binary and option set: building the four banners
// dominates a test's cost (about a second under the race detector). Tests that use
// them run one after another, so the append counter can be reset per test.
var (
	fixtureMu  sync.Mutex
	fixtures   = map[bool]*fixture{} // by demo on/off
	fixtureDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "consentd-server-test-")
	if err != nil {
		panic(err)
	}
	fixtureDir = dir
	code := m.Run()
	for _, f := range fixtures {
		f.store.Close()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// MustFixture returns a server on a real bbolt store with the shipped sites.yaml,
// with a fresh append counter.
func MustFixture(tb testing.TB, demo bool) *fixture {
	tb.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if f := fixtures[demo]; f != nil {
		f.store.appends.Store(0)
		return f
	}
	f := newFixture(tb, demo, filepath.Join(fixtureDir, fmt.Sprintf("consent-%d.db", len(fixtures))))
	fixtures[demo] = f
	return f
}

// MustFreshFixture is MustFixture with a store of its own, empty, for a test that
// counts what the store holds; it is closed when tb ends.
func MustFreshFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := newFixture(tb, false, filepath.Join(tb.TempDir(), "consent.db"))
	tb.Cleanup(func() { f.store.Close() })
	return f
}

// newFixture returns a server of the shipped sites.yaml on a store at path.
func newFixture(tb testing.TB, demo bool, path string) *fixture {
	tb.Helper()
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	db, err := bolt.Open(path, bolt.Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		tb.Fatal(err)
	}
	store := &countingStore{Store: db}
	srv := server.New(store, server.Options{Demo: demo, Keys: storetest.Keys(), Origin: storetest.Origin, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.Load(cfg); err != nil {
		tb.Fatal(err)
	}
	return &fixture{srv: srv, store: store, cfg: cfg}
}

// validBody returns a consent request that the server accepts for testSite: a
// refusal of everything the banner shows.
func (f *fixture) validBody(tb testing.TB) map[string]any {
	tb.Helper()
	return f.validBodyFor(tb, testSite)
}

// validBodyFor is validBody for the site key, from its first origin.
func (f *fixture) validBodyFor(tb testing.TB, key string) map[string]any {
	tb.Helper()
	site := f.cfg.Sites[key]
	page := testOrigin
	if key != testSite {
		page = site.Origins[0]
	}
	return map[string]any{
		"site":        key,
		"consent_id":  uuid.NewString(),
		"action":      "reject_all",
		"fingerprint": banner.Fingerprint(site),
		"choices":     f.choicesFor(key, false),
		"language":    "en",
		"url":         page + "/pricing?utm_source=mail&email=a@b.c#plans",
		"surface":     "banner",
		"gpc":         false,
	}
}

// choices returns the choices of testSite's banner with every optional category
// and enabled partner set to granted, as the banner sends them.
func (f *fixture) choices(granted bool) map[string]any { return f.choicesFor(testSite, granted) }

// choicesFor is choices for the site key.
func (f *fixture) choicesFor(key string, granted bool) map[string]any {
	c := f.cfg.Sites[key].AllChoices(granted)
	return map[string]any{"categories": c.Categories, "partners": c.Partners}
}

func (f *fixture) do(tb testing.TB, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	tb.Helper()
	return f.doFrom(tb, "203.0.113.77:51234", method, path, body, header)
}

// doFrom is do from a client at addr (host:port).
func (f *fixture) doFrom(tb testing.TB, addr, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = addr
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// metric returns the value of series in f's /metrics (scrape.Value), 0 if it has
// none.
func (f *fixture) metric(tb testing.TB, series string) float64 {
	tb.Helper()
	rec := f.do(tb, http.MethodGet, "/metrics", "", nil)
	if rec.Code != http.StatusOK {
		tb.Fatalf("/metrics: %d", rec.Code)
	}
	v, _ := scrape.Value(rec.Body.String(), series)
	return v
}

func (f *fixture) post(tb testing.TB, body map[string]any, header map[string]string) *httptest.ResponseRecorder {
	tb.Helper()
	if header == nil {
		header = map[string]string{"Origin": testOrigin, "Content-Type": "text/plain;charset=UTF-8", "User-Agent": "Mozilla/5.0 (test) \"quoted\" ünïcode"}
	}
	return f.do(tb, http.MethodPost, "/v1/consents", MustJSON(tb, body), header)
}

func MustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// MustErrorBody checks the JSON error shape and returns its code and message.
func MustErrorBody(tb testing.TB, rec *httptest.ResponseRecorder) (code, message string) {
	tb.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Fatalf("error Content-Type = %q, want JSON; body %s", ct, rec.Body)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		tb.Fatalf("error body is not {\"error\":{\"code\",\"message\"}}: %v", err)
	}
	return body.Error.Code, body.Error.Message
}

func TestCreateConsent(t *testing.T) {
	f := MustFixture(t, false)
	body := f.validBody(t)
	rec := f.post(t, body, nil)
	if rec.Code != http.StatusCreated {
		t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != testOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, testOrigin)
	}
	var resp struct {
		RecordID   string `json:"record_id"`
		ConsentID  string `json:"consent_id"`
		RecordedAt string `json:"recorded_at"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if id, err := uuid.Parse(resp.RecordID); err != nil || id.Version() != 7 {
		t.Errorf("record_id = %q, want a UUIDv7", resp.RecordID)
	}
	if resp.ConsentID != body["consent_id"] || resp.RecordedAt == "" {
		t.Errorf("response = %+v", resp)
	}

	records, err := f.store.RecordsByConsent(context.Background(), resp.ConsentID)
	if err != nil || len(records) != 1 {
		t.Fatalf("stored = %v, %v; want one record", records, err)
	}
	r := records[0]
	checks := []struct{ field, got, want string }{
		{"id", r.ID, resp.RecordID},
		{"ip prefix", r.IPPrefix, "203.0.113.0/24"},
		{"url", r.URL, testOrigin + "/pricing"},
		{"user agent", r.UserAgent, "Mozilla/5.0 (test) \"quoted\" ünïcode"},
		{"policy version", r.PolicyVersion, "2021-09-13"},
		{"action", string(r.Action), "reject_all"},
		{"time zone", r.RecordedAt.Location().String(), "UTC"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
		}
	}
	if got := r.ExpiresAt.Sub(r.RecordedAt); got != f.cfg.Sites[testSite].Cookie.RefusalLifetime {
		t.Errorf("refusal expires after %v, want the refusal lifetime", got)
	}
	if r.Choices.Categories["advertising"] || !r.Choices.Categories["technical"] || len(r.Choices.Partners) != 3 {
		t.Errorf("choices = %+v", r.Choices)
	}
}

func TestCreateConsentAcceptsJSONAndBeacon(t *testing.T) {
	for _, ct := range []string{"application/json", "text/plain;charset=UTF-8", ""} {
		t.Run(ct, func(t *testing.T) {
			f := MustFixture(t, false)
			body := f.validBody(t)
			body["action"] = "accept_all"
			body["choices"] = f.choices(true)
			rec := f.post(t, body, map[string]string{"Origin": "https://mixvoip.com", "Content-Type": ct})
			if rec.Code != http.StatusCreated {
				t.Fatalf("status = %d, body %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestBadInputIsRefusedAndStoresNothing sends each kind of bad request and expects a
// clear 4xx with the JSON error shape, and no append at all.
func TestBadInputIsRefusedAndStoresNothing(t *testing.T) {
	type change func(body map[string]any, header map[string]string) string
	set := func(key string, v any) change {
		return func(b map[string]any, _ map[string]string) string { b[key] = v; return "" }
	}
	// choose changes the valid refusal into action, with the answers given per
	// category and partner (nil removes one) and the others left refused.
	choose := func(action string, categories, partners map[string]any) change {
		return func(b map[string]any, _ map[string]string) string {
			b["action"] = action
			for kind, answers := range map[string]map[string]any{"categories": categories, "partners": partners} {
				m := b["choices"].(map[string]any)[kind].(map[string]bool)
				for id, v := range answers {
					if v == nil {
						delete(m, id)
					} else {
						m[id] = v.(bool)
					}
				}
			}
			return ""
		}
	}
	type answers = map[string]any
	raw := func(body string) change { return func(map[string]any, map[string]string) string { return body } }
	tests := []struct {
		name   string
		change change
		status int
		code   string
		names  string // in the message: the field at fault
	}{
		{"unknown site", set("site", "example.org"), 404, "not_found", ""},
		{"missing origin", func(_ map[string]any, h map[string]string) string { delete(h, "Origin"); return "" }, 403, "forbidden", ""},
		{"foreign origin", func(_ map[string]any, h map[string]string) string { h["Origin"] = "https://evil.example"; return "" }, 403, "forbidden", ""},
		{"origin of another site", func(_ map[string]any, h map[string]string) string { h["Origin"] = "https://www.voxbi.com"; return "" }, 403, "forbidden", ""},
		{"server's own origin without demo", func(_ map[string]any, h map[string]string) string { h["Origin"] = "http://example.com"; return "" }, 403, "forbidden", ""},
		{"malformed JSON", raw(`{"site": "mixvoip.com",`), 400, "invalid", ""},
		{"empty body", raw(" "), 400, "invalid", ""},
		{"JSON array", raw(`[]`), 400, "invalid", ""},
		{"two objects", func(b map[string]any, _ map[string]string) string { s := MustJSON(t, b); return s + s }, 400, "invalid", ""},
		{"unknown field", set("tracking", true), 400, "invalid", "tracking"},
		{"wrong type", set("gpc", "yes"), 400, "invalid", "gpc"},
		{"duplicate key", func(b map[string]any, _ map[string]string) string {
			return strings.Replace(MustJSON(t, b), `"action":"reject_all"`, `"action":"reject_all","action":"accept_all"`, 1)
		}, 400, "invalid", `"action"`},
		{"duplicate key in another case", func(b map[string]any, _ map[string]string) string {
			return strings.Replace(MustJSON(t, b), `"gpc":false`, `"gpc":false,"GPC":true`, 1)
		}, 400, "invalid", `"GPC"`},
		{"a member named as another one folds", func(b map[string]any, _ map[string]string) string {
			return strings.Replace(MustJSON(t, b), `"surface":"banner"`, `"surface":"banner","ſurface":"preferences"`, 1)
		}, 400, "invalid", `"ſurface"`},
		{"duplicate choice", func(b map[string]any, _ map[string]string) string {
			return strings.Replace(MustJSON(t, b), `"advertising":false`, `"advertising":false,"advertising":true`, 1)
		}, 400, "invalid", `"choices.categories.advertising"`},
		{"unknown category", choose("reject_all", answers{"analytics": false}, nil), 400, "invalid", "choices.categories.analytics"},
		{"required category refused", choose("reject_all", answers{"technical": false}, nil), 400, "invalid", "choices.categories.technical"},
		{"no categories", set("choices", map[string]any{"partners": map[string]bool{}}), 400, "invalid", "choices.categories"},
		{"a category not answered", choose("reject_all", answers{"advertising": nil}, nil), 400, "invalid", "choices.categories.advertising"},
		{"accept all with only technical answered", func(b map[string]any, _ map[string]string) string {
			b["action"], b["choices"] = "accept_all", map[string]any{"categories": map[string]bool{"technical": true}}
			return ""
		}, 400, "invalid", "choices.categories.advertising"},
		{"a partner not answered", choose("reject_all", nil, answers{"meta-pixel": nil}), 400, "invalid", "choices.partners.meta-pixel"},
		{"unknown partner", choose("reject_all", nil, answers{"tiktok": false}), 400, "invalid", "choices.partners.tiktok"},
		{"grant to a partner not enabled on the site", choose("custom", answers{"advertising": true}, answers{"microsoft-uet": true}), 400, "invalid", "choices.partners.microsoft-uet"},
		{"partner granted while its category is refused", choose("custom", nil, answers{"google-ads": true}), 400, "invalid", "choices.partners.google-ads"},
		{"reject all with a grant", choose("reject_all", answers{"advertising": true}, nil), 400, "invalid", "choices.categories.advertising"},
		{"accept all with a refusal", choose("accept_all", answers{"advertising": true}, answers{"google-ads": true, "meta-pixel": true}), 400, "invalid", "choices.partners.linkedin-insight"},
		{"invalid consent id", set("consent_id", "not-a-uuid"), 400, "invalid", "consent_id"},
		{"upper-case consent id", set("consent_id", strings.ToUpper(uuid.NewString())), 400, "invalid", "consent_id"},
		{"time-based consent id", set("consent_id", uuid.Must(uuid.NewV7()).String()), 400, "invalid", "consent_id"},
		{"unknown action", set("action", "maybe"), 400, "invalid", "action"},
		{"unknown surface", set("surface", "popup"), 400, "invalid", "surface"},
		{"unknown fingerprint", set("fingerprint", "0123456789abcdef"), 400, "invalid", "fingerprint"},
		{"language not of site", set("language", "nl"), 400, "invalid", "language"},
		{"relative url", set("url", "/pricing"), 400, "invalid", "url"},
		{"javascript url", set("url", "javascript:alert(1)"), 400, "invalid", "url"},
		{"url on a host not of the site", set("url", "https://evil.example/pricing"), 400, "invalid", "url"},
		{"url on another site's origin", set("url", "https://www.voxbi.com/"), 400, "invalid", "url"},
		{"body over 8 KiB", set("url", testOrigin+"/"+strings.Repeat("a", 9000)), 413, "too_large", ""},
		{"unsupported content type", func(_ map[string]any, h map[string]string) string {
			h["Content-Type"] = "application/x-www-form-urlencoded"
			return ""
		}, 415, "unsupported_media_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := MustFixture(t, false)
			body := f.validBody(t)
			header := map[string]string{"Origin": testOrigin, "Content-Type": "text/plain"}
			raw := tt.change(body, header)
			if raw == "" {
				raw = MustJSON(t, body)
			}
			rec := f.do(t, http.MethodPost, "/v1/consents", raw, header)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			code, msg := MustErrorBody(t, rec)
			if code != tt.code {
				t.Errorf("code = %q, want %q", code, tt.code)
			}
			if !strings.Contains(msg, tt.names) {
				t.Errorf("message %q does not name %s", msg, tt.names)
			}
			if n := f.store.appends.Load(); n != 0 {
				t.Errorf("%d appends reached the store, want none", n)
			}
		})
	}
}

func TestBodyOverLimitWithoutContentLength(t *testing.T) {
	f := MustFixture(t, false)
	req := httptest.NewRequest(http.MethodPost, "/v1/consents", io.MultiReader(strings.NewReader(`{"site":"`), strings.NewReader(strings.Repeat("x", 10000))))
	req.ContentLength = -1
	req.Header.Set("Origin", testOrigin)
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d, want 413", rec.Code)
	}
	MustErrorBody(t, rec)
}

func TestWrongMethod(t *testing.T) {
	f := MustFixture(t, false)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		t.Run(m, func(t *testing.T) {
			rec := f.do(t, m, "/v1/consents", "", map[string]string{"Origin": testOrigin})
			if rec.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status = %d, want 405", rec.Code)
			}
			if code, _ := MustErrorBody(t, rec); code != "method_not_allowed" {
				t.Errorf("code = %q", code)
			}
		})
	}
	if n := f.store.appends.Load(); n != 0 {
		t.Errorf("%d appends, want none", n)
	}
}

func TestFullQueueAnswers503(t *testing.T) {
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(busyStore{}, server.Options{Keys: storetest.Keys(), Origin: storetest.Origin})
	if err := srv.Load(cfg); err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, cfg: cfg}
	rec := f.post(t, f.validBody(t), nil)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status = %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	if code, _ := MustErrorBody(t, rec); code != "unavailable" {
		t.Errorf("code = %q", code)
	}
}

// busyStore is a store whose write queue is always full.
type busyStore struct{ consent.Store }

func (busyStore) Append(context.Context, *consent.Record) (*consent.Receipt, error) {
	return nil, consent.ErrUnavailable
}

func (busyStore) PutSnapshot(context.Context, *consent.Snapshot) error { return nil }

func TestPreflight(t *testing.T) {
	f := MustFixture(t, false)
	tests := []struct {
		origin string
		status int
		allow  string
	}{
		{testOrigin, http.StatusNoContent, testOrigin},
		{"https://voxbi.team", http.StatusNoContent, "https://voxbi.team"},
		{"https://evil.example", http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			rec := f.do(t, http.MethodOptions, "/v1/consents", "", map[string]string{
				"Origin": tt.origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
			})
			if rec.Code != tt.status || rec.Header().Get("Access-Control-Allow-Origin") != tt.allow {
				t.Fatalf("status %d, allow-origin %q; want %d, %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), tt.status, tt.allow)
			}
			if tt.allow != "" && rec.Header().Get("Access-Control-Max-Age") == "" {
				t.Error("preflight not cacheable: no Access-Control-Max-Age")
			}
		})
	}
}

func TestGetConsentsOldestFirst(t *testing.T) {
	f := MustFixture(t, false)
	body := f.validBody(t)
	var ids []string
	for _, action := range []string{"reject_all", "accept_all", "reject_all"} {
		body["action"] = action
		body["choices"] = f.choices(action == "accept_all")
		rec := f.post(t, body, nil)
		if rec.Code != http.StatusCreated {
			t.Fatalf("%s: %d %s", action, rec.Code, rec.Body)
		}
		var resp struct {
			RecordID string `json:"record_id"`
		}
		json.Unmarshal(rec.Body.Bytes(), &resp)
		ids = append(ids, resp.RecordID)
	}
	rec := f.do(t, http.MethodGet, "/v1/consents/"+body["consent_id"].(string), "", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d", rec.Code)
	}
	var got struct{ Records []consent.Record }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 3 {
		t.Fatalf("%d records, want 3", len(got.Records))
	}
	for i, r := range got.Records {
		if r.ID != ids[i] {
			t.Errorf("record %d = %s, want %s (oldest first)", i, r.ID, ids[i])
		}
	}

	for path, status := range map[string]int{"/v1/consents/" + uuid.NewString(): 404, "/v1/consents/nope": 400} {
		rec := f.do(t, http.MethodGet, path, "", nil)
		if rec.Code != status {
			t.Errorf("GET %s = %d, want %d", path, rec.Code, status)
		}
		MustErrorBody(t, rec)
	}
}

func TestBanner(t *testing.T) {
	f := MustFixture(t, false)
	tests := []struct {
		acceptEncoding, wantEncoding string
	}{
		{"gzip, deflate, br, zstd", "br"},
		{"gzip", "gzip"},
		{"br;q=0.5, gzip;q=0.9", "gzip"},
		{"br;q=0, gzip;q=0", ""},
		{"", ""},
	}
	var etags []string
	for _, tt := range tests {
		t.Run(tt.acceptEncoding, func(t *testing.T) {
			rec := f.do(t, http.MethodGet, "/v1/banner/"+testSite+".js", "", map[string]string{"Accept-Encoding": tt.acceptEncoding})
			h := rec.Header()
			if rec.Code != 200 || h.Get("Content-Encoding") != tt.wantEncoding {
				t.Fatalf("status %d, encoding %q; want 200, %q", rec.Code, h.Get("Content-Encoding"), tt.wantEncoding)
			}
			etag := h.Get("ETag")
			if !strings.HasPrefix(etag, `"`) || !strings.Contains(h.Get("Cache-Control"), "max-age=300") || h.Get("Vary") != "Accept-Encoding, Accept-Language" || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") {
				t.Errorf("headers = %v", h)
			}
			etags = append(etags, etag)
			again := f.do(t, http.MethodGet, "/v1/banner/"+testSite+".js", "", map[string]string{"Accept-Encoding": tt.acceptEncoding, "If-None-Match": etag})
			if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
				t.Errorf("If-None-Match: status %d, %d bytes; want 304, empty", again.Code, again.Body.Len())
			}
		})
	}
	if etags[0] == etags[1] || etags[1] == etags[4] {
		t.Errorf("ETags %v: each encoding needs its own", etags)
	}
	rec := f.do(t, http.MethodGet, "/v1/banner/example.org.js", "", nil)
	if rec.Code != 404 {
		t.Fatalf("unknown site: %d", rec.Code)
	}
	MustErrorBody(t, rec)
}

// TestBannerLanguage: the first-layer script carries the texts of the language the
// browser prefers among the site's; the second layer of each language is served
// beside it.
func TestBannerLanguage(t *testing.T) {
	f := MustFixture(t, true)
	langs := MustConfig(t).Sites[testSite].Languages // en, fr, de
	tests := []struct {
		acceptLanguage, want string
	}{
		{"", langs[0]},
		{"fr-LU,fr;q=0.9,en;q=0.8", "fr"},
		{"ja, de-DE;q=0.5, fr;q=0.4", "de"},
		{"fr;q=0.2, de;q=0.9", "de"},
		{"fr;q=0, ja", langs[0]},
		{"*", langs[0]},
		{"DE", "de"},
	}
	for _, tt := range tests {
		t.Run(tt.acceptLanguage, func(t *testing.T) {
			for _, path := range []string{"/v1/banner/" + testSite + ".js", "/demo/" + testSite + "/banner.js"} {
				rec := f.do(t, http.MethodGet, path, "", map[string]string{"Accept-Language": tt.acceptLanguage})
				if rec.Code != 200 || !strings.Contains(rec.Body.String(), `t:{l:"`+tt.want+`"`) {
					t.Errorf("GET %s with Accept-Language %q: status %d, want 200 and the texts of %s", path, tt.acceptLanguage, rec.Code, tt.want)
				}
			}
		})
	}
	for _, lang := range langs {
		for _, path := range []string{"/v1/banner/" + testSite + "/" + lang + ".js", "/demo/" + testSite + "/banner/" + lang + ".js"} {
			rec := f.do(t, http.MethodGet, path, "", nil)
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `t:{l:"`+lang+`"`) || !strings.Contains(rec.Body.String(), "consent-prefs") {
				t.Errorf("GET %s: status %d, body %.80s; want 200 and the second layer in %s", path, rec.Code, rec.Body, lang)
			}
			if h := rec.Header(); h.Get("Vary") != "Accept-Encoding" || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || h.Get("ETag") == "" {
				t.Errorf("GET %s: headers %v, want a script with an ETag that varies only by encoding", path, h)
			}
		}
	}
	for _, path := range []string{
		"/v1/banner/" + testSite + "/nl.js", // not a language of the site
		"/v1/banner/" + testSite + "/fr.json",
		"/v1/banner/example.org/en.js",
		"/demo/" + testSite + "/banner/nl.js",
		"/demo/example.org/banner/en.js",
	} {
		rec := f.do(t, http.MethodGet, path, "", nil)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
		MustErrorBody(t, rec)
	}
}

func TestDemo(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		f := MustFixture(t, false)
		if rec := f.do(t, http.MethodGet, "/demo/"+testSite, "", nil); rec.Code != 404 {
			t.Errorf("demo page without --demo: %d, want 404", rec.Code)
		}
	})
	t.Run("on", func(t *testing.T) {
		f := MustFixture(t, true)
		rec := f.do(t, http.MethodGet, "/demo/"+testSite, "", nil)
		page := rec.Body.String()
		for _, want := range []string{`<html lang="en">`, `<script src="/demo/mixvoip.com/banner.js" async></script>`, `data-consent-open`, `type="text/plain" data-category="advertising"`} {
			if !strings.Contains(page, want) {
				t.Errorf("demo page lacks %s", want)
			}
		}
		for query, lang := range map[string]string{"?lang=fr": "fr", "?lang=nl": "en", "?lang=%22%3E": "en"} {
			if page := f.do(t, http.MethodGet, "/demo/"+testSite+query, "", nil).Body.String(); !strings.Contains(page, `<html lang="`+lang+`">`) {
				t.Errorf("demo page%s is not in %s", query, lang)
			}
		}
		// The demo page posts from the server's own origin; with demo pages on, that
		// origin is accepted, and a foreign one still is not.
		body := f.validBody(t)
		if rec := f.post(t, body, map[string]string{"Origin": "http://example.com"}); rec.Code != http.StatusCreated {
			t.Errorf("own origin with demo: %d %s", rec.Code, rec.Body)
		}
		if rec := f.post(t, body, map[string]string{"Origin": "http://evil.example"}); rec.Code != http.StatusForbidden {
			t.Errorf("foreign origin with demo: %d", rec.Code)
		}
		js := f.do(t, http.MethodGet, "/demo/"+testSite+"/banner.js", "", nil).Body.String()
		if !strings.Contains(js, "/demo/partner/google-ads.js") || strings.Contains(js, "googletagmanager.com") {
			t.Error("demo banner does not point partner tags at the local fakes")
		}
	})
}

// TestSnapshots: what each banner shows is stored before it is served, so that a
// visitor answering a banner served before a restart and a configuration change is
// still recorded, while a fingerprint never served is not.
func TestSnapshots(t *testing.T) {
	f := MustFixture(t, false)
	site := f.cfg.Sites[testSite]
	old := banner.Fingerprint(site)
	snap, err := f.store.Snapshot(context.Background(), testSite, old)
	if err != nil {
		t.Fatalf("no snapshot of the served banner: %v", err)
	}
	if snap.Policy.Version != site.Policy.Version || len(snap.Texts) != len(site.Languages) || len(snap.BundleHash) != 64 {
		t.Errorf("snapshot = %+v", snap)
	}
	for _, p := range snap.Partners {
		if !p.Enabled || len(p.Tags) != 0 {
			t.Errorf("snapshot partner %s: want enabled partners only, without their tags", p.ID)
		}
	}

	// A restart with meta-pixel switched off: a new server on the same store.
	changed, err := config.Load("../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	changed.Sites[testSite].Partner("meta-pixel").Enabled = false
	restarted := server.New(f.store, server.Options{Keys: storetest.Keys(), Origin: storetest.Origin})
	if err := restarted.Load(changed); err != nil {
		t.Fatal(err)
	}
	g := &fixture{srv: restarted, store: f.store, cfg: f.cfg}
	body := g.validBody(t)
	if banner.Fingerprint(changed.Sites[testSite]) == old || body["fingerprint"] != old {
		t.Fatal("fixture: the fingerprint did not change")
	}
	if rec := g.post(t, body, nil); rec.Code != http.StatusCreated {
		t.Errorf("an answer to the banner served before the restart: %d %s", rec.Code, rec.Body)
	}
}

// TestRefusalsAreReadable: every answer to a decision carries the CORS header that
// lets the page read it, refusals included: a banner that cannot read a 403 takes it
// for a network error and sends the decision again and again.
func TestRefusalsAreReadable(t *testing.T) {
	f := MustFixture(t, false)
	tests := []struct {
		name, origin string
		change       func(map[string]any)
		status       int
	}{
		{"foreign origin", "https://evil.example", nil, http.StatusForbidden},
		{"another site's origin", "https://www.voxbi.com", nil, http.StatusForbidden},
		{"bad input", testOrigin, func(b map[string]any) { b["action"] = "maybe" }, http.StatusBadRequest},
		{"unknown site", testOrigin, func(b map[string]any) { b["site"] = "example.org" }, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := f.validBody(t)
			if tt.change != nil {
				tt.change(body)
			}
			rec := f.post(t, body, map[string]string{"Origin": tt.origin, "Content-Type": "text/plain"})
			if rec.Code != tt.status || rec.Header().Get("Access-Control-Allow-Origin") != tt.origin {
				t.Errorf("status %d, Access-Control-Allow-Origin %q; want %d readable by %s", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), tt.status, tt.origin)
			}
		})
	}
	if n := f.store.appends.Load(); n != 0 {
		t.Errorf("%d appends, want none", n)
	}
	// Reading visitors' records stays with the sites' own origins.
	rec := f.do(t, http.MethodGet, "/v1/consents/"+uuid.NewString(), "", map[string]string{"Origin": "https://evil.example"})
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("GET /v1/consents/{id} from a foreign origin: Access-Control-Allow-Origin %q, want none", got)
	}
}
