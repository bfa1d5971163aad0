package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/store/bolt"
)

// dpoFixture is a running consentd with decisions recorded and two DPO tokens: one
// for every site, one for voxbi.com only.
type dpoFixture struct {
	url              string
	keysDir          string
	allSites, voxbi  string // files holding a token
	changedMind      string // consent id that refused, then accepted, on mixvoip.com
	since            time.Time
	before, after    []string // consent ids of the records before and after since
	mixvoip, voxbiID string   // a consent id on each site, recorded before since
}

// MustDPOFixture records, before since: mixvoip.com reject_all (changedMind) and
// accept_all, voxbi.com accept_all; after since: mixvoip.com accept_all
// (changedMind) and custom.
func MustDPOFixture(tb testing.TB) *dpoFixture {
	tb.Helper()
	m, addr, _ := MustServe(tb, "../../sites.yaml")
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		tb.Fatal(err)
	}
	f := &dpoFixture{url: "http://" + addr, keysDir: m.KeysDir, changedMind: uuid.NewString(), mixvoip: uuid.NewString(), voxbiID: uuid.NewString()}
	post := func(site string, action consent.Action, id string) {
		if status, err := postConsent(addr, cfg, site, action, id); err != nil || status != http.StatusCreated {
			tb.Fatalf("post %s %s: %d, %v", site, action, status, err)
		}
	}
	post("mixvoip.com", consent.ActionRejectAll, f.changedMind)
	post("mixvoip.com", consent.ActionAcceptAll, f.mixvoip)
	post("voxbi.com", consent.ActionAcceptAll, f.voxbiID)
	f.before = []string{f.changedMind, f.mixvoip, f.voxbiID}
	// Not waits: the sleeps put since strictly between the records before it and
	// those after it, whose times the server takes from the same clock, truncated
	// to the millisecond.
	time.Sleep(5 * time.Millisecond)
	f.since = time.Now().UTC()
	time.Sleep(5 * time.Millisecond)
	custom := uuid.NewString()
	post("mixvoip.com", consent.ActionAcceptAll, f.changedMind)
	post("mixvoip.com", consent.ActionCustom, custom)
	f.after = []string{f.changedMind, custom}

	f.allSites = MustTokenFile(tb, m.TokensPath, "dpo")
	// The token file exists now: move its time so that a watcher with coarse
	// timestamps sees the second token too.
	writeLaterFn(tb, m.TokensPath, func() error {
		f.voxbi = MustTokenFile(tb, m.TokensPath, "voxbi", "--sites", "voxbi.com", "--config", m.ConfigPath)
		return nil
	})
	if err := MustReloaded(tb, m.TokensPath); err != nil {
		tb.Fatalf("token file not reloaded: %v", err)
	}
	for _, file := range []string{f.allSites, f.voxbi} {
		if _, _, err := runConsentd("stats", "--url", f.url, "--token-file", file); err != nil {
			tb.Fatalf("stats with %s: %v", filepath.Base(file), err)
		}
	}
	return f
}

// MustTokenFile makes a token with `consentd token add` and saves what it printed,
// as a DPO would, in a file for --token-file.
func MustTokenFile(tb testing.TB, tokensPath, name string, flags ...string) string {
	tb.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"token", "add", name, "--tokens", tokensPath}, flags...), &out, io.Discard); err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), name+".token")
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// MustRun runs a consentd command that must succeed and must write nothing to
// stderr: in tests stderr is no terminal, so not even progress.
func MustRun(tb testing.TB, args ...string) string {
	tb.Helper()
	stdout, stderr, err := runConsentd(args...)
	if err != nil {
		tb.Fatalf("consentd %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	if stderr != "" {
		tb.Errorf("consentd %s wrote to stderr: %q", strings.Join(args, " "), stderr)
	}
	return stdout
}

// dpo returns args with the server's URL and the file of the token for every site.
func (f *dpoFixture) dpo(args ...string) []string {
	return append(args, "--url", f.url, "--token-file", f.allSites)
}

// TestDPOProof: `consentd proof` shows a consent id's records with their receipts
// verified and the banner the visitor saw, as text or as indented JSON.
func TestDPOProof(t *testing.T) {
	f := MustDPOFixture(t)
	t.Run("text", func(t *testing.T) {
		mustProofText(t, f.changedMind, MustRun(t, f.dpo("proof", f.changedMind)...))
	})
	t.Run("--json", func(t *testing.T) {
		mustProofJSON(t, MustRun(t, f.dpo("proof", "--json", f.changedMind)...))
	})
}

// mustProofText checks the proof of id, which refused, then accepted, on
// mixvoip.com.
func mustProofText(tb testing.TB, id, out string) {
	tb.Helper()
	if !strings.HasPrefix(out, "consent "+id+": 2 records, every receipt verified with the keys published for the log "+testOrigin+"\n") {
		tb.Errorf("summary line missing:\n%s", out)
	}
	lines := strings.Split(out, "\n")
	for _, action := range []string{"reject_all", "accept_all"} {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, " "+action+" ") })
		if i < 0 || !strings.Contains(lines[i], "mixvoip.com") || !strings.Contains(lines[i], "verified: leaf ") {
			tb.Errorf("no line for the %s record on mixvoip.com with a verified receipt:\n%s", action, out)
		}
	}
	mustSay(tb, out, "the choices of the refusal and of the consent are not shown", "advertising=no technical=yes", "advertising=yes technical=yes")
	mustSay(tb, out, "the snapshot shown is missing", "  mixvoip.com, banner version ", "policy https://www.mixvoip.com/privacy-policy of 2021-09-13")
}

