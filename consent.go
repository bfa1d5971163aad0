// Package consent holds the domain of consentd: the sites and their partners, the
// visitor's decisions as append-only records, and the interfaces the adapters
// (store/bolt, server, banner, ...) implement or use. It imports none of them.
package consent

import (
	"context"
	"time"
)

// Action is what the visitor did in the banner.
type Action string

// The actions a record can carry. The set is fixed: the banner sends one of these and
// the server rejects anything else.
const (
	ActionAcceptAll Action = "accept_all"
	ActionRejectAll Action = "reject_all"
	ActionCustom    Action = "custom"
	ActionWithdraw  Action = "withdraw"
	ActionGPC       Action = "gpc"
)

// Valid reports whether a is one of the known actions.
func (a Action) Valid() bool {
	switch a {
	case ActionAcceptAll, ActionRejectAll, ActionCustom, ActionWithdraw, ActionGPC:
		return true
	}
	return false
}

// Choices is the visitor's explicit answer per category and per partner.
type Choices struct {
	Categories map[string]bool `json:"categories"`
	Partners   map[string]bool `json:"partners"`
}

// Record is one decision of one visitor, as stored: append-only, never updated.
type Record struct {
	ID            string    `json:"record_id"` // UUIDv7, time-ordered, assigned by the server
	ConsentID     string    `json:"consent_id"`
	Site          string    `json:"site"`
	Action        Action    `json:"action"`
	Choices       Choices   `json:"choices"`
	Fingerprint   string    `json:"fingerprint"`
	PolicyVersion string    `json:"policy_version"`
	Language      string    `json:"language"`
	Surface       Surface   `json:"surface"`
	GPC           bool      `json:"gpc"`
	URL           string    `json:"url"`       // page URL without query or fragment
	IPPrefix      string    `json:"ip_prefix"` // IPv4 /24 or IPv6 /48, never the full address
	UserAgent     string    `json:"user_agent"`
	RecordedAt    time.Time `json:"recorded_at"` // server time, UTC
	ExpiresAt     time.Time `json:"expires_at"`  // when the banner asks again
	LogIndex      int64     `json:"log_index"`   // of the record's leaf in the store's log, set by the store
	Receipt       *Receipt  `json:"receipt,omitempty"`
}

// Store keeps records durably. Implementations must be safe for concurrent use.
type Store interface {
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

	// PutSnapshot stores s durably unless a snapshot of the same site and fingerprint
	// is stored already: the first one stays, never overwritten.
	PutSnapshot(ctx context.Context, s *Snapshot) error

	// Snapshot returns the snapshot of a site's fingerprint, or an error with code
	// ENotFound.
	Snapshot(ctx context.Context, site, fingerprint string) (*Snapshot, error)

	// Records returns up to limit records that f selects, in the order they were
	// recorded (by record id), starting after the record with id after ("" for the
	// first). The order is stable, so a client pages through with the last id.
	Records(ctx context.Context, f Filter, after string, limit int) ([]*Record, error)

	// AppendNDJSON appends to dst the records that Records(ctx, f, after, limit)
	// returns, one JSON object per line, without receipts, and returns the extended
	// buffer, how many records it appended and the id of the last one. It is the
	// export's fast path: a store may copy what it stores instead of decoding it.
	AppendNDJSON(ctx context.Context, f Filter, after string, limit int, dst []byte) ([]byte, int, string, error)

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

	// Close waits for acknowledged writes in flight, then releases the store.
	Close() error
}

// Surface is where in the banner the visitor decided.
type Surface string

// The surfaces a record can carry.
const (
	SurfaceBanner      Surface = "banner"      // the first layer
	SurfacePreferences Surface = "preferences" // the second layer
	SurfacePlaceholder Surface = "placeholder" // an embed's "always allow"
	SurfaceAPI         Surface = "api"         // window.consent.set from the page
	SurfaceBrowser     Surface = "browser"     // a browser signal such as GPC
)

// Valid reports whether s is one of the known surfaces.
func (s Surface) Valid() bool {
	switch s {
	case SurfaceBanner, SurfacePreferences, SurfacePlaceholder, SurfaceAPI, SurfaceBrowser:
		return true
	}
	return false
}
