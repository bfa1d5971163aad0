package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	bbolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/client"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/wait"
)

func TestCheck(t *testing.T) {
	var out bytes.Buffer
	if err := check([]string{"../../sites.yaml"}, &out); err != nil {
		t.Fatalf("shipped sites.yaml: %v", err)
	}
	if !strings.Contains(out.String(), "is valid") {
		t.Errorf("output = %q", out.String())
	}
	// The shipped account ids are placeholders: warned about, each on its line, and
	// counted on the last line, which still says valid.
	shipped := MustRead(t, "../../sites.yaml")
	at := strings.Count(shipped[:strings.Index(shipped, "google-ads: { enabled: true, account: AW-000000001 }")], "\n") + 1
	warning := fmt.Sprintf(`../../sites.yaml:%d: warning: partner google-ads on mixvoip.com: account "AW-000000001" looks like a placeholder; its tag will report nothing until you put the real id`, at)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if !slices.Contains(lines, warning) || strings.Count(out.String(), ": warning: ") != 11 {
		t.Errorf("output:\n%s\nwant 11 warnings, among them\n%s", out.String(), warning)
	}
	if last := lines[len(lines)-1]; last != "../../sites.yaml is valid (4 sites), with 11 warnings" {
		t.Errorf("last line = %q", last)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	data := strings.Replace(MustRead(t, "../../sites.yaml"), "    category: advertising\n", "    category: adverts\n", 1)
	if err := os.WriteFile(bad, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"check", bad}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), bad+":") || !strings.Contains(err.Error(), `unknown category "adverts"`) {
		t.Fatalf("err = %v, want file:line: unknown category", err)
	}
}

// TestServeShutdownKeepsAcknowledgedWrites posts consents while the server shuts
// down: every one answered 201 must be in the database afterwards.
func TestServeShutdownKeepsAcknowledgedWrites(t *testing.T) {
	// Every post comes from this one client: no limit, or most would be refused.
	m, addr, stop := mustServeIn(t, "../../sites.yaml", t.TempDir(), "--consent-limit", "0")
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
		// stop's error, once the server has shut down while the posts go on.
		stopped = make(chan error, 1)
	)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				id := uuid.NewString()
				status, err := postConsent(addr, cfg, "mixvoip.com", consent.ActionRejectAll, id)
				if err != nil || status != http.StatusCreated {
					return // the server has stopped taking requests
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
				if i == 0 && j == 20 {
					go func() { stopped <- stop() }()
				}
			}
		}()
	}
	wg.Wait()
	if err := <-stopped; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if len(acked) < 20 {
		t.Fatalf("only %d consents acknowledged", len(acked))
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--db", m.DBPath, "--keys", m.KeysDir}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "OK, log "+testOrigin+": ") || !strings.Contains(out.String(), "rebuilt into the tree its signed checkpoint vouches for") {
		t.Errorf("consentd verify after shutdown: %v, %s", err, out.String())
	}
	store := MustOpenStore(t, m)
	for _, id := range acked {
		records, err := store.RecordsByConsent(context.Background(), id)
		if err != nil || len(records) != 1 {
			t.Fatalf("acknowledged consent %s: %d records, %v", id, len(records), err)
		}
	}
}

