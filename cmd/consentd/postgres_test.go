package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestServeOnPostgres: consentd serve on a PostgreSQL database, made ready by
// --migrate, records a decision, and finds it again after a restart with a receipt;
// consentd migrate finds nothing left to do.
func TestServeOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	_, addr, stop := mustServeIn(t, "../../sites.yaml", dir, "--db", url, "--migrate")
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	if status, err := postConsent(addr, cfg, "mixvoip.com", consent.ActionRejectAll, id); err != nil || status != http.StatusCreated {
		t.Fatalf("POST: %d, %v", status, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "consent.db")); err == nil {
		t.Error("a bbolt file was made beside the PostgreSQL store")
	}

	_, addr, _ = mustServeIn(t, "../../sites.yaml", dir, "--db", url)
	resp, err := http.Get("http://" + addr + "/v1/consents/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Records []consent.Record }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || len(got.Records) != 1 || got.Records[0].Receipt == nil {
		t.Fatalf("after a restart: %d, %+v, %v; want the record with its receipt", resp.StatusCode, got, err)
	}
	if out, _, err := runConsentd("migrate", "--db", url); err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("consentd migrate after serve --migrate: %q, %v", out, err)
	}
}

// TestMigrateCommand: a new database gets the schema; the URL may come from a file,
// never with a password on the command line; a bbolt file needs no migration.
func TestMigrateCommand(t *testing.T) {
	url := pgtest.NewDatabase(t)
	urlFile := filepath.Join(t.TempDir(), "db-url")
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runConsentd("migrate", "--db-file", urlFile); err != nil || !strings.Contains(out, "applied 001_store.sql") {
		t.Fatalf("consentd migrate --db-file: %q, %v", out, err)
	}
	for name, args := range map[string][]string{
		"password in --db":                  {"migrate", "--db", "postgres://consentd:secret@localhost/consent"},
		"password in the query":             {"migrate", "--db", "postgres://consentd@localhost/consent?password=secret"},
		"password to serve":                 {"serve", "--db", "postgres://consentd:secret@localhost/consent"},
		"password in a disguised query key": {"migrate", "--db", "postgres://consentd@localhost/consent?pass%77ord=secret"},
		"--db and --db-file":                {"migrate", "--db", "postgres://consentd@localhost/consent", "--db-file", urlFile},
		"a bbolt file":                      {"migrate", "--db", "data/consent.db"},
		"a file without a URL":              {"migrate", "--db-file", "../../sites.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runConsentd(args...)
			if err == nil || strings.Contains(err.Error(), "secret") {
				t.Errorf("consentd %s: %v; want it refused without echoing the password", strings.Join(args, " "), err)
			}
		})
	}
}
