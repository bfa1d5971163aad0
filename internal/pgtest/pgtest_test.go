package pgtest_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mixvoip/consentd/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestNewDatabase: each test gets a database of its own, which the others do not see.
func TestNewDatabase(t *testing.T) {
	ctx := context.Background()
	first, second := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	if first == second {
		t.Fatalf("two tests got the same database %s", first)
	}
	a, err := pgx.Connect(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	if _, err := a.Exec(ctx, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	b, err := pgx.Connect(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	var tables int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'").Scan(&tables); err != nil || tables != 0 {
		t.Errorf("the second database has %d tables of the first, %v", tables, err)
	}
}

// TestAbandonedClusterRemoved: a cluster whose process ended without stopping it (a
// test binary killed at its timeout) is stopped and removed by the next Start.
func TestAbandonedClusterRemoved(t *testing.T) {
	abandoned, err := pgtest.Start(pgtest.Volatile)
	if err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(abandoned.Dir(), "owner.pid"), []byte(strconv.Itoa(gone.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	next, err := pgtest.Start(pgtest.Volatile)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Stop()
	if _, err := os.Stat(abandoned.Dir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the abandoned cluster's directory: %v; want it removed", err)
	}
}