// TestVerifyReportsTampering: a record deleted behind consentd's back is reported,
// with a non-zero exit.
func TestVerifyReportsTampering(t *testing.T) {
	m, _, stop := MustServeWithRefusals(t, 5)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(m.DBPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket([]byte("records")).Cursor().First()
		return tx.Bucket([]byte("records")).Delete(k)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(context.Background(), []string{"verify", "--db", m.DBPath, "--keys", m.KeysDir}, &out, io.Discard)
	if !errors.Is(err, errBroken) || !strings.Contains(out.String(), "BROKEN at leaf 0 (record ") || !strings.Contains(out.String(), "was deleted: no signed purge covers it") {
		t.Errorf("verify of a tampered file: %v, %q", err, out.String())
	}
}

// TestConfigReload switches a partner off in the file: the banner changes without a
// restart, and a broken file afterwards leaves the last good one serving.
func TestConfigReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sites.yaml")
	original := MustRead(t, "../../sites.yaml")
	if err := os.WriteFile(path, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr, _ := MustServe(t, path)
	before := bannerETag(t, addr)

	switched := strings.Replace(original, `meta-pixel: { enabled: true, account: "000000000000001" }`, `meta-pixel: { enabled: false, account: "000000000000001" }`, 1)
	if switched == original {
		t.Fatal("fixture: meta-pixel line not found")
	}
	writeLater(t, path, switched)
	if err := MustReloaded(t, path); err != nil {
		t.Fatalf("switched sites.yaml not reloaded: %v", err)
	}
	after := bannerETag(t, addr)
	if after == before {
		t.Fatalf("banner ETag %s unchanged after the reload", after)
	}

	writeLater(t, path, "sites: [")
	if err := MustReloaded(t, path); err == nil {
		t.Fatal("a broken sites.yaml reloaded without an error")
	}
	if got := bannerETag(t, addr); got != after {
		t.Errorf("a broken sites.yaml changed what is served: ETag %s, want %s", got, after)
	}
}

// TestKeys: a fresh installation gets a signing key, keygen adds one, GET /v1/keys
// publishes both, and a key that others may read stops the start.
func TestKeys(t *testing.T) {
	m, addr, stop := MustServe(t, "../../sites.yaml")
	first := publishedKeys(t, addr)
	if len(first) != 1 {
		t.Fatalf("published keys = %v, want the one generated at start", first)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(context.Background(), []string{"keygen", "--keys", m.KeysDir}, &out, io.Discard); err != nil {
		t.Fatalf("keygen: %v", err)
	}
	if !strings.Contains(out.String(), "new signing key ed25519-") {
		t.Errorf("keygen printed %q", out.String())
	}
	m2 := NewMain(io.Discard, io.Discard)
	m2.ParseFlags([]string{"--addr", "127.0.0.1:0", "--config", m.ConfigPath, "--db", m.DBPath, "--keys", m.KeysDir, "--tokens", m.TokensPath})
	addr, stop = MustStart(t, m2)
	if keys := publishedKeys(t, addr); len(keys) != 2 || keys[0] != first[0] {
		t.Errorf("after keygen published keys = %v, want the old one and a new one", keys)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	files, _ := filepath.Glob(filepath.Join(m.KeysDir, "*.key"))
	if err := os.Chmod(files[0], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m2.Run(context.Background()); err == nil {
		t.Fatal("Run with a world-readable key serves, want a refusal")
	} else if !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("Run with a world-readable key: %v, want a refusal", err)
	}
}

func publishedKeys(tb testing.TB, addr string) []string {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/v1/keys")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Keys []struct {
			ID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, k := range body.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// TestTokens: a token made with `consentd token add` while consentd runs opens the
// DPO API within seconds; revoked, it no longer does.
func TestTokens(t *testing.T) {
	m, addr, _ := MustServe(t, "../../sites.yaml")
	var out, note bytes.Buffer
	if err := run(context.Background(), []string{"token", "add", "dpo", "--tokens", m.TokensPath}, &out, &note); err != nil {
		t.Fatal(err)
	}
	// Only the token on stdout: `token add dpo > file` keeps nothing else.
	secret := strings.TrimSuffix(out.String(), "\n")
	if strings.ContainsAny(secret, " \n") || !strings.HasPrefix(secret, "cdt_") || !strings.Contains(note.String(), "shown only now") {
		t.Errorf("token add: stdout %q, stderr %q; want the token alone on stdout, the note on stderr", out.String(), note.String())
	}
	if err := MustReloaded(t, m.TokensPath); err != nil {
		t.Fatalf("token file not reloaded: %v", err)
	}
	if s := verifyStatus(t, addr, secret); s != http.StatusOK {
		t.Errorf("a new token: %d, want 200", s)
	}
	out.Reset()
	if err := run(context.Background(), []string{"token", "list", "--tokens", m.TokensPath}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "dpo") || strings.Contains(out.String(), secret) {
		t.Errorf("token list: %v\n%s", err, out.String())
	}
	writeLaterFn(t, m.TokensPath, func() error {
		return run(context.Background(), []string{"token", "revoke", "dpo", "--tokens", m.TokensPath}, io.Discard, io.Discard)
	})
	if err := MustReloaded(t, m.TokensPath); err != nil {
		t.Fatalf("token file not reloaded: %v", err)
	}
	if s := verifyStatus(t, addr, secret); s != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d, want 401", s)
	}

	// The name of a revoked token may be used again; the list shows the active one.
	if _, _, err := runConsentd("token", "add", "dpo", "--tokens", m.TokensPath); err != nil {
		t.Fatal(err)
	}
	list := MustRun(t, "token", "list", "--tokens", m.TokensPath)
	if n := strings.Count(list, "\ndpo "); n != 1 {
		t.Errorf("token list after revoking and adding dpo again shows it %d times, want once:\n%s", n, list)
	}
	if all := MustRun(t, "token", "list", "--all", "--tokens", m.TokensPath); strings.Count(all, "\ndpo ") != 2 {
		t.Errorf("token list --all: want the revoked and the active one:\n%s", all)
	}
}

// TestTokenAddChecksSites: `token add --sites` takes only sites of the configuration,
// each once, and refuses when it cannot read the configuration; a refused token is
// not saved.
func TestTokenAddChecksSites(t *testing.T) {
	t.Parallel()
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte("sites: ["), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags []string
		want  string // part of the refusal, "" if the token is made
	}{
		{"known sites", []string{"--sites", "voxbi.com,mixvoip.com", "--config", "../../sites.yaml"}, ""},
		{"spaces after commas", []string{"--sites", "voxbi.com, mixvoip.com", "--config", "../../sites.yaml"}, ""},
		{"unknown site", []string{"--sites", "voxbi.com,voxbi.cmo", "--config", "../../sites.yaml"},
			`unknown site "voxbi.cmo"; ../../sites.yaml has mixvoip.com, mixvoip.org, voxbi.com, voxbi.team`},
		{"unknown sites", []string{"--sites", "voxbi.cmo,mixvoip.com,www.voxbi.com", "--config", "../../sites.yaml"}, `unknown sites "voxbi.cmo", "www.voxbi.com";`},
		{"empty name", []string{"--sites", "voxbi.com,,mixvoip.com", "--config", "../../sites.yaml"}, `an empty site name`},
		{"trailing comma", []string{"--sites", "voxbi.com,", "--config", "../../sites.yaml"}, `an empty site name`},
		{"twice", []string{"--sites", "voxbi.com,mixvoip.com,voxbi.com", "--config", "../../sites.yaml"}, `voxbi.com is named twice`},
		{"no configuration", []string{"--sites", "voxbi.com", "--config", filepath.Join(t.TempDir(), "sites.yaml")}, `cannot check the site names`},
		{"configuration with errors", []string{"--sites", "voxbi.com", "--config", broken}, broken + ":1: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tokens := filepath.Join(t.TempDir(), "tokens.json")
			_, _, err := runConsentd(append([]string{"token", "add", "voxbi", "--tokens", tokens}, tt.flags...)...)
			list, _, _ := runConsentd("token", "list", "--tokens", tokens)
			switch {
			case tt.want == "" && (err != nil || !strings.Contains(list, "voxbi.com,mixvoip.com")):
				t.Errorf("token add: %v; token list:\n%s", err, list)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("token add: %v, want a refusal with %q", err, tt.want)
			case tt.want != "" && strings.Contains(list, "voxbi"):
				t.Errorf("a refused token was saved:\n%s", list)
			}
		})
	}
}

// TestTokenAddSitesUsesConsentdConfig: without --config, the site names are checked
// against the configuration consentd serve would use.
func TestTokenAddSitesUsesConsentdConfig(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	t.Setenv("CONSENTD_CONFIG", "")
	// The tests run in cmd/consentd, where there is no sites.yaml.
	if _, _, err := runConsentd("token", "add", "voxbi", "--tokens", tokens, "--sites", "voxbi.com"); err == nil || !strings.Contains(err.Error(), "sites.yaml") {
		t.Errorf("token add with no sites.yaml: %v, want a refusal naming sites.yaml", err)
	}
	t.Setenv("CONSENTD_CONFIG", "../../sites.yaml")
	if _, _, err := runConsentd("token", "add", "voxbi", "--tokens", tokens, "--sites", "voxbi.com"); err != nil {
		t.Errorf("token add with $CONSENTD_CONFIG: %v", err)
	}
}

// writeLaterFn runs write, then moves the file's modification time a second past the
// last one, so that a watcher with coarse timestamps sees the change.
func writeLaterFn(tb testing.TB, path string, write func() error) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := write(); err != nil {
		tb.Fatal(err)
	}
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		tb.Fatal(err)
	}
}

