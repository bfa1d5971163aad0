package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"

	"github.com/google/uuid"
)

// RunAudit runs the behaviours of an AuditStore.
func RunAudit[S Audit](t *testing.T, newStore Factory[S]) {
	t.Helper()
	run(t, newStore, []behaviour[S]{
		{"Audit", testAudit[S]},
		{"AuditPurge", testAuditPurge[S]},
	})
}

// testAudit: audit entries come back in order, a page at a time, after a reopen.
func testAudit[S Audit](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		e := &consent.AuditEntry{ID: MustNewID(t), At: Now(), Token: "dpo", Method: "GET", Path: fmt.Sprintf("/v1/dpo/records?page=%d", i), Status: 200}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	// A call on record before it acts, then with its outcome: one entry.
	begun := &consent.AuditEntry{ID: MustNewID(t), At: Now(), Token: "dpo", Method: "DELETE", Path: "/v1/dpo/consents/x"}
	if err := s.AppendAudit(ctx, begun); err != nil {
		t.Fatal(err)
	}
	done := *begun
	done.Status = 200
	if err := s.AppendAudit(ctx, &done); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, begun.ID)
	s.Close()
	s = MustOpen(t, open)
	var got []string
	var last *consent.AuditEntry
	after := ""
	for range 10 {
		page, err := s.Audit(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			got = append(got, e.ID)
			last = e
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(got, ids) {
		t.Errorf("audit pages = %v, want %v", got, ids)
	}
	if last == nil || last.Status != 200 {
		t.Errorf("the entry stored again: %+v, want its outcome 200", last)
	}
	if _, err := s.Audit(ctx, "nope", 3); consent.ErrorCode(err) != consent.EInvalid {
		t.Errorf("a bad cursor: err = %v, want code invalid", err)
	}
}

// testAuditPurge: the audit log's retention removes exactly the entries made before
// its limit, aggregated refusals keep every field, and what is kept survives a
// reopen.
func testAuditPurge[S Audit](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	limit := Now().Add(-30 * 24 * time.Hour)
	var kept []*consent.AuditEntry
	for i := range 25 {
		at := limit.Add(time.Duration(i-10) * 24 * time.Hour) // 10 before the limit, 15 after
		e := &consent.AuditEntry{ID: IDAt(t, at), At: at, Client: "203.0.113.0/24", Method: "GET", Path: "/v1/dpo/verify", Status: 401,
			Count: i + 2, Last: at.Add(time.Minute)}
		if i%2 == 0 {
			e.Token, e.Status, e.Count, e.Last = "dpo", 200, 0, time.Time{}
			e.Path, e.Subject = "/v1/dpo/consents/{consent_id}", consent.ConsentDigest(uuid.NewString())
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
		if !at.Before(limit) {
			kept = append(kept, e)
		}
	}
	n, err := s.PurgeAudit(ctx, limit)
	if err != nil || n != 10 {
		t.Fatalf("PurgeAudit = %d, %v; want the 10 entries before the limit", n, err)
	}
	s.Close()
	s = MustOpen(t, open)
	got, err := s.Audit(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(kept) {
		t.Fatalf("%d entries kept, want %d", len(got), len(kept))
	}
	for i, e := range got {
		if w := kept[i]; e.ID != w.ID || !e.At.Equal(w.At) || e.Token != w.Token || e.Client != w.Client || e.Path != w.Path ||
			e.Subject != w.Subject || e.Status != w.Status || e.Count != w.Count || !e.Last.Equal(w.Last) {
			t.Errorf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if n, err := s.PurgeAudit(ctx, limit); err != nil || n != 0 {
		t.Errorf("a second purge = %d, %v; want nothing more", n, err)
	}
	// A retention of a century: nothing is that old.
	if n, err := s.PurgeAudit(ctx, Now().AddDate(-100, 0, 0)); err != nil || n != 0 {
		t.Errorf("a purge before 1970 = %d, %v; want nothing", n, err)
	}
}