// mustSay fails tb with what, and out, unless out contains every one of parts.
func mustSay(tb testing.TB, out, what string, parts ...string) {
	tb.Helper()
	for _, part := range parts {
		if !strings.Contains(out, part) {
			tb.Errorf("%s:\n%s", what, out)
			return
		}
	}
}

// mustProofJSON checks the proof of the consent id that refused, then accepted, as
// JSON.
func mustProofJSON(tb testing.TB, out string) {
	tb.Helper()
	var p api.Proof
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		tb.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(p.Records) != 2 || p.Records[0].Action != consent.ActionRejectAll || p.Records[1].Action != consent.ActionAcceptAll {
		tb.Fatalf("records = %+v, want the refusal, then the consent", p.Records)
	}
	for _, r := range p.Records {
		if !r.ReceiptValid || r.Receipt == nil || r.Receipt.Proof == "" {
			tb.Errorf("record %s: receipt_valid %t, receipt %+v", r.ID, r.ReceiptValid, r.Receipt)
		}
	}
	if len(p.Snapshots) != 1 || p.Snapshots[0].Fingerprint != p.Records[0].Fingerprint || len(p.Snapshots[0].Texts) == 0 {
		tb.Errorf("snapshots = %+v, want the one the visitor saw, with its texts", p.Snapshots)
	}
	if !strings.Contains(out, "\n  \"records\": [") {
		tb.Errorf("the JSON is not indented:\n%.200s", out)
	}
}

// TestDPOExport: `consentd export` writes the records its filters select, as NDJSON
// or CSV, to stdout or to a private file that a failed export leaves as it was.
func TestDPOExport(t *testing.T) {
	f := MustDPOFixture(t)
	all := append(slices.Clone(f.before), f.after...)
	tests := []struct {
		name  string
		args  []string
		want  []string // consent ids, in record order
		sites []string // the sites of those records, in order
	}{
		{"everything as NDJSON", nil, all, []string{"mixvoip.com", "mixvoip.com", "voxbi.com", "mixvoip.com", "mixvoip.com"}},
		{"one site as CSV", []string{"--site", "voxbi.com", "--format", "csv"}, []string{f.voxbiID}, []string{"voxbi.com"}},
		{"from a time on as CSV", []string{"--from", f.since.Format(time.RFC3339Nano), "--format", "csv"}, f.after, []string{"mixvoip.com", "mixvoip.com"}},
		{"up to a time", []string{"--to", f.since.Format(time.RFC3339Nano)}, f.before, []string{"mixvoip.com", "mixvoip.com", "voxbi.com"}},
		{"one action on one site", []string{"--action", "accept_all", "--site", "mixvoip.com"}, []string{f.mixvoip, f.changedMind}, []string{"mixvoip.com", "mixvoip.com"}},
		{"nothing selected", []string{"--language", "fr"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := MustRun(t, f.dpo(append([]string{"export"}, tt.args...)...)...)
			ids, sites := MustParseExport(t, out, slices.Contains(tt.args, "csv"))
			if !slices.Equal(ids, tt.want) || !slices.Equal(sites, tt.sites) {
				t.Errorf("exported consent ids %v on %v,\nwant %v on %v", ids, sites, tt.want, tt.sites)
			}
		})
	}
	t.Run("--out", func(t *testing.T) { testExportOut(t, f) })
}

