package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestStatsCountedOnOpen: a database whose records came before the counters (as
// migrated from a consentd without them) has them counted when a consentd opens it.
func TestStatsCountedOnOpen(t *testing.T) {
	url, _ := MustNewDatabase(t)
	s := mustOpenInstance(t, url, postgres.Options{})
	want := consent.Counts{}
	for range 5 {
		r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
		storetest.MustAppend(t, s, r)
		want.Count(r)
	}
	s.Close()
	pgtest.MustExec(t, url, "DELETE FROM stats")
	pgtest.MustExec(t, url, "UPDATE log_head SET stats_counted = false")

	s = mustOpenInstance(t, url, postgres.Options{})
	rows, err := s.Stats(context.Background(), nil, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(want) || len(rows) == 0 || rows[0].Counters[string(consent.ActionCustom)] != 5 {
		t.Errorf("counters after the open: %+v, want %v", rows, want)
	}
}
