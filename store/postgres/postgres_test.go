package postgres_test

import (
	"context"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) func() consent.Store {
		_, open := MustNewDatabase(tb)
		return func() consent.Store { return open() }
	})
}

// MustNewDatabase makes a new database, migrated, and returns its URL and a function
// that opens a store on it, as the suite's stores are opened.
func MustNewDatabase(tb testing.TB) (url string, open func() *postgres.Store) {
	tb.Helper()
	url = pgtest.NewDatabase(tb)
	if _, err := postgres.Migrate(context.Background(), url); err != nil {
		tb.Fatal(err)
	}
	return url, func() *postgres.Store {
		s, err := postgres.Open(context.Background(), url, postgres.Options{Origin: storetest.Origin, Keys: storetest.Keys()})
		if err != nil {
			tb.Fatal(err)
		}
		return s
	}
}