// testExportOut: with --out the export goes to a file private to its owner, and
// nowhere else; a failed export leaves the file as it was.
func testExportOut(t *testing.T, f *dpoFixture) {
	dir := t.TempDir()
	path := filepath.Join(dir, "records.csv")
	if out := MustRun(t, f.dpo("export", "--format", "csv", "--out", path)...); out != "" {
		t.Errorf("with --out, stdout got %q", out)
	}
	ids, _ := MustParseExport(t, MustRead(t, path), true)
	if len(ids) != len(f.before)+len(f.after) {
		t.Errorf("the file holds %d records, want %d", len(ids), len(f.before)+len(f.after))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the export of personal data is not private to its owner: %v, %v", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files left beside the export: %v", entries)
	}

	_, _, err := runConsentd(f.dpo("export", "--site", "nowhere.example", "--out", path)...)
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("export of an unknown site: %v, want a 400", err)
	}
	if ids, _ := MustParseExport(t, MustRead(t, path), true); len(ids) != len(f.before)+len(f.after) {
		t.Error("a failed export changed the file at --out")
	}
}

// TestDPOStats: `consentd stats` counts the decisions per site and day, in an
// aligned table or as JSON, of the sites the token may see.
func TestDPOStats(t *testing.T) {
	f := MustDPOFixture(t)
	// Columns: ACCEPT_ALL, REJECT_ALL, CUSTOM, WITHDRAW, GPC.
	today := f.since.Format(time.DateOnly)
	tests := []struct {
		name string
		args []string
		want []string // the rows, cells separated by one space
	}{
		{"every site", nil, []string{
			"mixvoip.com " + today + " 4 2 (50%) 1 (25%) 1 (25%) 0 (0%) 0 (0%)",
			"voxbi.com " + today + " 1 1 (100%) 0 (0%) 0 (0%) 0 (0%) 0 (0%)",
		}},
		{"one site", []string{"--site", "voxbi.com"}, []string{
			"voxbi.com " + today + " 1 1 (100%) 0 (0%) 0 (0%) 0 (0%) 0 (0%)",
		}},
		{"from a day on", []string{"--site", "mixvoip.com", "--from", today}, []string{
			"mixvoip.com " + today + " 4 2 (50%) 1 (25%) 1 (25%) 0 (0%) 0 (0%)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := MustRun(t, f.dpo(append([]string{"stats"}, tt.args...)...)...)
			if rows := mustStatsRows(t, out, today); !slices.Equal(rows, tt.want) {
				t.Errorf("rows\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}

	t.Run("--json", func(t *testing.T) {
		var s api.Stats
		if err := json.Unmarshal([]byte(MustRun(t, f.dpo("stats", "--json")...)), &s); err != nil {
			t.Fatal(err)
		}
		if len(s.Days) != 2 || s.Days[0].Site != "mixvoip.com" || s.Days[0].Total != 4 || s.Days[0].Counts["accept_all"] != 2 || s.Days[1].Total != 1 {
			t.Errorf("stats = %+v", s.Days)
		}
	})

	t.Run("opt-in rates", func(t *testing.T) {
		out := MustRun(t, f.dpo("stats", "--site", "voxbi.com")...)
		_, rates, _ := strings.Cut(out, "\n\n")
		lines := strings.Split(strings.TrimSuffix(rates, "\n"), "\n")
		if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"SITE", "OPT-IN", "ID", "GRANTED", "DENIED", "RATE"}) {
			t.Fatalf("no opt-in table after the days:\n%s", out)
		}
		// voxbi.com's one decision accepted all: every category and partner at 100 %.
		for _, l := range lines[1:] {
			if f := strings.Fields(l); len(f) != 6 || f[0] != "voxbi.com" || f[3] != "1" || f[4] != "0" || f[5] != "100.0%" {
				t.Errorf("opt-in row %q, want voxbi.com granted once, 100.0%%", l)
			}
		}
		if len(lines) < 3 {
			t.Errorf("opt-in rates of %d categories and partners, want some of each:\n%s", len(lines)-1, out)
		}
	})

	t.Run("a token for one site sees only that site", func(t *testing.T) {
		out := MustRun(t, "stats", "--url", f.url, "--token-file", f.voxbi)
		if !strings.Contains(out, "voxbi.com") || strings.Contains(out, "mixvoip.com") {
			t.Errorf("stats with a voxbi.com token:\n%s", out)
		}
	})
}

// mustStatsRows checks the header of the stats table out and that each row's day
// (today) sits under DAY, and returns the rows, cells separated by one space.
func mustStatsRows(tb testing.TB, out, today string) []string {
	tb.Helper()
	days, _, _ := strings.Cut(out, "\n\n") // the opt-in rates follow
	lines := strings.Split(strings.TrimSuffix(days, "\n"), "\n")
	if got := strings.Fields(lines[0]); !slices.Equal(got, []string{"SITE", "DAY", "TOTAL", "ACCEPT_ALL", "REJECT_ALL", "CUSTOM", "WITHDRAW", "GPC"}) {
		tb.Fatalf("header %q\n%s", got, out)
	}
	var rows []string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Join(strings.Fields(l), " "))
		if strings.Index(l, today) != strings.Index(lines[0], "DAY") {
			tb.Errorf("the table is not aligned:\n%s", out)
		}
	}
	return rows
}

// TestDPOBackup: `consentd backup` copies the store into a private file, or into a
// directory where it keeps the newest copies, and verifies the copy.
func TestDPOBackup(t *testing.T) {
	f := MustDPOFixture(t)
	t.Run("into a file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "copy.db")
		out := MustRun(t, f.dpo("backup", "--out", path)...)
		mustSay(t, out, "backup", path+": OK, log "+testOrigin+": 5 leaves", "5 records verify")
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("the copy: %v, %v; want mode 0600", fi, err)
		}
		mustCopyHolds(t, path, f.keysDir, f.changedMind, 2)
	})

	t.Run("into a directory", func(t *testing.T) {
		dir := t.TempDir()
		MustFiles(t, dir, "consent-2020-01-01T000000Z.db", "consent-2020-01-02T000000Z.db")
		out := MustRun(t, f.dpo("backup", "--dir", dir, "--keep", "2")...)
		names := MustList(t, dir)
		if len(names) != 2 || names[0] != "consent-2020-01-02T000000Z.db" || !strings.Contains(out, filepath.Join(dir, names[1])+": OK, log "+testOrigin+": 5 leaves") {
			t.Errorf("backup --dir --keep 2 left %q and said:\n%s", names, out)
		}
	})
}

