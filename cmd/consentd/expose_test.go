package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/client"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/storetest"
)

// What consentd serve sets up to face the internet: the flags reach the server.

// getStatus answers the status of GET url, with the bearer token if not "".
func getStatus(tb testing.TB, url, token string) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// MustToken makes a token with `consentd token add` and returns it.
func MustToken(tb testing.TB, tokensPath, name string) string {
	tb.Helper()
	out, _, err := runConsentd("token", "add", name, "--tokens", tokensPath)
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestAdminListener: with --admin-addr, /metrics is served there and not on the
// public port; with --dpo-on-admin the DPO API too.
func TestAdminListener(t *testing.T) {
	tests := []struct {
		flags                  []string
		publicDPO, adminDPO    int
		publicMetrics, metrics int
	}{
		{nil, 401, 0, 200, 0},
		{[]string{"--admin-addr", "127.0.0.1:0"}, 401, 404, 404, 200},
		{[]string{"--admin-addr", "127.0.0.1:0", "--dpo-on-admin"}, 404, 401, 404, 200},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.flags, " "), func(t *testing.T) {
			m, addr, _ := mustServeIn(t, "../../sites.yaml", t.TempDir(), tt.flags...)
			public := "http://" + addr
			if got := getStatus(t, public+"/v1/dpo/verify", ""); got != tt.publicDPO {
				t.Errorf("public /v1/dpo/verify: %d, want %d", got, tt.publicDPO)
			}
			if got := getStatus(t, public+"/metrics", ""); got != tt.publicMetrics {
				t.Errorf("public /metrics: %d, want %d", got, tt.publicMetrics)
			}
			if got := getStatus(t, public+"/v1/banner/mixvoip.com.js", ""); got != http.StatusOK {
				t.Errorf("public banner: %d", got)
			}
			if m.AdminAddr == "" {
				return
			}
			admin := "http://" + m.addrs[1].String()
			if got := getStatus(t, admin+"/v1/dpo/verify", ""); got != tt.adminDPO {
				t.Errorf("admin /v1/dpo/verify: %d, want %d", got, tt.adminDPO)
			}
			for path, want := range map[string]int{"/metrics": tt.metrics, "/readyz": 200, "/healthz": 200, "/v1/keys": 200, "/v1/banner/mixvoip.com.js": 404} {
				if got := getStatus(t, admin+path, ""); got != want {
					t.Errorf("admin %s: %d, want %d", path, got, want)
				}
			}
		})
	}
	if err := NewMain(io.Discard, io.Discard).ParseFlags([]string{"--dpo-on-admin"}); err == nil || !strings.Contains(err.Error(), "--admin-addr") {
		t.Errorf("--dpo-on-admin alone: %v, want a refusal naming --admin-addr", err)
	}
}

