package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestMigrate: a new database gets every migration, and a second run applies none;
// a store opens only on the newest schema and says what to do otherwise.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if _, err := postgres.Open(ctx, url, postgres.Options{Origin: storetest.Origin, Keys: storetest.Keys()}); err == nil || !strings.Contains(err.Error(), "consentd migrate") {
		t.Errorf("open before migrate: %v; want a word on consentd migrate", err)
	}
	applied, err := postgres.Migrate(ctx, url)
	if err != nil || len(applied) == 0 || applied[0] != "001_store.sql" {
		t.Fatalf("the first migrate applied %v, %v", applied, err)
	}
	if again, err := postgres.Migrate(ctx, url); err != nil || len(again) != 0 {
		t.Errorf("a second migrate applied %v, %v; want nothing", again, err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{Origin: storetest.Origin, Keys: storetest.Keys()})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "UPDATE consentd_schema SET version = 99"); err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string]func() error{
		"open": func() error {
			_, err := postgres.Open(ctx, url, postgres.Options{Origin: storetest.Origin, Keys: storetest.Keys()})
			return err
		},
		"migrate": func() error { _, err := postgres.Migrate(ctx, url); return err },
	} {
		if err := try(); err == nil || !strings.Contains(err.Error(), "newer than this consentd") {
			t.Errorf("%s on a newer schema: %v; want it refused", name, err)
		}
	}
}

// TestMigrateConcurrently: runs at once on a new database wait for each other on the
// lock row; each migration is applied once, and all of them succeed.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	results := make([][]string, 8)
	errs := make([]error, len(results))
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i], errs[i] = postgres.Migrate(ctx, url) })
	}
	wg.Wait()
	var applied []string
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
		applied = append(applied, results[i]...)
	}
	slices.Sort(applied)
	if len(applied) == 0 || len(slices.Compact(slices.Clone(applied))) != len(applied) {
		t.Errorf("the runs applied %v together; want each migration once", applied)
	}
}
