package bolt

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestBackupWhileAppending: a copy taken while visitors' decisions come in is a
// store of its own whose log verifies, holding every record acknowledged before
// the copy began.
func TestBackupWhileAppending(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "consent.db"), Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var before []string
	for range 200 {
		r := storetest.NewRecord(t, uuid.NewString(), storetest.Now())
		storetest.MustAppend(t, s, r)
		before = append(before, r.ConsentID)
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		pending := make([]*consent.Record, 2000)
		for i := range pending {
			pending[i] = storetest.NewRecord(t, uuid.NewString(), storetest.Now())
		}
		wg.Go(func() {
			for _, r := range pending {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Append(context.Background(), r); err != nil {
					t.Error(err) // not Fatal: this is not the test's goroutine
					return
				}
			}
		})
	}
	copied, err := s.Backup(context.Background())
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	defer copied.Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the store's directory holds %d files, want the store alone: the copy is not left behind", len(entries))
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, copied); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	verifier, err := storetest.Keys().LogVerifier(storetest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	v, err := VerifyFile(context.Background(), path, verifier)
	if err != nil || !v.OK || v.Records < len(before) {
		t.Fatalf("the copy: %+v, %v; want OK with at least %d records", v, err, len(before))
	}
	c, err := Open(path, Log(storetest.Origin, storetest.Keys()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range before {
		if recs := storetest.MustRecordsByConsent(t, c, id); len(recs) != 1 {
			t.Fatalf("the copy holds %d records of %s, want 1", len(recs), id)
		}
	}
}