// TestServeWithBrokenTokenFile: a token file that does not load keeps the banners
// and the consents serving; the DPO API answers 503 and /readyz says why, until a
// good file is written.
func TestServeWithBrokenTokenFile(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if err := os.WriteFile(tokens, []byte(`{"tokens": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	m, addr, _ := mustServeIn(t, "../../sites.yaml", dir)
	base := "http://" + addr
	if got := getStatus(t, base+"/v1/banner/mixvoip.com.js", ""); got != http.StatusOK {
		t.Errorf("banner with a broken token file: %d", got)
	}
	if got := getStatus(t, base+"/v1/dpo/verify", "cdt_x"); got != http.StatusServiceUnavailable {
		t.Errorf("DPO call with a broken token file: %d, want 503", got)
	}
	if got := getStatus(t, base+"/readyz", ""); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with a broken token file: %d, want 503", got)
	}
	if err := os.Remove(tokens); err != nil {
		t.Fatal(err)
	}
	secret := MustToken(t, m.TokensPath, "dpo")
	wait.MustUntil(t, "the new token opens the DPO API", func() (bool, string) {
		s := getStatus(t, base+"/v1/dpo/verify", secret)
		return s == http.StatusOK, fmt.Sprint(s)
	})
	if got := getStatus(t, base+"/readyz", ""); got != http.StatusOK {
		t.Errorf("readyz once the token file loads: %d", got)
	}
}

// TestServeFlagsFromEnvironment: the limits take their defaults from the
// environment, and a bad value there is refused with its name.
func TestServeFlagsFromEnvironment(t *testing.T) {
	t.Setenv("CONSENTD_CONSENT_LIMIT", "30/m")
	t.Setenv("CONSENTD_CONSENT_BURST", "3")
	t.Setenv("CONSENTD_MIN_FREE_DISK", "1GiB")
	t.Setenv("CONSENTD_ADDR", "127.0.0.1:1")
	t.Setenv("CONSENTD_DEMO", "1")
	t.Setenv("CONSENTD_NEW_STORE", "1") // never from the environment: a choice made each time
	m := NewMain(io.Discard, io.Discard)
	if err := m.ParseFlags([]string{"--consent-burst", "7"}); err != nil {
		t.Fatal(err)
	}
	if m.ConsentLimit.Rate != 0.5 || m.ConsentLimit.Burst != 7 || m.MinFreeDisk != 1<<30 || m.AuditRetention != 365*24*time.Hour ||
		m.Addr != "127.0.0.1:1" || !m.Demo || m.NewStore {
		t.Errorf("parsed %+v, min free %d, addr %s, demo %t, new store %t", m.ConsentLimit, m.MinFreeDisk, m.Addr, m.Demo, m.NewStore)
	}
	t.Setenv("CONSENTD_AUTH_FAILURE_LIMIT", "lots")
	t.Setenv("CONSENTD_CONSENT_LIMIT", "")
	if err := NewMain(io.Discard, io.Discard).ParseFlags(nil); err == nil || !strings.Contains(err.Error(), "$CONSENTD_AUTH_FAILURE_LIMIT") {
		t.Errorf("a bad $CONSENTD_AUTH_FAILURE_LIMIT: %v, want a refusal naming it", err)
	}
}

// TestServeAnswersMalformedRequestsInJSON: what net/http refuses before any handler
// runs gets the JSON error shape from consentd serve too.
func TestServeAnswersMalformedRequestsInJSON(t *testing.T) {
	_, addr, _ := MustServe(t, "../../sites.yaml")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 32<<10)+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 431 || body.Error.Code != "too_large" {
		t.Errorf("headers over 16 KiB: %d %+v %v; want 431 too_large in JSON", resp.StatusCode, body, err)
	}
}

// TestServePurgesTheAuditLog: audit entries older than --audit-retention-days go,
// newer ones stay.
func TestServePurgesTheAuditLog(t *testing.T) {
	dir := t.TempDir()
	keysDir, dbPath := filepath.Join(dir, "keys"), filepath.Join(dir, "consent.db")
	if _, err := proof.Generate(keysDir, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(dbPath, bolt.Log(testOrigin, MustKeyring(t, keysDir)))
	if err != nil {
		t.Fatal(err)
	}
	old, recent := time.Now().Add(-40*24*time.Hour), time.Now().Add(-20*24*time.Hour)
	entries := []*consent.AuditEntry{
		{ID: storetest.IDAt(t, old), At: old, Token: "dpo", Method: "GET", Path: "/v1/dpo/verify", Status: 200},
		{ID: storetest.IDAt(t, recent), At: recent, Token: "dpo", Method: "GET", Path: "/v1/dpo/stats", Status: 200},
	}
	if err := store.AppendAudit(context.Background(), entries...); err != nil {
		t.Fatal(err)
	}
	store.Close()
	secret := MustToken(t, filepath.Join(dir, "tokens.json"), "dpo")

	_, addr, _ := mustServeIn(t, "../../sites.yaml", dir, "--audit-retention-days", "30")
	c, err := client.New("http://"+addr, secret)
	if err != nil {
		t.Fatal(err)
	}
	wait.MustUntil(t, "the old entry is purged, the recent one kept", func() (bool, string) {
		page, err := c.Audit(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for _, e := range page.Entries {
			seen = append(seen, e.ID)
		}
		got := strings.Join(seen, " ")
		return !strings.Contains(got, entries[0].ID) && strings.Contains(got, entries[1].ID), got
	})
}
