package consent

import (
	"context"
	"os"
	"time"
)

// Store is all a backend keeps: records, snapshots, the audit log and the
// transparency log over the records. Code that needs one of them asks for its part
// alone (RecordStore, SnapshotStore, AuditStore, LogStore), and store/storetest
// checks a backend part by part. Implementations must be safe for concurrent use.
//
// A backend may have optional capabilities besides (Backuper, ReadyReporter,
// Leader); callers find them by a type assertion on the Store.
type Store interface {
	RecordStore
	StatsStore
	SnapshotStore
	AuditStore
	LogStore

	// Close waits for acknowledged writes in flight, then releases the store.
	Close() error
}

// RecordStore keeps the visitors' decisions, each with its leaf in the store's log.
type RecordStore interface {
	// Append stores r durably (synced to disk) with its leaf in the store's log,
	// under a signed checkpoint of the log stored with it, before it returns the
	// record's receipt; the caller may acknowledge the record to the visitor only
	// then. r.ID must be set. Returns an error wrapping ErrUnavailable when the store
	// cannot take more writes right now (a full queue, a closed store); the record is
	// then not stored.
	Append(ctx context.Context, r *Record) (*Receipt, error)

	// RecordsByConsent returns the records of one consent id, oldest first, each
	// with its receipt proved against the log's newest checkpoint. A consent id
	// without records gives an empty slice and no error.
	RecordsByConsent(ctx context.Context, consentID string) ([]*Record, error)

	// Records returns up to limit records that f selects, in an order the store
	// keeps stable (by record id, or by the records' leaves in the log, which
	// records committed later never enter behind), starting after the record with
	// id after ("" for the first), so a client pages through with the last id.
	Records(ctx context.Context, f Filter, after string, limit int) ([]*Record, error)

	// AppendExport appends to dst the records that Records(ctx, f, after, limit)
	// returns, in format, without receipts, and returns the extended buffer, how
	// many records it appended and the id of the last one. It writes them from what
	// it stores, without decoding each record and encoding it again: an export of
	// millions runs at the speed of its reads.
	AppendExport(ctx context.Context, f Filter, after string, limit int, format ExportFormat, dst []byte) ([]byte, int, string, error)

	// Erase removes what identifies the visitor (IP prefix, user agent, URL) from
	// every record of consentID on the given sites (on every site if sites is
	// empty) and returns how many records it changed. The decisions and their times
	// stay provable (GDPR Art. 17(3)(e)): the records' leaves keep the digest of
	// what was erased, and the log still verifies.
	Erase(ctx context.Context, consentID string, sites []string) (int, error)

	// Purge removes, for each site in before, the records recorded before the site's
	// time (its retention limit), and returns how many it removed; records of sites
	// not in before stay. Their leaves stay in the log as tombstones, and a signed
	// statement per site says what was purged, so that verification tells the
	// purged records from deleted ones.
	Purge(ctx context.Context, before map[string]time.Time) (int, error)
}

// SnapshotStore keeps what the visitors of each banner were shown.
type SnapshotStore interface {
	// PutSnapshot stores s durably unless a snapshot of the same site and fingerprint
	// is stored already: the first one stays, never overwritten.
	PutSnapshot(ctx context.Context, s *Snapshot) error

	// Snapshot returns the snapshot of a site's fingerprint, or an error with code
	// ENotFound.
	Snapshot(ctx context.Context, site, fingerprint string) (*Snapshot, error)
}

// AuditStore keeps the audit log of the DPO API.
type AuditStore interface {
	// AppendAudit stores entries durably, all or none; each ID must be a UUIDv7.
	// An entry stored again with the same id replaces the first: a call that
	// changes something is on record before it acts, then with its outcome.
	AppendAudit(ctx context.Context, entries ...*AuditEntry) error

	// Audit returns up to limit audit entries after the one with id after (from the
	// first if after is ""), oldest first.
	Audit(ctx context.Context, after string, limit int) ([]*AuditEntry, error)

	// PurgeAudit removes the audit entries made before the time before (the audit
	// log's own retention) and returns how many it removed.
	PurgeAudit(ctx context.Context, before time.Time) (int, error)
}

// LogStore is the store's transparency log as a reader outside the store sees it:
// its checkpoints, the hashes of its tree, and the check of the whole.
type LogStore interface {
	// LastCheckpoint returns the newest signed checkpoint of the store's log, or an
	// error with code ENotFound if none was signed yet. An auditor keeps it apart
	// from the store: a log rewritten or cut off later no longer extends it.
	LastCheckpoint(ctx context.Context) (*Checkpoint, error)

	// ReadHashes returns the hashes of the log's tree stored at the storage
	// indexes (golang.org/x/mod/sumdb/tlog's StoredHashIndex), in their order: what
	// consistency proofs and hash tiles are made of. An index beyond the tree gives
	// an error with code ENotFound.
	ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error)

	// Verify rebuilds the log's tree from the stored leaves, checks every record's
	// parts against its leaf and every stored hash, checkpoint and purge statement
	// against the tree, and checks that the tree extends each archived checkpoint.
	Verify(ctx context.Context, archived ...*Checkpoint) (*Verification, error)
}

// ExportFormat is how an export writes records.
type ExportFormat string

// The formats of an export.
const (
	// ExportNDJSON is one JSON object per line, the members of a Record but its
	// receipt.
	ExportNDJSON ExportFormat = "ndjson"
	// ExportCSV is a CSV row per record, of the columns translog.CSVHeader names.
	ExportCSV ExportFormat = "csv"
)

// Backuper is a store that copies itself while it serves, as store/bolt does. A
// store in a database server is backed up with the database's own tools instead.
type Backuper interface {
	// Backup returns a consistent copy of the whole store in a temporary file,
	// open and at its start; the caller closes it, and it is gone once closed.
	Backup(ctx context.Context) (*os.File, error)
}

// ReadyReporter is a store that can tell whether it takes writes.
type ReadyReporter interface {
	// Ready returns an error while the store takes no writes.
	Ready() error
}

// Leader is a store that several instances of consentd share, one of which at a time
// leads: the one that runs what must run once for all of them (the retention
// purge). A store without it has one instance, which always leads.
type Leader interface {
	// Leading reports whether this instance leads now.
	Leading() bool
}

// ErasureEffect says, for the DPO who confirms an erasure, what it removes and what
// it keeps.
const ErasureEffect = "Erasure removes what identifies the visitor from each record: the IP prefix, the user agent and the page address. " +
	"It keeps, as proof of what was decided (GDPR Art. 17(3)(e)): the consent id, each decision and its time, the site, " +
	"the banner version the visitor was shown, and the receipts; the log still verifies."
