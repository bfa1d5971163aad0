package server_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/storetest"
)

// MustServerOn returns a fixture that serves cfg on store, with MustTokens' tokens.
func MustServerOn(tb testing.TB, store consent.Store, cfg *config.Config) (f *fixture, all, voxbi string) {
	tb.Helper()
	return MustServerWith(tb, store, cfg, server.Options{})
}

// MustServerWith is MustServerOn with opts; the keys and a silent logger are filled
// in unless opts has them.
func MustServerWith(tb testing.TB, store consent.Store, cfg *config.Config, opts server.Options) (f *fixture, all, voxbi string) {
	tb.Helper()
	if opts.Keys == nil {
		opts.Keys, opts.Origin = storetest.Keys(), storetest.Origin
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv := server.New(store, opts)
	if err := srv.Load(cfg); err != nil {
		tb.Fatal(err)
	}
	f = &fixture{srv: srv, cfg: cfg}
	all, voxbi = MustTokens(tb, f)
	return f, all, voxbi
}

// MustTokens gives f's server a token for every site and one for voxbi.com only.
func MustTokens(tb testing.TB, f *fixture) (all, voxbi string) {
	tb.Helper()
	ts := &auth.Tokens{}
	all, err := ts.Add("dpo", nil, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	if voxbi, err = ts.Add("agency", []string{"voxbi.com"}, time.Now()); err != nil {
		tb.Fatal(err)
	}
	f.srv.SetTokens(ts)
	return all, voxbi
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

func TestDPOAuth(t *testing.T) {
	f := MustFixture(t, false)
	all, _ := MustTokens(t, f)
	for _, header := range []map[string]string{nil, bearer("cdt_wrong"), bearer(""), {"Authorization": "Basic " + all}} {
		rec := f.do(t, http.MethodGet, "/v1/dpo/verify", "", header)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("%v: status %d, want 401 with WWW-Authenticate", header, rec.Code)
		}
		if code, _ := MustErrorBody(t, rec); code != "unauthorized" {
			t.Errorf("code %q", code)
		}
	}
	// The scheme's name is case-insensitive.
	if rec := f.do(t, http.MethodGet, "/v1/dpo/verify", "", map[string]string{"Authorization": "bearer " + all}); rec.Code != http.StatusOK {
		t.Errorf("lower-case bearer: status %d, want 200", rec.Code)
	}
}

func TestDPOProof(t *testing.T) {
	f := MustFixture(t, false)
	all, voxbi := MustTokens(t, f)
	body := f.validBody(t)
	if rec := f.post(t, body, nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	id := body["consent_id"].(string)

	rec := f.do(t, http.MethodGet, "/v1/dpo/consents/"+id, "", bearer(all))
	var proof struct {
		Records []struct {
			RecordID     string `json:"record_id"`
			ReceiptValid bool   `json:"receipt_valid"`
		}
		Snapshots []consent.Snapshot
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &proof); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("status %d, %s", rec.Code, rec.Body)
	}
	if len(proof.Records) != 1 || !proof.Records[0].ReceiptValid {
		t.Errorf("records = %+v, want one with a valid receipt", proof.Records)
	}
	if len(proof.Snapshots) != 1 || proof.Snapshots[0].Fingerprint != body["fingerprint"] {
		t.Errorf("snapshots = %+v, want the one the visitor saw", proof.Snapshots)
	}

	// A token limited to another site learns nothing, not even that the id exists.
	if rec := f.do(t, http.MethodGet, "/v1/dpo/consents/"+id, "", bearer(voxbi)); rec.Code != http.StatusNotFound {
		t.Errorf("a token for voxbi.com on a mixvoip.com consent: %d, want 404", rec.Code)
	} else if _, msg := MustErrorBody(t, rec); msg != "no records for this consent id" {
		t.Errorf("a token for voxbi.com on a mixvoip.com consent: %q, want the answer to an unknown id", msg)
	}
	fp := banner.Fingerprint(f.cfg.Sites[testSite])
	if rec := f.do(t, http.MethodGet, "/v1/dpo/snapshots/"+fp, "", bearer(all)); rec.Code != http.StatusOK {
		t.Errorf("snapshot: %d", rec.Code)
	}
	if rec := f.do(t, http.MethodGet, "/v1/dpo/snapshots/"+fp, "", bearer(voxbi)); rec.Code != http.StatusNotFound {
		t.Errorf("snapshot of another site's banner: %d, want 404", rec.Code)
	}
	rec = f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer(all))
	var v consent.Verification
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || !v.OK || v.Records == 0 {
		t.Errorf("verify: %s", rec.Body)
	}
}

// TestDPOAudit: every DPO call is on record, refused ones included.
func TestDPOAudit(t *testing.T) {
	f := MustFixture(t, false)
	all, _ := MustTokens(t, f)
	f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess"))
	f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer(all))
	var entries []*consent.AuditEntry
	after := ""
	for {
		rec := f.do(t, http.MethodGet, "/v1/dpo/audit?limit=2&after="+after, "", bearer(all))
		var page struct {
			Entries []*consent.AuditEntry
			Next    string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("audit: %d %s", rec.Code, rec.Body)
		}
		entries = append(entries, page.Entries...)
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	var refused, verified bool
	for _, e := range entries {
		refused = refused || (e.Token == "" && e.Status == http.StatusUnauthorized && e.Path == "/v1/dpo/verify")
		verified = verified || (e.Token == "dpo" && e.Status == http.StatusOK && e.Path == "/v1/dpo/verify")
	}
	if !refused || !verified {
		t.Errorf("audit log lacks the refused or the accepted call: %+v", entries)
	}
	if rec := f.do(t, http.MethodGet, "/v1/dpo/audit?limit=0", "", bearer(all)); rec.Code != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", rec.Code)
	}
}

