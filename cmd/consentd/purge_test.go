package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestServePurgesPastRetention: a record older than its site's retention period is
// gone once consentd has started; the newer ones stay; the file still verifies
// offline and says what was purged.
func TestServePurgesPastRetention(t *testing.T) {
	const site = "mixvoip.com"
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keysDir, dbPath := filepath.Join(dir, "keys"), filepath.Join(dir, "consent.db")
	if _, err := proof.Generate(keysDir, time.Now(), false); err != nil {
		t.Fatal(err)
	}
	keys, err := proof.LoadKeyring(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(dbPath, bolt.Log(testOrigin, keys))
	if err != nil {
		t.Fatal(err)
	}
	now := storetest.Now()
	past := now.Add(-cfg.Sites[site].RetentionPeriod - 24*time.Hour)
	var records []*consent.Record
	for _, at := range []time.Time{now.Add(-time.Hour), past, now} {
		r := storetest.NewRecord(t, uuid.NewString(), at)
		r.ID, r.Site = storetest.IDAt(t, at), site
		if _, err := store.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		records = append(records, r)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	_, addr, stop := mustServeIn(t, "../../sites.yaml", dir)
	status := func(r *consent.Record) int {
		resp, err := http.Get("http://" + addr + "/v1/consents/" + r.ConsentID)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	wait.MustUntil(t, "the record past retention is purged", func() (bool, string) {
		s := status(records[1])
		return s == http.StatusNotFound, fmt.Sprint(s)
	})
	for _, r := range []*consent.Record{records[0], records[2]} {
		if s := status(r); s != http.StatusOK {
			t.Errorf("a record within retention: GET = %d, want 200", s)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--db", dbPath, "--keys", keysDir}, &out, io.Discard); err != nil {
		t.Fatalf("verify after the purge: %v, %s", err, out.String())
	}
	if !strings.Contains(out.String(), "OK, log "+testOrigin+": 3 leaves") || !strings.Contains(out.String(), "2 records verify against their leaves, 1 purged past retention under signed purge statements") {
		t.Errorf("verify after the purge: %q", out.String())
	}
}
