// Package bolt implements consent.Store on one bbolt file. A single writer goroutine
// commits whatever appends are queued in one transaction, so concurrent visitors share
// each commit's two fdatasyncs instead of queueing behind them one by one.
package bolt

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/internal/groupcommit"
	"github.com/mixvoip/consentd/store/internal/snapshots"
	"github.com/mixvoip/consentd/store/move"
	"github.com/mixvoip/consentd/translog"
)

// Defaults for the Open options.
const (
	// DefaultQueueSize and DefaultMaxBatch size the write queue, as for every store.
	DefaultQueueSize = groupcommit.DefaultQueueSize
	DefaultMaxBatch  = groupcommit.DefaultMaxBatch

	// DefaultLockTimeout is how long Open waits for another process to release the
	// file lock.
	DefaultLockTimeout = time.Second
)

var (
	// bucketRecords maps a record id (16 UUID bytes) to the record's parts (see
	// record.go).
	bucketRecords = []byte("records")
	// bucketLog holds the log's tree: its leaves, its stored hashes and its latest
	// checkpoint (see log.go for the keys).
	bucketLog = []byte("log")
	// bucketMeta holds the log's name under keyOrigin, set when the store is
	// created.
	bucketMeta = []byte("meta")
	keyOrigin  = []byte("origin")

	// bucketLinks maps a sequence number (uint64, big-endian) to a signed statement
	// that the log continues the tree of a log of another name (translog.Link): one
	// per restore from a backup (see Reorigin).
	bucketLinks = []byte("links")

	// buckets are those of every store.
	buckets = [][]byte{bucketRecords, bucketLog, bucketMeta, bucketLinks, bucketSnapshots, bucketAudit, bucketPurges}
	// derived are the buckets made from the records, which a store written before
	// them gets when it opens.
	derived = [][]byte{bucketConsents, bucketRecent, bucketStats}
)

// Option changes a setting of Open.
type Option func(*options)

type options struct {
	queueSize   int
	maxBatch    int
	mergeAt     int
	lockTimeout time.Duration
	origin      string
	keys        translog.Keys

	onCommit func(records int, took time.Duration)

	// beforeCommit, when set, runs in the writer before each transaction with the
	// number of records in it; tests use it to hold the writer. failCommit, when
	// set, runs in each transaction of appends, which fails if it returns an error:
	// tests use it for a failing disk.
	beforeCommit func(n int)
	failCommit   func() error
}

// QueueSize sets how many appends may wait for the writer; beyond that Append fails
// at once with an error wrapping consent.ErrUnavailable. It must be at least 1.
func QueueSize(n int) Option { return func(c *options) { c.queueSize = n } }

// MaxBatch sets the most records committed in one transaction. It must be at least 1.
func MaxBatch(n int) Option { return func(c *options) { c.maxBatch = n } }

// MergeAt sets how many entries gather in the recent level of the consent index
// before a merge moves them to the file's (DefaultMergeAt; see index.go). It must
// be at least 1.
func MergeAt(n int) Option { return func(c *options) { c.mergeAt = n } }

// Log names the store's log and gives the keys that sign it; Open requires it. A new
// store takes origin as its log's name for good; an existing one keeps the name it
// was created with, and refuses another (an empty origin takes the stored one). keys
// must verify the log's latest checkpoint: a store never goes on under keys that
// lack the one that signed it.
func Log(origin string, keys translog.Keys) Option {
	return func(c *options) { c.origin, c.keys = origin, keys }
}

// OnCommit has the writer call f after each transaction of appends, committed or
// not, with the number of records it held and how long it took, its fdatasyncs and
// its signature included: what the metrics observe. f runs before any of those
// appends is answered, in the writer, so it must be quick.
func OnCommit(f func(records int, took time.Duration)) Option {
	return func(c *options) { c.onCommit = f }
}

// LockTimeout sets how long Open waits for the file lock held by another process. It
// must be positive.
func LockTimeout(d time.Duration) Option { return func(c *options) { c.lockTimeout = d } }

