package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestInstancesShareOneLog: records appended at once through three instances on one
// database are all acknowledged, each with a receipt that verifies, each a leaf of
// the one log once; every instance then finds every record and gives out the same
// checkpoint.
func TestInstancesShareOneLog(t *testing.T) {
	ctx := context.Background()
	url, _ := MustNewDatabase(t)
	instances := make([]*postgres.Store, 3)
	for i := range instances {
		instances[i] = mustOpenInstance(t, url, postgres.Options{Instance: fmt.Sprintf("instance-%d", i)})
	}
	var mu sync.Mutex
	var acked []*consent.Record
	var appenders sync.WaitGroup
	for i := range 12 {
		s := instances[i%len(instances)]
		appenders.Go(func() {
			for range 20 {
				r := storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())
				receipt, err := s.Append(ctx, r)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				storetest.MustVerifyReceipt(t, receipt, r)
				mu.Lock()
				acked = append(acked, r)
				mu.Unlock()
			}
		})
	}
	appenders.Wait()
	leading := 0
	for _, s := range instances {
		if s.Leading() {
			leading++
		}
	}
	if leading != 1 {
		t.Errorf("%d instances hold the sequencer's lease, want 1", leading)
	}
	var heads []*consent.Checkpoint
	for i, s := range instances {
		for _, r := range acked {
			if got := storetest.MustRecordsByConsent(t, s, r.ConsentID); len(got) != 1 || got[0].ID != r.ID {
				t.Fatalf("instance %d finds %d records of consent %s, want the 1 acknowledged", i, len(got), r.ConsentID)
			}
		}
		cp, err := s.LastCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, cp)
	}
	for i, cp := range heads {
		if cp.Size != int64(len(acked)) || string(cp.Signed) != string(heads[0].Signed) {
			t.Errorf("instance %d gives out the checkpoint of %d leaves, %q; want every instance's of %d leaves", i, cp.Size, cp.Signed, len(acked))
		}
	}
	v, err := instances[1].Verify(ctx)
	if err != nil || !v.OK || v.Leaves != int64(len(acked)) || v.Pending != 0 {
		t.Fatalf("%+v, %v; want the %d acknowledged records as leaves, verified, none pending", v, err, len(acked))
	}
}

// TestStaleSequencerFenced: a sequencer whose lease another instance took over (it
// was paused, or cut off, past the lease) integrates nothing more, although it does
// not know yet: the integration's fencing refuses it. The records written meanwhile
// wait as pending, which verification reports as a stuck sequencer, not as
// tampering, reads do not show, and erasure reaches; once the lease is free, they
// are integrated by the next sequencer, erased, and acknowledged.
func TestStaleSequencerFenced(t *testing.T) {
	ctx := context.Background()
	url, _ := MustNewDatabase(t)
	// No integration timeout: the test decides when the record is integrated. A
	// lease renewed only every 20 minutes: the step-down must come from the fencing.
	s := mustOpenInstance(t, url, postgres.Options{IntegrationTimeout: time.Hour, Lease: time.Hour})
	storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	if !s.Leading() {
		t.Fatal("the only instance does not hold the lease")
	}

	// Another holder takes the lease over, as an instance does once the lease
	// expired, and never integrates.
	mustExec(t, url, "UPDATE sequencer_lease SET holder = 'elsewhere', epoch = epoch + 1, expires_at = now() + interval '1 hour'")
	r := storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())
	appended := make(chan error, 1)
	go func() {
		receipt, err := s.Append(ctx, r)
		if err == nil {
			storetest.MustVerifyReceipt(t, receipt, r)
		}
		appended <- err
	}()
	wait.MustUntil(t, "the stale sequencer steps down", func() (bool, string) {
		return !s.Leading(), "it still believes it holds the lease"
	})
	wait.MustUntil(t, "the record is written as pending", func() (bool, string) {
		var n int
		pgtest.MustQueryRow(t, url, "SELECT count(*) FROM pending", &n)
		return n == 1, fmt.Sprintf("%d pending", n)
	})
	if got := storetest.MustRecordsByConsent(t, s, r.ConsentID); len(got) != 0 {
		t.Fatalf("a pending record is read back: %+v", got)
	}
	if n, err := s.Erase(ctx, r.ConsentID, nil); err != nil || n != 1 {
		t.Fatalf("erasure of the pending record: %d, %v; want 1 erased", n, err)
	}
	mustExec(t, url, "UPDATE pending SET written_at = now() - interval '1 hour'")
	v, err := s.Verify(ctx)
	if err != nil || !v.OK || v.Leaves != 1 || v.Pending != 1 || !strings.Contains(v.SequencerStuck, "sequencer stuck") {
		t.Fatalf("%+v, %v; want the log of 1 leaf OK, and the pending record reported as a stuck sequencer", v, err)
	}

	// The lease is free; another instance, which tries every second, takes it.
	mustExec(t, url, "UPDATE sequencer_lease SET expires_at = '-infinity'")
	mustOpenInstance(t, url, postgres.Options{})
	if err := <-appended; err != nil {
		t.Fatalf("the append once the lease was free: %v", err)
	}
	if got := storetest.MustRecordsByConsent(t, s, r.ConsentID); len(got) != 1 || got[0].LogIndex != 1 || got[0].UserAgent != "" || got[0].IPPrefix != "" {
		t.Fatalf("after the takeover: %+v; want the record at leaf 1, erased", got)
	}
	if v, err := s.Verify(ctx); err != nil || !v.OK || v.Erased != 1 || v.Pending != 0 {
		t.Fatalf("after the takeover: %+v, %v; want the log OK, the record erased, none pending", v, err)
	}
	var epoch int64
	pgtest.MustQueryRow(t, url, "SELECT epoch FROM log_head", &epoch)
	if epoch != 3 {
		t.Errorf("the last integration's epoch is %d, want 3: the first holder's, then the other holder's, then the third's", epoch)
	}
}

// TestIntegrationTimeout: with no sequencer to integrate it, an append is refused
// with consent.ErrUnavailable once the integration timeout passed, saying so.
func TestIntegrationTimeout(t *testing.T) {
	ctx := context.Background()
	url, _ := MustNewDatabase(t)
	mustExec(t, url, "INSERT INTO sequencer_lease VALUES (1, 'elsewhere', 1, now() + interval '1 hour')")
	s := mustOpenInstance(t, url, postgres.Options{IntegrationTimeout: 50 * time.Millisecond})
	_, err := s.Append(ctx, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	if !errors.Is(err, consent.ErrUnavailable) || !strings.Contains(err.Error(), "not yet in the log") {
		t.Fatalf("append with no sequencer: %v; want it refused as not integrated", err)
	}
}

// mustOpenInstance opens an instance of the store on the database at url, with opts
// and the suite's origin and keys, and closes it when the test ends.
func mustOpenInstance(tb testing.TB, url string, opts postgres.Options) *postgres.Store {
	tb.Helper()
	opts.Origin = storetest.Origin
	if opts.Keys == nil {
		opts.Keys = storetest.Keys()
	}
	s, err := postgres.Open(context.Background(), url, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