// TestDPORecordsAndExport: pages of records without duplicates or gaps, bad filters
// refused by name, and exports in CSV and NDJSON that keep commas, quotes and
// non-ASCII intact.
func TestDPORecordsAndExport(t *testing.T) {
	f := MustFixture(t, false)
	all, voxbi := MustTokens(t, f)
	from := time.Now().UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
	ua := `Mozilla/5.0 "quoted", with commas; ünïcode — 日本`
	var posted []string
	for range 25 {
		body := f.validBody(t)
		rec := f.post(t, body, map[string]string{"Origin": testOrigin, "User-Agent": ua})
		if rec.Code != http.StatusCreated {
			t.Fatal(rec.Body)
		}
		posted = append(posted, body["consent_id"].(string))
	}

	var paged []string
	after := ""
	for range 100 {
		rec := f.do(t, http.MethodGet, "/v1/dpo/records?site="+testSite+"&action=reject_all&from="+from+"&limit=4&after="+after, "", bearer(all))
		var page struct {
			Records []consent.Record
			Next    string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != http.StatusOK {
			t.Fatalf("records: %d %s", rec.Code, rec.Body)
		}
		for _, r := range page.Records {
			paged = append(paged, r.ConsentID)
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if !containsInOrder(paged, posted) || len(paged) != len(posted) {
		t.Errorf("pages gave %d records, want the %d posted, each once, in order", len(paged), len(posted))
	}

	for _, tt := range []struct{ query, filter string }{
		{"site=example.org", "site"}, {"from=yesterday", "from"}, {"to=2026-13-01", "to"},
		{"from=2026-02-01&to=2026-01-01", "from"}, {"action=maybe", "action"}, {"limit=0", "limit"},
	} {
		rec := f.do(t, http.MethodGet, "/v1/dpo/records?"+tt.query, "", bearer(all))
		if _, msg := MustErrorBody(t, rec); rec.Code != http.StatusBadRequest || !strings.Contains(msg, "filter "+tt.filter) {
			t.Errorf("%s: %d %q, want 400 naming filter %s", tt.query, rec.Code, msg, tt.filter)
		}
	}
	if rec := f.do(t, http.MethodGet, "/v1/dpo/records?site="+testSite, "", bearer(voxbi)); rec.Code != http.StatusForbidden {
		t.Errorf("a voxbi.com token asking for %s: %d, want 403", testSite, rec.Code)
	}

	rec := f.do(t, http.MethodGet, "/v1/dpo/export?format=csv&site="+testSite+"&from="+from, "", bearer(all))
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil || rec.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("CSV export: %v", err)
	}
	if len(rows) != len(posted)+1 || rows[0][0] != "record_id" || rows[1][14] != ua {
		t.Errorf("CSV: %d rows, user agent %q; want %d rows and the user agent intact", len(rows), rows[1][14], len(posted)+1)
	}

	rec = f.do(t, http.MethodGet, "/v1/dpo/export?format=ndjson&site="+testSite+"&from="+from, "", bearer(all))
	lines := strings.Split(strings.TrimSuffix(rec.Body.String(), "\n"), "\n")
	var r consent.Record
	if len(lines) != len(posted) || json.Unmarshal([]byte(lines[0]), &r) != nil || r.UserAgent != ua {
		t.Errorf("NDJSON: %d lines, first %q", len(lines), lines[0])
	}
	if rec := f.do(t, http.MethodGet, "/v1/dpo/export?format=xml", "", bearer(all)); rec.Code != http.StatusBadRequest {
		t.Errorf("format=xml: %d, want 400", rec.Code)
	}
}

// containsInOrder reports whether every element of want is in got, in order.
func containsInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestDPOStatsAndErasure(t *testing.T) {
	f := MustFreshFixture(t)
	all, voxbi := MustTokens(t, f)
	from := time.Now().UTC().Format(time.DateOnly)
	var last string
	for i := range 4 {
		body := f.validBody(t)
		if i == 0 {
			body["action"] = "accept_all"
			body["choices"] = f.choices(true)
		}
		if rec := f.post(t, body, nil); rec.Code != http.StatusCreated {
			t.Fatal(rec.Body)
		}
		last = body["consent_id"].(string)
	}
	type tally struct {
		Granted, Denied int
		OptInRate       float64 `json:"opt_in_rate"`
	}
	type siteStats struct {
		Site       string
		Day        string
		Total      int
		Counts     map[string]int
		Shares     map[string]float64
		Categories map[string]tally
		Partners   map[string]tally
	}
	rec := f.do(t, http.MethodGet, "/v1/dpo/stats?site="+testSite+"&from="+from, "", bearer(all))
	var stats struct{ Days, Totals []siteStats }
	if err := json.Unmarshal(rec.Body.Bytes(), &stats); err != nil || len(stats.Days) == 0 || len(stats.Totals) != 1 {
		t.Fatalf("stats: %s", rec.Body)
	}
	total, accepted := 0, 0
	for _, d := range stats.Days {
		total += d.Total
		accepted += d.Counts["accept_all"]
		if _, ok := d.Counts["gpc"]; !ok || d.Shares["reject_all"] > 1 {
			t.Errorf("day %+v: every action counted, shares at most 1", d)
		}
	}
	sum := stats.Totals[0]
	if total != 4 || accepted != 1 || sum.Total != 4 || sum.Counts["accept_all"] != 1 || sum.Day != "" {
		t.Errorf("stats count %d decisions, %d accept_all, and over the days %+v; want 4 and 1", total, accepted, sum)
	}
	// One visitor of four accepted all: every optional category and partner at 25 %.
	for id, tl := range sum.Partners {
		if tl.Granted != 1 || tl.Denied != 3 || tl.OptInRate != 0.25 {
			t.Errorf("partner %s: %+v, want granted by 1 of 4", id, tl)
		}
	}
	if len(sum.Partners) == 0 || len(sum.Categories) == 0 {
		t.Errorf("no opt-in rates per category or partner: %+v", sum)
	}
	if rec := f.do(t, http.MethodGet, "/v1/dpo/stats?from="+time.Now().UTC().Format(time.RFC3339), "", bearer(all)); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "whole days") {
		t.Errorf("stats from a time of day: %d %s, want 400 saying they count whole days", rec.Code, rec.Body)
	}

	if rec := f.do(t, http.MethodDelete, "/v1/dpo/consents/"+last, "", bearer(voxbi)); rec.Code != http.StatusNotFound {
		t.Errorf("erasure with a token of another site: %d, want 404, as for an unknown id", rec.Code)
	}
	if rec := f.do(t, http.MethodDelete, "/v1/dpo/consents/"+last, "", bearer(all)); rec.Code != http.StatusOK {
		t.Fatalf("erasure: %d %s", rec.Code, rec.Body)
	}
	var proof struct {
		Records []struct {
			consent.Record
			ReceiptValid bool `json:"receipt_valid"`
		}
	}
	json.Unmarshal(f.do(t, http.MethodGet, "/v1/dpo/consents/"+last, "", bearer(all)).Body.Bytes(), &proof)
	if len(proof.Records) != 1 || proof.Records[0].UserAgent != "" || proof.Records[0].IPPrefix != "" || proof.Records[0].URL != "" ||
		!proof.Records[0].ReceiptValid || proof.Records[0].Action != consent.ActionRejectAll {
		t.Errorf("after erasure: %+v; want the decision and a valid receipt without IP, user agent, URL", proof.Records)
	}
	var v consent.Verification
	json.Unmarshal(f.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer(all)).Body.Bytes(), &v)
	if !v.OK {
		t.Errorf("after erasure the chain does not verify: %+v", v)
	}
}

// TestEraseUnaudited: an erasure whose audit entry cannot be written is refused
// before it acts: the visitor's records keep what identifies them until an erasure
// is on record.
func TestEraseUnaudited(t *testing.T) {
	base := MustFixture(t, false)
	store := &faultyStore{Store: base.store}
	f, all, _ := MustServerOn(t, store, base.cfg)
	body := f.validBody(t)
	if rec := f.post(t, body, nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	id := body["consent_id"].(string)

	store.auditFault = errors.New("disk full")
	if rec := f.do(t, http.MethodDelete, "/v1/dpo/consents/"+id, "", bearer(all)); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("erasure without an audit entry: status %d, want 503", rec.Code)
	}
	store.auditFault = nil
	recs, err := base.store.RecordsByConsent(context.Background(), id)
	if err != nil || len(recs) != 1 || recs[0].IPPrefix == "" {
		t.Errorf("records after the refused erasure: %+v, %v; want them whole", recs, err)
	}
}