// Store is a consent.Store on one bbolt file. It is safe for concurrent use.
type Store struct {
	db           *bolt.DB
	beforeCommit func(n int)
	failCommit   func() error
	onCommit     func(records int, took time.Duration)

	// writer commits the appends, one batch at a time; Close waits for the proofs
	// the appends read after their commit before it closes the file.
	writer *groupcommit.Writer[*request]

	// recent is the newest part of the consent index, in memory (see index.go);
	// mergeIndex moves it to the file when a commit signals merge, once it holds
	// mergeAt entries, until mergeDone.
	recent    *recentIndex
	mergeAt   int
	merge     chan struct{}
	mergeDone chan struct{}
	merging   sync.WaitGroup

	// lastID is the greatest record id stored, read and written by the writer
	// only: a greater one cannot be stored yet, and an append of one (every
	// UUIDv7 but those overtaken in the queue) needs no lookup.
	lastID    uuid.UUID
	snapshots snapshots.Cache

	origin string
	keys   translog.Keys // nil: the store takes no appends
	log    *translog.Log // its head moves in the writer only
	// signedAt is when the log's head was signed, in milliseconds since 1970; 0 if
	// the store does not know (signed before it kept the time).
	signedAt atomic.Int64

	// failed holds the error of a transaction of appends that failed: the store then
	// takes no more (see commit).
	failed atomic.Pointer[error]

	closeOnce sync.Once
	closeErr  error

	ready readyProbe
}

// The Store and its optional capabilities, which a caller finds by a type assertion:
// a change of signature must fail here, not drop the capability silently.
var (
	_ consent.Store         = (*Store)(nil)
	_ consent.Backuper      = (*Store)(nil)
	_ consent.ReadyReporter = (*Store)(nil)
)

// request is one Append waiting for the writer. The record's value and leaf are
// prepared by the caller, so encoding and hashing run in parallel and the writer
// only writes, extends the tree and signs once per batch.
type request struct {
	record    *consent.Record // counted in the store's statistics
	recordID  uuid.UUID
	consentID uuid.UUID
	value     []byte
	leaf      []byte
	leafHash  tlog.Hash
	done      chan appended // buffered: the writer never waits for a caller that gave up
}

// appended is the writer's answer to a request: where its leaf is, and the batch it
// was committed in, which proves it.
type appended struct {
	index int64
	batch *translog.Batch
	err   error
}