// mustCopyHolds checks that the copy at path is a store of its own, which the DPO
// can read without the server: it holds n records of the consent id.
func mustCopyHolds(tb testing.TB, path, keysDir, consentID string, n int) {
	tb.Helper()
	s, err := bolt.Open(path, bolt.Log("", MustKeyring(tb, keysDir)))
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	if recs, err := s.RecordsByConsent(context.Background(), consentID); err != nil || len(recs) != n {
		tb.Errorf("the copy holds %d records of %s, %v; want %d", len(recs), consentID, err, n)
	}
}

// TestDPOErrors: a DPO command that cannot do what it is asked fails saying why, and
// writes nothing to stdout.
func TestDPOErrors(t *testing.T) {
	f := MustDPOFixture(t)
	down := mustDownURL(t)
	wrong := filepath.Join(t.TempDir(), "wrong.token")
	os.WriteFile(wrong, []byte("cdt_not-a-token\n"), 0o600)

	tests := []struct {
		name string
		args []string
		want []string // in the error's message
	}{
		{"no token", []string{"stats", "--url", f.url}, []string{"no DPO token", "CONSENTD_TOKEN", "--token-file"}},
		{"wrong token", []string{"export", "--url", f.url, "--token-file", wrong}, []string{"401 Unauthorized", "a valid bearer token is required"}},
		{"proof of a site the token may not see", []string{"proof", f.mixvoip, "--url", f.url, "--token-file", f.voxbi}, []string{"404 Not Found", "no records for this consent id"}},
		{"export of a site the token may not see", []string{"export", "--site", "mixvoip.com", "--url", f.url, "--token-file", f.voxbi}, []string{"403 Forbidden", "may not see site mixvoip.com"}},
		{"unknown consent id", f.dpo("proof", uuid.NewString()), []string{"404 Not Found", "no records for this consent id"}},
		{"not a consent id", f.dpo("proof", "../keys"), []string{`"../keys" is not a consent id`}},
		{"bad time", f.dpo("stats", "--from", "27/11/2026"), []string{"400 Bad Request", `filter from: "27/11/2026" is not a time`}},
		{"a time of day", f.dpo("stats", "--from", "2026-11-27T13:00:00Z"), []string{"400 Bad Request", "statistics count whole days"}},
		{"bad format", f.dpo("export", "--format", "xlsx"), []string{"400 Bad Request", "csv or ndjson"}},
		{"backup with a token limited to a site", []string{"backup", "--out", filepath.Join(t.TempDir(), "copy.db"), "--url", f.url, "--token-file", f.voxbi}, []string{"403 Forbidden", "needs a token without a site limit"}},
		{"backup without --out", f.dpo("backup"), []string{"either --out FILE or --dir DIR is required"}},
		{"backup with --out and --dir", f.dpo("backup", "--out", "x.db", "--dir", "d"), []string{"either --out FILE or --dir DIR is required"}},
		{"monitor without --dir", []string{"monitor", "--url", f.url}, []string{"--dir DIR is required"}},
		{"server down", []string{"stats", "--url", down, "--token-file", f.allSites}, []string{"cannot reach consentd at " + down, "is it running?"}},
		{"not a URL", []string{"stats", "--url", "localhost:8080", "--token-file", f.allSites}, []string{`--url "localhost:8080"`}},
	}
	t.Setenv("CONSENTD_TOKEN", "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { mustFailSaying(t, tt.args, tt.want...) })
	}
}

