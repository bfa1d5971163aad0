package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestPagesInCommitOrder: a page of records follows the log, not the record ids.
// A record whose UUIDv7 id comes from a clock behind the others' (another instance's,
// say), committed after a client took its cursor, comes on a later page instead of
// behind the cursor, where an export would miss it.
func TestPagesInCommitOrder(t *testing.T) {
	ctx := context.Background()
	_, open := MustNewDatabase(t)
	s := open()
	defer s.Close()
	now := storetest.Now()
	var ids []string
	for _, at := range []time.Time{now, now.Add(time.Second)} {
		r := storetest.NewRecord(t, storetest.MustNewID(t), at)
		r.ID = storetest.IDAt(t, at)
		storetest.MustAppend(t, s, r)
		ids = append(ids, r.ID)
	}
	first, err := s.Records(ctx, consent.Filter{}, "", 1)
	if err != nil || len(first) != 1 || first[0].ID != ids[0] {
		t.Fatalf("the first page: %v, %v", first, err)
	}
	late := storetest.NewRecord(t, storetest.MustNewID(t), now.Add(-time.Hour))
	late.ID = storetest.IDAt(t, late.RecordedAt)
	storetest.MustAppend(t, s, late)
	ids = append(ids, late.ID)

	var rest []string
	for after := first[0].ID; ; {
		page, err := s.Records(ctx, consent.Filter{}, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		rest = append(rest, page[0].ID)
		after = page[0].ID
	}
	if want := ids[1:]; fmt.Sprint(rest) != fmt.Sprint(want) {
		t.Errorf("the pages after the first: %v, want %v (in the order of the log)", rest, want)
	}
}