// Open opens the store in the bbolt file at path, creating the file and its directory
// if there is no file. It fails after the lock timeout (DefaultLockTimeout) if
// another process has the file open.
//
// It refuses an empty file, which bbolt would make a new store: a store that existed
// is never replaced unnoticed. It refuses a file that others than its owner may read
// or write, and a store written by a consentd before the transparency log. A file
// bbolt cannot make sense of gives an error wrapping ErrDamaged.
func Open(path string, opts ...Option) (*Store, error) {
	c := options{queueSize: DefaultQueueSize, maxBatch: DefaultMaxBatch, mergeAt: DefaultMergeAt, lockTimeout: DefaultLockTimeout}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.queueSize < 1:
		return nil, fmt.Errorf("bolt: open: queue size %d is less than 1", c.queueSize)
	case c.maxBatch < 1:
		return nil, fmt.Errorf("bolt: open: max batch %d is less than 1", c.maxBatch)
	case c.mergeAt < 1:
		return nil, fmt.Errorf("bolt: open: merge at %d is less than 1", c.mergeAt)
	case c.lockTimeout <= 0:
		// bbolt waits forever for the lock with a zero timeout: a second process would
		// hang silently instead of saying the file is in use.
		return nil, fmt.Errorf("bolt: open: lock timeout %v is not positive", c.lockTimeout)
	case c.keys == nil:
		return nil, fmt.Errorf("bolt: open: no log keys: a store that takes appends signs its log")
	}

	if err := checkFile(path); err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	// Records carry IP prefixes and user agents: personal data, owner-only files.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open: %w", err)
	}
	db, err := openDB(path, bolt.Options{Timeout: c.lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s, err := load(db, c)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	s.writer = groupcommit.Start(c.queueSize, c.maxBatch, s.commit)
	s.merging.Go(func() { s.mergeWhileDue(s.merge, s.mergeDone) })
	return s, nil
}

// load reads what the store keeps in memory: the consent index and the log's head.
// A new store gets its buckets and its log's name first.
func load(db *bolt.DB, c options) (*Store, error) {
	s := &Store{
		db:           db,
		beforeCommit: c.beforeCommit,
		failCommit:   c.failCommit,
		onCommit:     c.onCommit,
		recent:       newRecentIndex(),
		mergeAt:      c.mergeAt,
		merge:        make(chan struct{}, 1),
		mergeDone:    make(chan struct{}),
		origin:       c.origin,
		keys:         c.keys,
	}
	var fresh bool
	err := guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			var err error
			fresh, err = isNew(tx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if fresh {
		if err := guard(func() error { return db.Update(s.create) }); err != nil {
			return nil, err
		}
	}
	if err := guard(func() error { _, err := buildIndex(db); return err }); err != nil {
		return nil, err
	}
	var counted bool
	err = s.view(func(tx *bolt.Tx) error {
		counted = tx.Bucket(bucketMeta).Get(keyCounted) != nil
		return s.read(tx)
	})
	if err != nil {
		return nil, err
	}
	if !counted {
		if _, err := s.RebuildStats(context.Background()); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// isNew reports whether tx is a new store's, which has no buckets yet. It refuses
// what is neither that nor a store of this consentd.
func isNew(tx *bolt.Tx) (bool, error) {
	k, _ := tx.Cursor().First()
	if k == nil {
		return true, nil
	}
	if tx.Bucket(bucketRecords) == nil {
		return false, fmt.Errorf("not a consentd store: it holds no records, but bucket %q", k)
	}
	if tx.Bucket(bucketLog) == nil {
		return false, errors.New("the store was written by a consentd before the transparency log, whose records this one cannot read or prove: keep it with the consentd that wrote it, and start a new store")
	}
	for _, name := range buckets {
		if tx.Bucket(name) == nil {
			return false, fmt.Errorf("the store lacks its bucket %q: altered, or damaged", name)
		}
	}
	return false, nil
}

// create makes the buckets of a new store and names its log.
func (s *Store) create(tx *bolt.Tx) error { return newStore(tx, s.origin) }

// newStore makes the buckets of a new store in tx and names its log origin.
func newStore(tx *bolt.Tx, origin string) error {
	if origin == "" {
		return errors.New("a new store needs the name of its log (its origin), such as consent.example.com/log")
	}
	if err := translog.CheckOrigin(origin); err != nil {
		return err
	}
	for _, name := range append(slices.Clone(buckets), derived...) {
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	for _, k := range [][]byte{keyIndexed, keyCounted} {
		if err := meta.Put(k, []byte{1}); err != nil {
			return err
		}
	}
	return meta.Put(keyOrigin, []byte(origin))
}

// read reads the log's head from tx, and the greatest record id: what the store keeps
// in memory. It reads no more, so that a store opens in the same time whatever its
// size; a page damaged elsewhere is found where it is read (see view and update).
func (s *Store) read(tx *bolt.Tx) error {
	switch m, err := readMark(tx); {
	case err != nil:
		return err
	case m != nil:
		return m.Err()
	}
	if from := tx.Bucket(bucketMeta).Get(keyCopying); from != nil {
		return move.InProgress(string(from))
	}
	stored := string(tx.Bucket(bucketMeta).Get(keyOrigin))
	if s.origin == "" {
		s.origin = stored
	}
	if stored != s.origin {
		return fmt.Errorf("the store's log is %q, but the configuration names %q: a log's name never changes", stored, s.origin)
	}
	verifier, err := s.keys.LogVerifier(s.origin)
	if err != nil {
		return err
	}
	if at := signedAt(tx); !at.IsZero() {
		s.signedAt.Store(at.UnixMilli())
	}
	if s.log, err = translog.Open(logTx{tx: tx}, verifier); err != nil {
		if errors.Is(err, translog.ErrUnknownKey) {
			return fmt.Errorf("the log's latest checkpoint was signed by a key the signing keys lack: with the key that signed it lost or replaced, what it signed would no longer verify (%w)", err)
		}
		return err
	}
	if err := s.recent.read(tx); err != nil {
		return err
	}
	if k, _ := tx.Bucket(bucketRecords).Cursor().Last(); k != nil {
		if len(k) != len(s.lastID) {
			return fmt.Errorf("record %x: its key is not a record id", k)
		}
		s.lastID = uuid.UUID(k)
	}
	return nil
}

// Append stores r durably with its leaf in the log, under a signed checkpoint, and
// returns its receipt: it returns only once the transaction holding r has been synced
// to disk. r.ID and r.ConsentID must be UUIDs (an error with code consent.EInvalid
// otherwise), and r.ID must not be stored yet: records are never replaced. When the
// write queue is full or the store closed, Append returns at once an error wrapping
// consent.ErrUnavailable and r is not stored.
//
// If ctx is done before r is queued, r is not stored. If ctx is done while r waits
// for its commit, Append returns ctx.Err() (wrapped) but r may still be committed:
// a transaction cannot take back one record, and the caller must then treat the
// outcome as unknown, as after a timeout.
func (s *Store) Append(ctx context.Context, r *consent.Record) (*consent.Receipt, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: append: %w", err)
	}
	req, parts, err := s.newRequest(r)
	if err != nil {
		return nil, fmt.Errorf("bolt: append: %w", err)
	}
	if err := s.failure(); err != nil {
		return nil, fmt.Errorf("bolt: append: %w", err)
	}
	if err := s.writer.Enqueue(req); err != nil {
		return nil, fmt.Errorf("bolt: append: %w", err)
	}
	defer s.writer.Done()
	var a appended
	select {
	case a = <-req.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("bolt: append: %w", ctx.Err())
	}
	if a.err != nil {
		return nil, a.err
	}
	// From the batch's hashes in memory: no read transaction for the proof.
	var receipt *consent.Receipt
	p, err := a.batch.Prove(a.index, translog.Hashes(ctx, s))
	if err == nil {
		receipt, err = translog.NewReceipt(p, parts.decision, parts.leaf, parts.snapshot)
	}
	if err != nil {
		// The record is stored: only its proof is missing, which GET
		// /v1/consents/{id} gives again.
		return nil, fmt.Errorf("bolt: append: the receipt of record %s, which is stored: %w", r.ID, err)
	}
	return receipt, nil
}

// newRequest prepares the append of r: its stored value, its leaf and the leaf's
// hash, and the parts its receipt needs.
func (s *Store) newRequest(r *consent.Record) (*request, receiptParts, error) {
	if r == nil {
		return nil, receiptParts{}, consent.Errorf(consent.EInvalid, "no record")
	}
	if _, err := uuid.Parse(r.ID); err != nil {
		return nil, receiptParts{}, consent.Errorf(consent.EInvalid, "record id %q is not a UUID", r.ID)
	}
	consentID, err := uuid.Parse(r.ConsentID)
	if err != nil {
		return nil, receiptParts{}, consent.Errorf(consent.EInvalid, "consent id %q is not a UUID", r.ConsentID)
	}
	if len(r.Site) == 0 || len(r.Site) > 255 {
		return nil, receiptParts{}, consent.Errorf(consent.EInvalid, "site %q is not 1 to 255 bytes long", r.Site)
	}
	decision, err := translog.DecisionPart(r)
	if err != nil {
		return nil, receiptParts{}, err
	}
	identifying, err := translog.IdentifyingPart(r)
	if err != nil {
		return nil, receiptParts{}, err
	}
	parts := receiptParts{decision: decision}
	var digest [32]byte
	if snap, _ := s.snapshots.Lookup(r.Site, r.Fingerprint, s.snapshotGetter); snap != nil {
		digest, parts.snapshot = snap.Digest, snap.Text
	}
	leaf, err := translog.NewLeaf(r, digest, decision, identifying)
	if err != nil {
		return nil, receiptParts{}, err
	}
	parts.leaf, err = leaf.MarshalBinary()
	if err != nil {
		return nil, receiptParts{}, err
	}
	req := &request{
		record:    r,
		recordID:  leaf.RecordID,
		consentID: consentID,
		value:     encodeRecord(consentID, decision, identifying),
		leaf:      parts.leaf,
		leafHash:  translog.LeafHash(parts.leaf),
		done:      make(chan appended, 1),
	}
	return req, parts, nil
}

// commit writes batch in one transaction: the records, their leaves, the tree's new
// hashes and one checkpoint signed over them. It answers every request in it once
// that transaction is durable, and only then moves the log's head.
func (s *Store) commit(batch []*request) {
	if s.beforeCommit != nil {
		s.beforeCommit(len(batch))
	}
	// The appends queued before a commit failed are refused as the later ones are:
	// committed on what bbolt holds in memory, they could fork the log.
	if err := s.failure(); err != nil {
		for _, req := range batch {
			req.done <- appended{err: fmt.Errorf("bolt: append: %w", err)}
		}
		return
	}
	// A duplicate id fails its own request only; the others in the batch commit.
	answers := make([]appended, len(batch))
	var b *translog.Batch
	var last uuid.UUID
	start := time.Now()
	signedAt := start // of the checkpoint the batch's transaction signs
	err := s.update(func(tx *bolt.Tx) error {
		if s.failCommit != nil {
			if err := s.failCommit(); err != nil {
				return err
			}
		}
		records, log, recent := tx.Bucket(bucketRecords), tx.Bucket(bucketLog), tx.Bucket(bucketRecent)
		// Record ids are UUIDv7 and the log's keys count up, so new keys land at the
		// end: full leaf pages take about half the space of the default 0.5. bbolt
		// does not persist FillPercent, hence in every transaction.
		records.FillPercent, log.FillPercent, recent.FillPercent = 1.0, 1.0, 1.0
		index := s.log.Head().Size
		hashes := make([]tlog.Hash, 0, len(batch))
		counts := consent.Counts{}
		last = s.lastID
		for i, req := range batch {
			if bytes.Compare(req.recordID[:], last[:]) <= 0 && records.Get(req.recordID[:]) != nil {
				answers[i].err = fmt.Errorf("bolt: append: %w",
					consent.Errorf(consent.EInvalid, "record id %s is already stored", req.recordID))
				continue
			}
			binary.BigEndian.PutUint64(req.value[offsetIndex:], uint64(index))
			if err := records.Put(req.recordID[:], req.value); err != nil {
				return fmt.Errorf("record %s: %w", req.recordID, err)
			}
			if err := log.Put(leafKey(index), req.leaf); err != nil {
				return fmt.Errorf("leaf %d: %w", index, err)
			}
			if err := recent.Put(req.recordID[:], req.consentID[:]); err != nil {
				return fmt.Errorf("record %s in the consent index: %w", req.recordID, err)
			}
			answers[i].index = index
			counts.Count(req.record)
			if bytes.Compare(req.recordID[:], last[:]) > 0 {
				last = req.recordID
			}
			hashes = append(hashes, req.leafHash)
			index++
		}
		if len(hashes) == 0 {
			return nil
		}
		if err := addStats(tx, counts); err != nil {
			return fmt.Errorf("statistics: %w", err)
		}
		signer, err := s.keys.LogSigner(s.origin)
		if err != nil {
			return err
		}
		b, err = s.log.Append(logTx{tx: tx, signedAt: signedAt}, hashes, signer)
		return err
	})
	if s.onCommit != nil {
		s.onCommit(len(batch), time.Since(start))
	}
	if err != nil {
		// Whether the transaction is on disk is unknown: bbolt may keep in memory the
		// meta page of a commit whose sync failed, and build the next transactions on
		// it. Another batch from the head in memory could then sign a second tree of
		// the same size: the store takes no more appends until it is opened again,
		// which reads what the disk holds.
		s.failed.Store(&err)
	}
	if err == nil && b != nil {
		s.log.Commit(b)
		s.signedAt.Store(signedAt.UnixMilli())
		s.lastID = last
		// Indexed before anyone is answered: a record acknowledged to one visitor is
		// visible to the next request.
		for i, req := range batch {
			if answers[i].err == nil {
				s.recent.add(req.consentID, req.recordID)
			}
		}
		if s.recent.size() >= s.mergeAt {
			select {
			case s.merge <- struct{}{}:
			default: // a merge is due already
			}
		}
	}
	for i, req := range batch {
		a := answers[i]
		switch {
		case err != nil:
			a.err = fmt.Errorf("bolt: append: %w", err)
		case a.err == nil:
			a.batch = b
		}
		req.done <- a
	}
}

// RecordsByConsent returns the records of consentID, oldest first (by RecordedAt, then
// by ID), each with its receipt proved against the log's head. An id that is not a
// UUID has no records, as Append refuses it.
func (s *Store) RecordsByConsent(ctx context.Context, consentID string) ([]*consent.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: records by consent: %w", err)
	}
	recs := []*consent.Record{}
	id, err := uuid.Parse(consentID)
	if err != nil {
		return recs, nil
	}
	if s.writer.Closed() {
		return nil, fmt.Errorf("bolt: records by consent: store closed: %w", consent.ErrUnavailable)
	}

	// The index in memory first: a commit moves the log's head before it indexes its
	// records there, so the head read next proves every record it names; the head
	// is committed before the read transaction starts, so the tree it reads holds it.
	ids := s.recordIDs(id)
	head := s.log.Head()
	err = s.view(func(tx *bolt.Tx) error {
		records := tx.Bucket(bucketRecords)
		for _, rid := range ids(tx) {
			v := records.Get(rid[:])
			if v == nil {
				continue // purged since the index in memory was read
			}
			r, err := s.proved(tx, v, head)
			if err != nil {
				return fmt.Errorf("record %s: %w", rid, err)
			}
			recs = append(recs, r)
		}
		return nil
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		err = fmt.Errorf("store closed: %w", consent.ErrUnavailable)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt: records by consent: %w", err)
	}
	// The index holds the order of record ids. The server takes the UUIDv7 id and the
	// timestamp separately, so two records a few microseconds apart can disagree.
	slices.SortFunc(recs, func(a, b *consent.Record) int {
		return cmp.Or(a.RecordedAt.Compare(b.RecordedAt), strings.Compare(a.ID, b.ID))
	})
	return recs, nil
}

// Close stops taking appends (later ones get consent.ErrUnavailable), commits and
// answers those already queued, waits for them to read their proofs, then closes the
// file. Later calls return the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writer.Close()
		close(s.mergeDone)
		s.merging.Wait()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close: %w", err)
		}
	})
	return s.closeErr
}

// failure returns the error that stops the store taking appends, nil if none.
func (s *Store) failure() error {
	if err := s.failed.Load(); err != nil {
		return fmt.Errorf("a commit failed (%v), and the store takes no more records until consentd restarts: %w", *err, consent.ErrUnavailable)
	}
	return nil
}

// Origin returns the name of the store's log.
func (s *Store) Origin() string { return s.origin }

// LogSize returns how many leaves the log's newest checkpoint signs.
func (s *Store) LogSize() int64 { return s.log.Head().Size }

// QueueDepth returns how many appends wait for the writer now.
func (s *Store) QueueDepth() int { return s.writer.Depth() }

// QueueCapacity returns how many appends may wait for the writer before Append
// refuses more (QueueSize).
func (s *Store) QueueCapacity() int { return s.writer.Capacity() }

// FileSize returns the size of the store's file on disk.
func (s *Store) FileSize() (int64, error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, fmt.Errorf("bolt: file size: %w", err)
	}
	return fi.Size(), nil
}

func indexKey(index int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(index))
	return k[:]
}
