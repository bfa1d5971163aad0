package bolt

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/storetest"
	"github.com/mixvoip/consentd/translog"
)

const restoredOrigin = "restored.example/log"

// TestReorigin: a store restored from a backup goes on under a new name, linked to
// the old name's tree; what was signed under the old name (receipts, archived
// checkpoints, purge statements) still verifies against it, the old name is
// refused, and so is any name the log ever had.
func TestReorigin(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "consent.db")
	s := MustOpen(t, path)
	var receipts []*consent.Receipt
	old := storetest.NewRecord(t, uuid.NewString(), storetest.Now().Add(-48*time.Hour))
	old.ID = storetest.IDAt(t, old.RecordedAt)
	storetest.MustAppend(t, s, old)
	for range 4 {
		r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
		receipts = append(receipts, storetest.MustAppend(t, s, r))
	}
	if n, err := s.Purge(ctx, map[string]time.Time{old.Site: storetest.Now().Add(-24 * time.Hour)}); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	archived, err := s.LastCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	link, err := Reorigin(path, restoredOrigin, storetest.Keys())
	if err != nil {
		t.Fatal(err)
	}
	if link.Origin != restoredOrigin || link.From != storetest.Origin || link.Size != archived.Size || link.Root != archived.Root {
		t.Errorf("link %+v, want %s continuing %s at size %d", link, restoredOrigin, storetest.Origin, archived.Size)
	}
	for _, origin := range []string{storetest.Origin, restoredOrigin, "two words"} {
		if _, err := Reorigin(path, origin, storetest.Keys()); err == nil {
			t.Errorf("Reorigin to %q: no error", origin)
		}
	}
	if s, err := Open(path, Log(storetest.Origin, storetest.Keys())); err == nil {
		s.Close()
		t.Fatal("the restored store opened under its old name")
	}

	s = MustOpen(t, path, Log(restoredOrigin, storetest.Keys()))
	after := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
	if _, err := s.Append(ctx, after); err != nil {
		t.Fatal(err)
	}
	head, err := s.LastCheckpoint(ctx)
	if err != nil || head.Origin != restoredOrigin || head.Size != archived.Size+1 {
		t.Fatalf("head %+v, %v; want %s at size %d", head, err, restoredOrigin, archived.Size+1)
	}
	oldVerifier := testVerifier(t)
	for _, rc := range receipts {
		verified, err := oldVerifier.VerifyReceipt(rc)
		if err != nil {
			t.Fatal(err)
		}
		p, err := translog.ProveConsistency(translog.Hashes(ctx, s), verified.Checkpoint.Size, head.Size)
		if err == nil {
			err = translog.VerifyConsistency(p, verified.Checkpoint, head)
		}
		if err != nil {
			t.Errorf("a receipt of the old name: the restored log does not extend its tree: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	verifier, err := storetest.Keys().LogVerifier(restoredOrigin)
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyFile(ctx, path, verifier, archived)
	if err != nil || !v.OK || v.Archived != 1 || v.Purged != 1 || v.Leaves != archived.Size+1 || v.Origin != restoredOrigin {
		t.Errorf("VerifyFile = %+v, %v; want OK with the old name's checkpoint and purge", v, err)
	}

	t.Run("a link to another tree", func(t *testing.T) {
		forged := &translog.Checkpoint{Origin: storetest.Origin, Size: 2, Root: [32]byte{1}}
		signer, err := storetest.Keys().LogSigner(restoredOrigin)
		if err != nil {
			t.Fatal(err)
		}
		l, err := signer.SignLink(forged)
		if err != nil {
			t.Fatal(err)
		}
		MustTamper(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketLinks).Put(indexKey(1), l.Signed) })
		v, err := VerifyFile(ctx, path, verifier)
		if err != nil || v.OK || !strings.Contains(v.Problem, "does not continue the tree") {
			t.Errorf("VerifyFile = %+v, %v; want the link reported", v, err)
		}
	})
}
