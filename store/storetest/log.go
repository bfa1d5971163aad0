package storetest

import (
	"context"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mixvoip/consentd/translog"
)

// RunLog runs the behaviours of a LogStore: the log's checkpoints and the hashes of its tree.
func RunLog[S Log](t *testing.T, newStore Factory[S]) {
	t.Helper()
	run(t, newStore, []behaviour[S]{
		{"LastCheckpoint", testLastCheckpoint[S]},
		{"Tree", testTree[S]},
	})
}

// testLastCheckpoint: none before the first record; then, after every append, the
// newest, signed by the log's key, of a tree of all records, which extends every
// earlier one, and says when it was signed, across a reopen.
func testLastCheckpoint[S Log](t *testing.T, open func() S) {
	ctx := context.Background()
	s := MustOpen(t, open)
	if _, err := s.LastCheckpoint(ctx); consent.ErrorCode(err) != consent.ENotFound {
		t.Errorf("a new store's last checkpoint: %v, want code not_found", err)
	}
	v, err := Keys().LogVerifier(Origin)
	if err != nil {
		t.Fatal(err)
	}
	var older []*consent.Checkpoint
	for i := range 6 {
		before := time.Now()
		MustAppend(t, s, NewRecord(t, uuid.NewString(), Now()))
		after := time.Now()
		if i == 3 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = MustOpen(t, open)
		}
		cp, err := s.LastCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := v.Open(cp.Signed)
		if err != nil || opened.Size != int64(i+1) || opened.Root != cp.Root || cp.Origin != Origin {
			t.Fatalf("after %d records: last checkpoint %+v opens as %+v, %v", i+1, cp, opened, err)
		}
		// A database server's clock may be another machine's: a second either way.
		if cp.SignedAt.Before(before.Add(-time.Second)) || cp.SignedAt.After(after.Add(time.Second)) {
			t.Errorf("after %d records: checkpoint signed at %v, want between %v and %v", i+1, cp.SignedAt, before, after)
		}
		read := translog.Hashes(ctx, s)
		for _, old := range older {
			p, err := translog.ProveConsistency(read, old.Size, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := translog.VerifyConsistency(p, old, cp); err != nil {
				t.Errorf("size %d → %d: %v", old.Size, cp.Size, err)
			}
		}
		older = append(older, cp)
	}
}

// testTree: the hashes a store serves are its tree's, and an index beyond the tree
// is not found.
func testTree[S Log](t *testing.T, open func() S) {
	ctx := context.Background()
	s := MustOpen(t, open)
	for range 3 {
		MustAppend(t, s, NewRecord(t, uuid.NewString(), Now()))
	}
	cp, err := s.LastCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	read := translog.Hashes(ctx, s)
	if root, err := tlog.TreeHash(cp.Size, read); err != nil || root != cp.Root {
		t.Errorf("the served hashes give root %v, %v; the checkpoint says %v", root, err, tlog.Hash(cp.Root))
	}
	if _, err := s.ReadHashes(ctx, []int64{tlog.StoredHashCount(cp.Size)}); consent.ErrorCode(err) != consent.ENotFound {
		t.Errorf("a hash beyond the tree: %v, want code not_found", err)
	}
}
