package postgres_test

import (
	"context"
	"testing"

	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newStore is the suite's Factory: a new database, migrated, for each test.
func newStore(tb testing.TB) func() *postgres.Store {
	url := pgtest.NewDatabase(tb)
	if _, err := postgres.Migrate(context.Background(), url); err != nil {
		tb.Fatal(err)
	}
	return func() *postgres.Store {
		s, err := postgres.Open(context.Background(), url, postgres.Options{Origin: storetest.Origin, Keys: storetest.Keys()})
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
}

func TestRecords(t *testing.T) { storetest.RunRecords(t, newStore) }

func TestLog(t *testing.T) { storetest.RunLog(t, newStore) }

func TestSnapshots(t *testing.T) { storetest.RunSnapshots(t, newStore) }

func TestAudit(t *testing.T) { storetest.RunAudit(t, newStore) }
