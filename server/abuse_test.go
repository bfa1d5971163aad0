package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/storetest"
)

// The attacks an anonymous or a site-limited client can make, each answered as the
// server must: nothing of another site seen, the store's cost bounded, a flood
// limited per client.

// clock is a time that a test moves on.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// auditCounter is the real store, counting the audit transactions and entries that
// reached it.
type auditCounter struct {
	consent.Store
	calls, entries, bytes atomic.Int64
}

func (s *auditCounter) AppendAudit(ctx context.Context, e ...*consent.AuditEntry) error {
	s.calls.Add(1)
	s.entries.Add(int64(len(e)))
	for _, entry := range e {
		b, _ := json.Marshal(entry)
		s.bytes.Add(int64(len(b)))
	}
	return s.Store.AppendAudit(ctx, e...)
}

// MustFreshStore opens a new bbolt store of its own for one test, its log named and
// signed as storetest's.
func MustFreshStore(tb testing.TB) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(filepath.Join(tb.TempDir(), "consent.db"), bolt.Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestAuditLogScope: the audit log names what every token looked at, so a token
// limited to sites reads its own calls only, and it names no consent id in clear:
// an id is the key to its visitor's records at GET /v1/consents/{id}.
func TestAuditLogScope(t *testing.T) {
	base := MustFixture(t, false)
	f, all, voxbi := MustServerOn(t, MustFreshStore(t), base.cfg)
	body := f.validBody(t)
	if rec := f.post(t, body, nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	id := body["consent_id"].(string)
	if rec := f.do(t, http.MethodGet, "/v1/dpo/consents/"+id, "", bearer(all)); rec.Code != http.StatusOK {
		t.Fatalf("proof: %d", rec.Code)
	}
	f.do(t, http.MethodGet, "/v1/dpo/consents/"+id, "", bearer("cdt_guess"))

	for _, path := range []string{"/v1/dpo/verify", "/v1/dpo/backup"} {
		rec := f.do(t, http.MethodGet, path, "", bearer(voxbi))
		if code, _ := MustErrorBody(t, rec); rec.Code != http.StatusForbidden || code != "forbidden" {
			t.Errorf("GET %s with a token limited to voxbi.com: %d %s, want 403: it speaks of every site", path, rec.Code, code)
		}
	}
	var page struct{ Entries []*consent.AuditEntry }
	rec := f.do(t, http.MethodGet, "/v1/dpo/audit?limit=1000", "", bearer(voxbi))
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("audit with a token limited to voxbi.com: %d %s", rec.Code, rec.Body)
	}
	// Its refused calls to verify and backup, none of the other token's.
	if len(page.Entries) != 2 || page.Entries[0].Token != "agency" || page.Entries[1].Token != "agency" {
		t.Errorf("audit with a token limited to voxbi.com: %+v, want its own 2 calls only", page.Entries)
	}
	rec = f.do(t, http.MethodGet, "/v1/dpo/audit?limit=1000", "", bearer(all))
	if rec.Code != http.StatusOK {
		t.Fatalf("audit: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), id) {
		t.Errorf("the audit log names the consent id %s in clear: %s", id, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	lookups := 0
	for _, e := range page.Entries {
		if e.Subject == consent.ConsentDigest(id) {
			lookups++
			if e.Path != "/v1/dpo/consents/{consent_id}" || e.Client != "203.0.113.0/24" {
				t.Errorf("entry %+v: want the path without the id, and the client's prefix", e)
			}
		}
	}
	if lookups != 2 {
		t.Errorf("%d entries about the consent id, want 2 (the proof and the refused guess): %+v", lookups, page.Entries)
	}
	// Whoever holds the id finds the calls about it; that lookup names it by digest
	// too, as does any consent_id in a query.
	rec = f.do(t, http.MethodGet, "/v1/dpo/audit?consent_id="+id, "", bearer(all))
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Entries) != 2 {
		t.Errorf("audit of one consent id: %d %s, want its 2 entries", rec.Code, rec.Body)
	}
	f.do(t, http.MethodGet, "/v1/dpo/records?consent_id="+strings.ToUpper(id), "", bearer(all))
	rec = f.do(t, http.MethodGet, "/v1/dpo/audit?limit=1000", "", bearer(all))
	if body := strings.ToLower(rec.Body.String()); strings.Contains(body, id) {
		t.Errorf("after lookups by query, the audit log names the consent id %s in clear: %s", id, body)
	}
	rec = f.do(t, http.MethodGet, "/v1/dpo/audit?consent_id="+id, "", bearer(all))
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Entries) != 4 {
		t.Errorf("audit of one consent id after lookups by query: %s, want 4 entries", rec.Body)
	}
}

// TestAuditFilterPages: the calls about one consent id come page by page, none
// left out, however the others fall between them.
func TestAuditFilterPages(t *testing.T) {
	base := MustFixture(t, false)
	f, all, _ := MustServerOn(t, MustFreshStore(t), base.cfg)
	id := uuid.NewString()
	for _, path := range []string{"consents/" + id, "consents/" + id, "verify", "consents/" + id, "consents/" + id, "stats", "consents/" + id} {
		f.do(t, http.MethodGet, "/v1/dpo/"+path, "", bearer(all))
	}
	seen, after := 0, ""
	for range 10 {
		rec := f.do(t, http.MethodGet, "/v1/dpo/audit?limit=3&consent_id="+id+"&after="+after, "", bearer(all))
		var page struct {
			Entries []*consent.AuditEntry
			Next    string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			if e.Path == "/v1/dpo/consents/{consent_id}" { // not these lookups, about the id too
				seen++
			}
		}
		if after = page.Next; after == "" {
			break
		}
	}
	if seen != 5 {
		t.Errorf("the pages hold %d calls about the consent id, want its 5", seen)
	}
}

// TestAnonymousFloodCostsTheStoreLittle: calls without a token, from many clients,
// each with a long path, make one audit transaction a minute of bounded size.
func TestAnonymousFloodCostsTheStoreLittle(t *testing.T) {
	base := MustFixture(t, false)
	store := &auditCounter{Store: MustFreshStore(t)}
	now := newClock()
	f, all, _ := MustServerWith(t, store, base.cfg, server.Options{Now: now.Now, AuthFailureLimit: server.Limit{Rate: 1, Burst: 5}})
	long := "/v1/dpo/records?x=" + strings.Repeat("a", 16<<10)
	flood := func(clients, each int) {
		for c := range clients {
			for range each {
				rec := f.doFrom(t, fmt.Sprintf("198.%d.%d.7:4000", c/256, c%256), http.MethodGet, long, "", nil)
				if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusTooManyRequests {
					t.Fatalf("anonymous call: %d, want 401 or 429", rec.Code)
				}
			}
		}
	}
	flood(1000, 20) // 20,000 calls in the first minute
	if n := store.calls.Load(); n != 0 {
		t.Fatalf("%d audit transactions during the first minute of refusals, want none until it ends", n)
	}
	now.Advance(61 * time.Second)
	flood(1, 1)
	// At most 256 clients one by one, and the others together per status (401, 429).
	if calls, entries := store.calls.Load(), store.entries.Load(); calls != 1 || entries > 258 {
		t.Errorf("the first minute's refusals: %d transactions, %d entries; want 1, at most 258", calls, entries)
	}
	if per := store.bytes.Load() / store.entries.Load(); per > 1024 {
		t.Errorf("an audit entry of a refusal takes %d bytes, want at most 1 KiB whatever the path", per)
	}

	rec := f.do(t, http.MethodGet, "/v1/dpo/audit?limit=1000", "", bearer(all))
	var page struct{ Entries []*consent.AuditEntry }
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	counted := 0
	for _, e := range page.Entries {
		if e.Token == "" {
			counted += e.Count
			if len(e.Path) > consent.MaxAuditPath {
				t.Errorf("entry path of %d bytes, want at most %d", len(e.Path), consent.MaxAuditPath)
			}
		}
	}
	if counted != 20001 {
		t.Errorf("the audit log counts %d refused calls, want every one of the 20,001", counted)
	}
}

// TestConsentRateLimit: a client over its limit gets 429 with Retry-After and the
// JSON error, and nothing stored; another client keeps its whole rate.
func TestConsentRateLimit(t *testing.T) {
	base := MustFixture(t, false)
	store := &countingStore{Store: MustFreshStore(t)}
	now := newClock()
	f, _, _ := MustServerWith(t, store, base.cfg, server.Options{Now: now.Now, ConsentLimit: server.Limit{Rate: 1, Burst: 10}})
	post := func(addr string) *httptest.ResponseRecorder {
		return f.doFrom(t, addr, http.MethodPost, "/v1/consents", MustJSON(t, f.validBody(t)), map[string]string{"Origin": testOrigin})
	}
	statuses := map[int]int{}
	for range 30 {
		statuses[post("198.51.100.1:1000").Code]++
	}
	if statuses[201] != 10 || statuses[429] != 20 || store.appends.Load() != 10 {
		t.Errorf("one client, 30 decisions at once with a burst of 10: %v, %d stored; want 10 201, 20 429, 10 stored", statuses, store.appends.Load())
	}
	rec := post("198.51.100.99:1000") // the same /24
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("same prefix: %d, Retry-After %q; want 429 and 1 s", rec.Code, rec.Header().Get("Retry-After"))
	}
	if code, _ := MustErrorBody(t, rec); code != "rate_limited" {
		t.Errorf("code %q, want rate_limited", code)
	}
	for i := range 10 {
		if rec := post("192.0.2.1:1000"); rec.Code != http.StatusCreated {
			t.Fatalf("another client's decision %d: %d, want its whole rate", i, rec.Code)
		}
	}
	now.Advance(2 * time.Second)
	if rec := post("198.51.100.1:1000"); rec.Code != http.StatusCreated {
		t.Errorf("after waiting: %d, want 201", rec.Code)
	}
	for series, want := range map[string]float64{`consentd_rate_limited_total{limit="consent"}`: 21, `consentd_rate_limited_total{limit="auth_failure"}`: 0} {
		if got := f.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// TestAuthFailureRateLimit: a client that keeps guessing tokens is answered 429
// before its guesses are looked at, even a right one, until its failures age.
func TestAuthFailureRateLimit(t *testing.T) {
	base := MustFixture(t, false)
	now := newClock()
	f, all, _ := MustServerWith(t, MustFreshStore(t), base.cfg, server.Options{Now: now.Now, AuthFailureLimit: server.Limit{Rate: 0.1, Burst: 3}})
	const guesser = "198.51.100.1:1000"
	for i := range 3 {
		if rec := f.doFrom(t, guesser, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess")); rec.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, rec.Code)
		}
	}
	rec := f.doFrom(t, guesser, http.MethodGet, "/v1/dpo/verify", "", bearer(all))
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "10" {
		t.Errorf("after 3 failures: %d, Retry-After %q; want 429, 10 s", rec.Code, rec.Header().Get("Retry-After"))
	}
	if code, _ := MustErrorBody(t, rec); code != "rate_limited" {
		t.Errorf("code %q", code)
	}
	if got := f.metric(t, `consentd_rate_limited_total{limit="auth_failure"}`); got != 1 {
		t.Errorf("consentd_rate_limited_total{limit=\"auth_failure\"} = %v after one 429, want 1", got)
	}
	if rec := f.doFrom(t, "192.0.2.1:1000", http.MethodGet, "/v1/dpo/verify", "", bearer(all)); rec.Code != http.StatusOK {
		t.Errorf("another client: %d, want 200", rec.Code)
	}
	for range 50 { // successes never count
		f.doFrom(t, "192.0.2.1:1000", http.MethodGet, "/v1/dpo/verify", "", bearer(all))
	}
	if rec := f.doFrom(t, "192.0.2.1:1000", http.MethodGet, "/v1/dpo/verify", "", bearer(all)); rec.Code != http.StatusOK {
		t.Errorf("a client that only succeeds: %d, want 200", rec.Code)
	}
	now.Advance(10 * time.Second)
	if rec := f.doFrom(t, guesser, http.MethodGet, "/v1/dpo/verify", "", bearer(all)); rec.Code != http.StatusOK {
		t.Errorf("after 10 s: %d, want 200", rec.Code)
	}
}

// TestRateLimitMemoryIsBounded: a million distinct clients leave at most the
// configured number of limits in memory, and the server still limits.
func TestRateLimitMemoryIsBounded(t *testing.T) {
	limits := server.NewClientLimitsForTest(server.Limit{Rate: 1, Burst: 1}, 1000)
	now := time.Now()
	for i := range 1_000_000 {
		client := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		if err := limits.Take(client, now); err != nil {
			t.Fatalf("client %d refused on its first event: %v", i, err)
		}
	}
	if n := limits.Len(); n > 1000 {
		t.Errorf("%d limits kept, want at most 1000", n)
	}
	if err := limits.Take("10.15.66.63", now); consent.ErrorCode(err) != consent.ERateLimited {
		t.Errorf("the last client's second event: %v, want rate_limited", err)
	}
}

// TestDiskGuard: short of disk space, the server refuses new records with 503 and
// Retry-After, before the store fails, and is not ready; the rest still answers.
func TestDiskGuard(t *testing.T) {
	base := MustFixture(t, false)
	store := &countingStore{Store: MustFreshStore(t)}
	// More than any disk has: always short.
	f, all, _ := MustServerWith(t, store, base.cfg, server.Options{Disk: server.DiskGuard{Dir: t.TempDir(), MinFree: 1 << 62}})
	rec := f.post(t, f.validBody(t), nil)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "60" {
		t.Fatalf("a decision, short of disk: %d, Retry-After %q; want 503, 60", rec.Code, rec.Header().Get("Retry-After"))
	}
	if _, msg := MustErrorBody(t, rec); !strings.Contains(msg, "disk space") || store.appends.Load() != 0 {
		t.Errorf("message %q, %d appends; want disk space named, nothing stored", msg, store.appends.Load())
	}
	rec = f.do(t, http.MethodGet, "/readyz", "", nil)
	var ready struct {
		Status string
		Checks map[string]string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ready); err != nil || rec.Code != http.StatusServiceUnavailable || ready.Checks["disk"] == "ok" || ready.Checks["store"] != "ok" {
		t.Errorf("readyz short of disk: %d %s; want 503 naming the disk", rec.Code, rec.Body)
	}
	if rec := f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer(all)); rec.Code != http.StatusOK {
		t.Errorf("the DPO API short of disk: %d, want 200", rec.Code)
	}

	g, _, _ := MustServerWith(t, store, base.cfg, server.Options{Disk: server.DiskGuard{Dir: t.TempDir(), MinFree: 1 << 20}})
	if rec := g.post(t, g.validBody(t), nil); rec.Code != http.StatusCreated {
		t.Errorf("with space left: %d %s", rec.Code, rec.Body)
	}
}

// TestTrustedProxiesExactly: X-Forwarded-For counts from the listed networks only;
// a client on a private or loopback network is not a proxy unless listed.
func TestTrustedProxiesExactly(t *testing.T) {
	base := MustFixture(t, false)
	store := MustFreshStore(t)
	var logs bytes.Buffer
	f, _, _ := MustServerWith(t, store, base.cfg, server.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	tests := []struct {
		remote, want string
	}{
		{"10.1.2.3:4000", "203.0.113.0/24"},    // the listed proxy: the forwarded client
		{"10.2.0.1:4000", "10.2.0.0/24"},       // private, not listed
		{"127.0.0.1:4000", "127.0.0.0/24"},     // loopback, not listed
		{"169.254.1.1:4000", "169.254.1.0/24"}, // link-local, not listed
		{"[fd00::1]:4000", "fd00::/48"},        // unique local, not listed
	}
	for _, tt := range tests {
		t.Run(tt.remote, func(t *testing.T) {
			body := f.validBody(t)
			rec := f.doFrom(t, tt.remote, http.MethodPost, "/v1/consents", MustJSON(t, body), map[string]string{"Origin": testOrigin, "X-Forwarded-For": "203.0.113.9"})
			if rec.Code != http.StatusCreated {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			recs, err := store.RecordsByConsent(context.Background(), body["consent_id"].(string))
			if err != nil || len(recs) != 1 || recs[0].IPPrefix != tt.want {
				t.Errorf("recorded %+v, want the prefix %s", recs, tt.want)
			}
		})
	}
	// The four peers not listed sent X-Forwarded-For: a proxy left out, maybe.
	if m := f.do(t, http.MethodGet, "/metrics", "", nil).Body.String(); !strings.Contains(m, "consentd_untrusted_forwarded_total 4") {
		t.Errorf("metrics do not count the 4 requests forwarded by peers not listed")
	}
	// Said once, with the peer's network: the peer may be a visitor.
	if got := logs.String(); strings.Count(got, "X-Forwarded-For") != 1 || !strings.Contains(got, "peer_network=10.2.0.0/24") || strings.Contains(got, "10.2.0.1") {
		t.Errorf("log:\n%s\nwant one warning naming the network 10.2.0.0/24, not the address 10.2.0.1", got)
	}
}

// TestTokenFileNotLoaded: without a token file, the public endpoints serve on, the
// DPO API answers 503 and /readyz says why; a later good file opens it.
func TestTokenFileNotLoaded(t *testing.T) {
	base := MustFixture(t, false)
	f, all, _ := MustServerOn(t, MustFreshStore(t), base.cfg)
	fresh := server.New(MustFreshStore(t), server.Options{Keys: storetest.Keys(), Origin: storetest.Origin, Logger: slog.New(slog.DiscardHandler)})
	if err := fresh.Load(base.cfg); err != nil {
		t.Fatal(err)
	}
	g := &fixture{srv: fresh, cfg: base.cfg}
	fresh.TokensFailed(fmt.Errorf("tokens.json: invalid character"))
	if rec := g.post(t, g.validBody(t), nil); rec.Code != http.StatusCreated {
		t.Errorf("a decision without a token file: %d", rec.Code)
	}
	rec := g.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer(all))
	if code, msg := MustErrorBody(t, rec); rec.Code != http.StatusServiceUnavailable || code != "unavailable" || !strings.Contains(msg, "token file") {
		t.Errorf("DPO call without a token file: %d %s %q", rec.Code, code, msg)
	}
	rec = g.do(t, http.MethodGet, "/readyz", "", nil)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"tokens":"no token file is loaded`) {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}
	if m := g.do(t, http.MethodGet, "/metrics", "", nil).Body.String(); !strings.Contains(m, "consentd_token_file_loaded 0") {
		t.Errorf("metrics lack consentd_token_file_loaded 0")
	}

	// A token file that breaks later: the last good one serves, and readiness holds.
	f.srv.TokensFailed(fmt.Errorf("tokens.json: unexpected end"))
	if rec := f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer(all)); rec.Code != http.StatusOK {
		t.Errorf("after a failed reload: %d, want the last good tokens to serve", rec.Code)
	}
	rec = f.do(t, http.MethodGet, "/readyz", "", nil)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "did not load") {
		t.Errorf("readyz after a failed reload: %d %s", rec.Code, rec.Body)
	}
	if m := f.do(t, http.MethodGet, "/metrics", "", nil).Body.String(); !strings.Contains(m, "consentd_token_file_loaded 0") {
		t.Errorf("metrics after a failed reload lack consentd_token_file_loaded 0")
	}
}

// TestEraseLimitedToSites: a token limited to a site erases a consent id's records
// there and answers as if there were no others; the records elsewhere keep what
// identifies them.
func TestEraseLimitedToSites(t *testing.T) {
	base := MustFixture(t, false)
	store := MustFreshStore(t)
	f, _, voxbi := MustServerOn(t, store, base.cfg)
	id := uuid.NewString()
	onMixvoip, onVoxbi := f.validBody(t), f.validBodyFor(t, "voxbi.com")
	onMixvoip["consent_id"], onVoxbi["consent_id"] = id, id
	if rec := f.post(t, onMixvoip, nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	if rec := f.post(t, onVoxbi, map[string]string{"Origin": "https://voxbi.com"}); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	rec := f.do(t, http.MethodDelete, "/v1/dpo/consents/"+id, "", bearer(voxbi))
	if rec.Code != http.StatusOK || rec.Body.String() != `{"consent_id":"`+id+`","erased":1,"records":1}`+"\n" {
		t.Errorf("erasure by a voxbi.com token: %d %s; want its one record, nothing about the other", rec.Code, rec.Body)
	}
	recs, err := store.RecordsByConsent(context.Background(), id)
	if err != nil || len(recs) != 2 {
		t.Fatal(recs, err)
	}
	for _, r := range recs {
		if erased := r.IPPrefix == ""; erased != (r.Site == "voxbi.com") {
			t.Errorf("record on %s after the erasure: IP prefix %q", r.Site, r.IPPrefix)
		}
	}
}

// TestLimitDelay: a client over its limit waits for its 429, so that calling in a
// loop gets it a few answers a second; a client that goes away is let go at once.
func TestLimitDelay(t *testing.T) {
	base := MustFixture(t, false)
	const delay = 50 * time.Millisecond
	f, _, _ := MustServerWith(t, MustFreshStore(t), base.cfg, server.Options{AuthFailureLimit: server.Limit{Rate: 1e-6, Burst: 1}, LimitDelay: delay})
	f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess"))
	start := time.Now()
	if rec := f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess")); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("over the limit: %d", rec.Code)
	}
	if waited := time.Since(start); waited < delay {
		t.Errorf("the 429 came after %v, want it held %v", waited, delay)
	}

	g, _, _ := MustServerWith(t, MustFreshStore(t), base.cfg, server.Options{AuthFailureLimit: server.Limit{Rate: 1e-6, Burst: 1}, LimitDelay: time.Hour})
	g.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // gone before its answer: held an hour, this test would time out
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/dpo/verify", nil)
	req.RemoteAddr = "203.0.113.77:51234"
	g.srv.ServeHTTP(httptest.NewRecorder(), req)
}

// TestLimitDelayIsBounded: however many connections a client opens, at most 256 of
// its answers are held; the others come at once.
func TestLimitDelayIsBounded(t *testing.T) {
	base := MustFixture(t, false)
	f, _, _ := MustServerWith(t, MustFreshStore(t), base.cfg, server.Options{AuthFailureLimit: server.Limit{Rate: 1e-6, Burst: 1}, LimitDelay: time.Hour})
	f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/dpo/verify", nil)
			req.RemoteAddr = "203.0.113.77:51234"
			f.srv.ServeHTTP(httptest.NewRecorder(), req)
		})
	}
	wait.MustUntil(t, "256 answers are held", func() (bool, string) { n := server.Held(f.srv); return n == 256, fmt.Sprint(n) })
	// Held an hour, this one would time the test out.
	if rec := f.do(t, http.MethodGet, "/v1/dpo/verify", "", nil); rec.Code != http.StatusTooManyRequests {
		t.Errorf("the 257th: %d, want 429 at once", rec.Code)
	}
	cancel()
	wg.Wait()
}
