package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestConnectionsKilledWhileAppending: the database ends the store's connections
// again and again while visitors' decisions are appended. Every decision
// acknowledged is stored once, with a receipt that verifies; the log verifies; a
// commit whose outcome was unknown is neither lost nor stored twice.
func TestConnectionsKilledWhileAppending(t *testing.T) {
	ctx := context.Background()
	url, open := MustNewDatabase(t)
	s := open()
	defer s.Close()

	var acked sync.Map // record id → *consent.Record
	var refused atomic.Int64
	var appenders sync.WaitGroup
	for range 8 {
		appenders.Go(func() {
			for range 25 {
				r := storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())
				receipt, err := s.Append(ctx, r)
				if err != nil {
					if !errors.Is(err, consent.ErrUnavailable) && consent.ErrorCode(err) != consent.EInternal {
						t.Errorf("append: %v", err)
					}
					refused.Add(1)
					continue
				}
				storetest.MustVerifyReceipt(t, receipt, r)
				acked.Store(r.ID, r)
			}
		})
	}
	done := make(chan struct{})
	go func() { appenders.Wait(); close(done) }()
	killer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	kills := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			var n int
			if err := killer.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			kills += n
			// Not a wait: the pace of the failures under test, which gives the
			// store's connections time to be made again and to commit between them.
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Read back through a store opened afresh: pgxpool pings only connections idle
	// for more than a second, so a read may still meet one the last kill ended.
	s.Close()
	s = open()
	defer s.Close()
	n := 0
	acked.Range(func(_, v any) bool {
		r := v.(*consent.Record)
		if got := storetest.MustRecordsByConsent(t, s, r.ConsentID); len(got) != 1 {
			t.Errorf("acknowledged record %s: %d stored", r.ID, len(got))
		}
		n++
		return true
	})
	v, err := s.Verify(ctx)
	if err != nil || !v.OK {
		t.Fatalf("after the kills: %+v, %v", v, err)
	}
	t.Logf("%d connections killed; %d decisions acknowledged, %d refused; the log holds %d", kills, n, refused.Load(), v.Leaves)
	if kills == 0 || n == 0 {
		t.Errorf("%d connections killed, %d decisions acknowledged: the test tested nothing", kills, n)
	}
}

// TestCommitAnswerLost: when the answer to a commit is lost, the retry finds the
// batch's records stored, byte for byte, and acknowledges them with receipts that
// verify, without storing them twice or forking the log: the log's first commit too,
// which extends the empty tree.
func TestCommitAnswerLost(t *testing.T) {
	for _, before := range []int{0, 1} {
		t.Run(fmt.Sprintf("after %d leaves", before), func(t *testing.T) {
			ctx := context.Background()
			_, open := MustNewDatabase(t)
			s := open()
			defer s.Close()
			for range before {
				storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
			}
			var lost atomic.Int64
			postgres.LoseAnswers(s, func() bool { return lost.Add(1) == 1 })
			r := storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())
			storetest.MustAppend(t, s, r)
			if lost.Load() != 1 {
				t.Fatalf("%d commits; want the one whose answer was lost, and a retry that finds it stored and commits nothing", lost.Load())
			}
			if got := storetest.MustRecordsByConsent(t, s, r.ConsentID); len(got) != 1 || got[0].LogIndex != int64(before) {
				t.Fatalf("the record whose answer was lost: %d stored, want 1 at leaf %d", len(got), before)
			}
			storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
			if v, err := s.Verify(ctx); err != nil || !v.OK || v.Leaves != int64(before+2) {
				t.Fatalf("after a lost answer: %+v, %v; want %d leaves that verify", v, err, before+2)
			}
		})
	}
}

// TestDatabaseBehindRefused: a database that lost the last commit (a failover to a
// replica behind) is not extended: the store would sign a second tree of a size it
// signed already. It refuses appends and signs nothing.
func TestDatabaseBehindRefused(t *testing.T) {
	ctx := context.Background()
	url, open := MustNewDatabase(t)
	s := open()
	defer s.Close()
	for range 2 {
		storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	}
	behind, err := s.LastCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	mustExec(t, url, fmt.Sprintf("DELETE FROM records WHERE leaf_index = 2; DELETE FROM leaves WHERE leaf_index = 2; DELETE FROM log_hashes WHERE storage_index >= %d; UPDATE log_head SET checkpoint = decode('%x', 'hex')",
		tlog.StoredHashCount(2), behind.Signed))
	for range 2 {
		if _, err := s.Append(ctx, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())); !errors.Is(err, consent.ErrUnavailable) {
			t.Fatalf("an append to a database behind the log: %v; want it refused", err)
		}
	}
	if cp, err := s.LastCheckpoint(ctx); !errors.Is(err, consent.ErrUnavailable) || !strings.Contains(err.Error(), "consentd restore --origin") {
		t.Errorf("after the refusals the store's head is %+v, %v; want none given out, and what to do", cp, err)
	}
	if err := s.Ready(); !errors.Is(err, consent.ErrUnavailable) {
		t.Errorf("Ready = %v; want the store not ready", err)
	}
}

// TestAppendQueueFull: while the database holds the writer's commit, appends wait in
// a queue of the size given; the one beyond it is refused at once with
// consent.ErrUnavailable (503 with Retry-After, for the visitor) and never stored,
// and the waiting ones are stored once the database lets the commit through.
func TestAppendQueueFull(t *testing.T) {
	ctx := context.Background()
	url, _ := MustNewDatabase(t)
	// The appends wait for the lock below as long as a loaded machine takes to
	// reach the rollback: the test is about the queue, not the integration timeout.
	opts := postgres.Options{Origin: storetest.Origin, Keys: storetest.Keys(), QueueSize: 1, IntegrationTimeout: time.Hour}
	s, err := postgres.Open(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))

	// Another session locks the pending records against writes: the writer's next
	// commit waits for it.
	holder, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE pending IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	consentID := storetest.MustNewID(t)
	var accepted sync.WaitGroup
	for i := range 2 {
		accepted.Go(func() {
			r := storetest.NewRecord(t, consentID, storetest.Now())
			if _, err := s.Append(ctx, r); err != nil {
				t.Errorf("append %d, queued: %v", i, err)
			}
		})
		if i == 0 {
			wait.MustUntil(t, "the writer's commit waits for the lock", func() (bool, string) {
				var n int
				err := holder.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'").Scan(&n)
				return err == nil && n == 1, fmt.Sprintf("%d sessions wait for a lock (%v)", n, err)
			})
		}
	}
	wait.MustUntil(t, "the second append is queued", func() (bool, string) {
		return s.QueueDepth() == 1, fmt.Sprintf("queue depth %d", s.QueueDepth())
	})
	rejected := storetest.NewRecord(t, consentID, storetest.Now())
	if _, err := s.Append(ctx, rejected); !errors.Is(err, consent.ErrUnavailable) {
		t.Fatalf("Append on a full queue: %v, want an error wrapping consent.ErrUnavailable", err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	accepted.Wait()
	got := storetest.MustRecordsByConsent(t, s, consentID)
	if len(got) != 2 || got[0].ID == rejected.ID || got[1].ID == rejected.ID {
		t.Errorf("stored %d records of the consent, want the 2 queued and not the one refused", len(got))
	}
}
