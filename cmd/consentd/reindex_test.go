package main

import (
	"strings"
	"testing"

	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/pgtest"
)

// TestReindex: consentd reindex indexes and counts the records of a bbolt store not in
// use, refuses one that a consentd serves, and counts a PostgreSQL store while its
// consentd serves.
func TestReindex(t *testing.T) {
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	m, addr, stop := mustServeIn(t, "../../sites.yaml", dir)
	for range 3 {
		mustPostForReceipt(t, addr, cfg)
	}
	args := []string{"reindex", "--db", m.db.path, "--keys", m.KeysDir}
	if _, _, err := runConsentd(args...); err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("reindex of a store in use: %v, want it refused", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if out := MustRun(t, args...); !strings.Contains(out, "indexed 3 records") || !strings.Contains(out, "counted 3 records") {
		t.Errorf("reindex said %q, want 3 records indexed and counted", out)
	}

	url := pgtest.NewDatabase(t)
	m, addr, _ = mustServeIn(t, "../../sites.yaml", t.TempDir(), "--db", url, "--migrate")
	mustPostForReceipt(t, addr, cfg)
	if out := MustRun(t, "reindex", "--db", url, "--keys", m.KeysDir); !strings.Contains(out, "counted 1 record for") || strings.Contains(out, "indexed") {
		t.Errorf("reindex of a PostgreSQL store in use said %q, want 1 record counted, none indexed", out)
	}
	mustPostForReceipt(t, addr, cfg) // and the instance serving goes on
}
