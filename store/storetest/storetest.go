// Package storetest is the behavioural suite every consent.Store backend must pass:
// each backend's test file calls Run with a Factory and nothing more. The suite has
// one part per part of a Store (RunRecords, RunErasure, RunSnapshots, RunAudit,
// RunLog), each asking only for the methods it tests (Records, Erasure, Snapshots,
// Audit, Log), so that a new backend passes it part by part: one with only its audit
// log so far calls RunAudit with a Factory of its own type.
package storetest

import (
	"context"
	"io"
	"testing"

	consent "github.com/mixvoip/consentd"
)

// Factory prepares a fresh, empty location for one subtest (a directory, a database
// schema) and returns a function that opens a store there. Every call of open must
// return a new store on that same location, so records appended through one store
// are read back through the next after the first was closed; open fails tb itself
// when the store cannot be opened. The suite closes every store it opens, sometimes
// twice: Close must be safe to call more than once. The store's log must be named
// Origin and signed with Keys.
type Factory[S io.Closer] func(tb testing.TB) (open func() S)

// What each part of the suite needs of a store: a backend that has only some parts
// of a consent.Store yet passes the parts it has.
type (
	// Records is a store's appends and reads, with the snapshots that receipts show.
	Records interface {
		Append(ctx context.Context, r *consent.Record) (*consent.Receipt, error)
		RecordsByConsent(ctx context.Context, consentID string) ([]*consent.Record, error)
		Records(ctx context.Context, f consent.Filter, after string, limit int) ([]*consent.Record, error)
		consent.SnapshotStore
		io.Closer
	}
	// Erasure is a whole RecordStore, and the verification of its log.
	Erasure interface {
		consent.RecordStore
		consent.SnapshotStore
		Verify(ctx context.Context, archived ...*consent.Checkpoint) (*consent.Verification, error)
		io.Closer
	}
	// Snapshots is a store's snapshots of what visitors were shown.
	Snapshots interface {
		consent.SnapshotStore
		io.Closer
	}
	// Audit is a store's audit log.
	Audit interface {
		consent.AuditStore
		io.Closer
	}
	// Log is a store's log as a reader sees it, and the appends that grow it.
	Log interface {
		Append(ctx context.Context, r *consent.Record) (*consent.Receipt, error)
		LastCheckpoint(ctx context.Context) (*consent.Checkpoint, error)
		ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
		io.Closer
	}
)

// Run runs every part of the suite against the stores newStore opens.
func Run(t *testing.T, newStore Factory[consent.Store]) {
	t.Helper()
	RunRecords(t, newStore)
	RunErasure(t, newStore)
	RunStats(t, newStore)
	RunSnapshots(t, newStore)
	RunAudit(t, newStore)
	RunLog(t, newStore)
}

// behaviour is one test of the suite, run on a fresh location.
type behaviour[S io.Closer] struct {
	name string
	test func(t *testing.T, open func() S)
}

// run runs each behaviour as a parallel subtest of t on a location of its own.
func run[S io.Closer](t *testing.T, newStore Factory[S], behaviours []behaviour[S]) {
	t.Helper()
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			b.test(t, newStore(t))
		})
	}
}
