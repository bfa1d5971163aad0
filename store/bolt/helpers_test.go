package bolt

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/storetest"
	"github.com/mixvoip/consentd/translog"
)

// MustLoggedFile returns the path of a closed store of n records, appended in two
// runs, one by one, and their ids, in the order appended.
func MustLoggedFile(tb testing.TB, n int) (string, []string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "consent.db")
	var ids []string
	for part := range 2 {
		s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
		if err != nil {
			tb.Fatal(err)
		}
		for range n/2 + part*(n%2) {
			r := storetest.NewRecord(tb, uuid.NewString(), storetest.Now())
			storetest.MustAppend(tb, s, r)
			ids = append(ids, r.ID)
		}
		if part == 1 {
			if v, err := s.Verify(context.Background()); err != nil || !v.OK || v.Records != n || v.Leaves != int64(n) {
				tb.Fatalf("the live store does not verify: %+v, %v", v, err)
			}
		}
		if err := s.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return path, ids
}

// testVerifier returns the verifier of the log of the stores the tests open.
func testVerifier(tb testing.TB) *translog.Verifier {
	tb.Helper()
	v, err := storetest.Keys().LogVerifier(storetest.Origin)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// mustRotatedKeys returns two new keys, the newer made a second after the older: a
// keyring of both signs with the newer, as after a rotation.
func mustRotatedKeys(tb testing.TB) (older, newer *proof.Key) {
	tb.Helper()
	older, err := proof.NewKey(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	newer, err = proof.NewKey(time.Now().Add(time.Second))
	if err != nil {
		tb.Fatal(err)
	}
	return older, newer
}
