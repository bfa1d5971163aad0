package server_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/storetest"
)

// slowStore is the real store reading each page of an export slowly, as from a
// large file on a busy disk.
type slowStore struct {
	consent.Store
	delay time.Duration
}

func (s slowStore) AppendNDJSON(ctx context.Context, f consent.Filter, after string, limit int, dst []byte) ([]byte, int, string, error) {
	time.Sleep(s.delay)
	return s.Store.AppendNDJSON(ctx, f, after, limit, dst)
}

// TestExportOutlivesWriteTimeout: an export that takes longer than the HTTP server's
// write timeout still arrives whole, as each page has a deadline of its own.
func TestExportOutlivesWriteTimeout(t *testing.T) {
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "consent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const records = 2500 // three pages
	for range records {
		r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
		r.Site = testSite
		storetest.MustAppend(t, db, r)
	}
	keys, err := proof.NewEphemeralKeyring()
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(slowStore{Store: db, delay: 100 * time.Millisecond}, server.Options{Keys: keys})
	if err := srv.Load(cfg); err != nil {
		t.Fatal(err)
	}
	tokens := &auth.Tokens{}
	token, err := tokens.Add("dpo", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv.SetTokens(tokens)
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.WriteTimeout = 150 * time.Millisecond
	ts.Start()
	defer ts.Close()

	req, err := http.NewRequest(http.MethodGet, ts.URL+"/v1/dpo/export", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := 0
	for sc := bufio.NewScanner(resp.Body); sc.Scan(); {
		lines++
	}
	if resp.StatusCode != http.StatusOK || lines != records {
		t.Errorf("export: status %d, %d lines; want 200 and %d", resp.StatusCode, lines, records)
	}
}