// mustDownURL returns the URL of a port on which nothing listens.
func mustDownURL(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	return down
}

// mustFailSaying runs consentd with args, which must fail with an error that says
// every one of want, and write nothing to stdout.
func mustFailSaying(tb testing.TB, args []string, want ...string) {
	tb.Helper()
	stdout, _, err := runConsentd(args...)
	if err == nil {
		tb.Fatalf("no error; stdout:\n%s", stdout)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			tb.Errorf("error %q does not say %q", err, w)
		}
	}
	if stdout != "" {
		tb.Errorf("stdout got %q", stdout)
	}
}

// TestDPOEnvironment: a DPO command takes the server's URL and the token from
// CONSENTD_URL and CONSENTD_TOKEN.
func TestDPOEnvironment(t *testing.T) {
	f := MustDPOFixture(t)
	secret, _, _ := strings.Cut(MustRead(t, f.voxbi), "\n")
	t.Setenv("CONSENTD_URL", f.url)
	t.Setenv("CONSENTD_TOKEN", secret)
	if out := MustRun(t, "stats"); !strings.Contains(out, "voxbi.com") {
		t.Errorf("stats:\n%s", out)
	}
}

// MustParseExport returns the consent ids and sites of an export's records, in order.
func MustParseExport(tb testing.TB, export string, isCSV bool) (ids, sites []string) {
	tb.Helper()
	if isCSV {
		rows, err := csv.NewReader(strings.NewReader(export)).ReadAll()
		if err != nil || len(rows) == 0 || rows[0][1] != "consent_id" || rows[0][2] != "site" {
			tb.Fatalf("not a CSV export with a header: %v\n%s", err, export)
		}
		for _, row := range rows[1:] {
			ids, sites = append(ids, row[1]), append(sites, row[2])
		}
		return ids, sites
	}
	dec := json.NewDecoder(strings.NewReader(export))
	for dec.More() {
		var r consent.Record
		if err := dec.Decode(&r); err != nil {
			tb.Fatalf("not NDJSON records: %v\n%s", err, export)
		}
		ids, sites = append(ids, r.ConsentID), append(sites, r.Site)
	}
	return ids, sites
}

// TestCopyExport counts the records of an export as they pass, CSV fields with
// newlines and quotes included, and tells an export cut short mid-record.
func TestCopyExport(t *testing.T) {
	tests := []struct {
		name    string
		csv     bool
		body    string
		records int
		cut     bool
	}{
		{"NDJSON", false, "{\"ua\":\"a \\\"b\\\"\\nc\"}\n{}\n{}\n", 3, false},
		{"empty NDJSON", false, "", 0, false},
		{"CSV, a newline and quotes in quoted fields", true, "id,ua\n1,\"Mozilla \"\"x\"\"\nnext line\"\n2,plain\n", 2, false},
		{"CSV header only", true, "id,ua\n", 0, false},
		{"NDJSON cut short", false, "{}\n{\"site\":\"mix", 1, true},
		{"CSV cut short in a quoted field", true, "id,ua\n1,a\n2,\"Moz", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst, progress bytes.Buffer
			m := newMeter(&progress, int64(len(tt.body)))
			err := copyExport(&dst, strings.NewReader(tt.body), tt.csv, m)
			if dst.String() != tt.body {
				t.Errorf("copied %q, want %q", dst.String(), tt.body)
			}
			if cut := err != nil && strings.Contains(err.Error(), "cut short"); cut != tt.cut || (err != nil && !tt.cut) {
				t.Errorf("err = %v, want cut short: %t", err, tt.cut)
			}
			line := progress.String()
			if want := fmt.Sprintf("%d records", tt.records); !strings.Contains(line, want) || !strings.HasSuffix(line, "\n") || !strings.HasPrefix(line, "\r") {
				t.Errorf("progress %q, want one final line with %q", line, want)
			}
			if tt.body != "" && !strings.Contains(line, "100%") {
				t.Errorf("progress %q: the Content-Length is known, want 100%%", line)
			}
		})
	}
}