// writeLater replaces the file at path with data, with a modification time that
// differs from the last one even on file systems with coarse timestamps. The file
// changes at once, by a rename, as an editor saves: a watcher never reads half of it.
func writeLater(tb testing.TB, path, data string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	next := path + ".next"
	if err := os.WriteFile(next, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(next, later, later); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(next, path); err != nil {
		tb.Fatal(err)
	}
}

// reloads hears the reload attempts of every Main the tests serve. Each test
// watches files of its own (in t.TempDir), so the last attempt on each file is all
// that a test waits for.
var reloads = &reloadLog{last: map[string]reloadAttempt{}, next: make(chan struct{})}

type reloadLog struct {
	mu   sync.Mutex
	last map[string]reloadAttempt // by path
	next chan struct{}            // closed at the next attempt
}

type reloadAttempt struct {
	modTime time.Time
	err     error
}

func (l *reloadLog) record(path string, modTime time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last[path] = reloadAttempt{modTime, err}
	close(l.next)
	l.next = make(chan struct{})
}

// MustReloaded waits until consentd has reloaded the file at path as it is now, and
// returns why that failed, or nil if it now serves. Change the file so that its
// modification time moves (writeLater), or the wait may end at an earlier attempt.
func MustReloaded(tb testing.TB, path string) error {
	tb.Helper()
	want := modTime(path)
	timeout := wait.Timeout(tb)
	for {
		reloads.mu.Lock()
		got, ok := reloads.last[path]
		next := reloads.next
		reloads.mu.Unlock()
		if ok && got.modTime.Equal(want) {
			return got.err
		}
		select {
		case <-next:
		case <-timeout:
			tb.Fatalf("%s as modified at %v was never reloaded (last attempt: %+v)", path, want, got)
		}
	}
}

func bannerETag(tb testing.TB, addr string) string {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/v1/banner/mixvoip.com.js")
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("ETag")
}

// postConsent records a visitor's decision on a site as its banner would.
func postConsent(addr string, cfg *config.Config, siteKey string, action consent.Action, consentID string) (int, error) {
	site := cfg.Sites[siteKey]
	body, _ := json.Marshal(map[string]any{
		"site": site.Key, "consent_id": consentID, "action": action, "fingerprint": banner.Fingerprint(site),
		"choices":  site.AllChoices(action == consent.ActionAcceptAll),
		"language": "en", "url": site.Origins[0] + "/", "surface": "banner",
	})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/consents", bytes.NewReader(body))
	req.Header.Set("Origin", site.Origins[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// runConsentd runs a consentd command as main does and returns what it wrote.
func runConsentd(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// verifyStatus returns the status of GET /v1/dpo/verify at the consentd at addr
// with the token secret: 200 if the token opens the DPO API.
func verifyStatus(tb testing.TB, addr, secret string) int {
	tb.Helper()
	c, err := client.New("http://"+addr, secret)
	if err != nil {
		tb.Fatal(err)
	}
	_, err = c.Verify(context.Background())
	var answer *client.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &answer):
		return answer.Status
	}
	tb.Fatal(err)
	return 0
}

// testOrigin names the log of the stores the tests create.
const testOrigin = "consent.test/log"

// MustServe runs `consentd serve` on a free port until the test ends; stop stops it
// sooner.
func MustServe(tb testing.TB, configPath string) (m *Main, addr string, stop func() error) {
	tb.Helper()
	return mustServeIn(tb, configPath, tb.TempDir())
}

// MustServeWithRefusals is MustServe with n refusals recorded on mixvoip.com.
func MustServeWithRefusals(tb testing.TB, n int) (m *Main, addr string, stop func() error) {
	tb.Helper()
	// All from this one client: no limit, or the refusals past the burst would be.
	m, addr, stop = mustServeIn(tb, "../../sites.yaml", tb.TempDir(), "--consent-limit", "0")
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		tb.Fatal(err)
	}
	for range n {
		if status, err := postConsent(addr, cfg, "mixvoip.com", consent.ActionRejectAll, uuid.NewString()); err != nil || status != http.StatusCreated {
			tb.Fatalf("post: %d, %v", status, err)
		}
	}
	return m, addr, stop
}

// mustServeIn is MustServe with the data (consent.db, keys, tokens.json) in dir and
// more flags; with --admin-addr, the admin address is m.addrs[1].
func mustServeIn(tb testing.TB, configPath, dir string, flags ...string) (m *Main, addr string, stop func() error) {
	tb.Helper()
	m = NewMain(io.Discard, io.Discard)
	args := []string{"--addr", "127.0.0.1:0", "--config", configPath, "--db", filepath.Join(dir, "consent.db"), "--keys", filepath.Join(dir, "keys"), "--tokens", filepath.Join(dir, "tokens.json"), "--origin", testOrigin}
	if err := m.ParseFlags(append(args, flags...)); err != nil {
		tb.Fatal(err)
	}
	m.ReloadEvery = 20 * time.Millisecond
	m.reloaded = reloads.record
	addr, stop = MustStart(tb, m)
	return m, addr, stop
}

func MustRead(tb testing.TB, path string) string {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}
