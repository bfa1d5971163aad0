// Package bolt implements consent.Store on one bbolt file. A single writer goroutine
// commits whatever appends are queued in one transaction, so concurrent visitors share
// each commit's two fdatasyncs instead of queueing behind them one by one.
package bolt

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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

	consent "github.com/mixvoip/consentd"
)

// Defaults for the Open options.
const (
	// DefaultQueueSize is how many appends may wait for the writer before Append
	// answers ErrUnavailable: about 50 ms of writes at the 75,000–83,000 records/s
	// measured with 64 writers.
	DefaultQueueSize = 4096

	// DefaultMaxBatch is the most records committed in one transaction.
	DefaultMaxBatch = 1000

	// DefaultLockTimeout is how long Open waits for another process to release the
	// file lock.
	DefaultLockTimeout = time.Second
)

var (
	// bucketRecords maps a record id (16 UUID bytes) to the record (see record.go).
	bucketRecords = []byte("records")
	// bucketChain maps a place in the hash chain (uint64, big-endian) to the record
	// id (16 bytes) and the link (32 bytes) of the record at that place; once a purge
	// removed the record, its tombstone follows (see digests).
	bucketChain = []byte("chain")
	// bucketCheckpoints maps a place in the chain to the signed checkpoint of the
	// chain's head there, as JSON.
	bucketCheckpoints = []byte("checkpoints")
	// bucketMeta holds under keyChain the id of the store's chain, made at random
	// when the store is created; every signed statement names it.
	bucketMeta = []byte("meta")
	keyChain   = []byte("chain")

	// buckets are those of every store.
	buckets = [][]byte{bucketRecords, bucketSnapshots, bucketChain, bucketCheckpoints, bucketAudit, bucketPurges, bucketBase, bucketMeta, bucketKeys}
)

// Option changes a setting of Open.
type Option func(*config)

type config struct {
	queueSize   int
	maxBatch    int
	lockTimeout time.Duration
	signer      consent.CheckpointSigner
	every       time.Duration

	onCommit func(records int, took time.Duration)

	// beforeCommit, when set, runs in the writer before each transaction with the
	// number of records in it; tests use it to hold the writer.
	beforeCommit func(n int)
}

// QueueSize sets how many appends may wait for the writer; beyond that Append fails
// at once with an error wrapping consent.ErrUnavailable. It must be at least 1.
func QueueSize(n int) Option { return func(c *config) { c.queueSize = n } }

// MaxBatch sets the most records committed in one transaction. It must be at least 1.
func MaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// Checkpoints has the writer sign the head of the hash chain with signer after a
// commit when the last checkpoint is older than every, and on Close; and Open sign a
// head that the last run left unsigned (killed, or run without a signer). Open
// refuses a signer that lacks a key that signed in the store, with a
// *MissingKeysError.
func Checkpoints(signer consent.CheckpointSigner, every time.Duration) Option {
	return func(c *config) { c.signer, c.every = signer, every }
}

// OnCommit has the writer call f after each transaction of appends, committed or
// not, with the number of records it held and how long it took, its fdatasyncs
// included: what the metrics observe. f runs before any of those appends is answered,
// in the writer, so it must be quick.
func OnCommit(f func(records int, took time.Duration)) Option {
	return func(c *config) { c.onCommit = f }
}

// LockTimeout sets how long Open waits for the file lock held by another process. It
// must be positive.
func LockTimeout(d time.Duration) Option { return func(c *config) { c.lockTimeout = d } }

// Store is a consent.Store on one bbolt file. It is safe for concurrent use.
type Store struct {
	db           *bolt.DB
	maxBatch     int
	beforeCommit func(n int)
	onCommit     func(records int, took time.Duration)

	// mu orders sends on queue against Close closing it.
	mu     sync.RWMutex
	closed bool
	queue  chan *request

	index     *consentIndex
	snapshots snapshotCache
	chain     string // the id of the store's chain

	// The head of the hash chain, the last checkpoint, and the ids of the keys
	// known to be in bucketKeys, owned by the writer goroutine.
	lastSeq        uint64
	lastLink       [32]byte
	signer         consent.CheckpointSigner
	every          time.Duration
	checkpointSeq  uint64
	checkpointedAt time.Time // of the last attempt, which failed or not
	keyIDs         map[string]bool

	// signedAt is when the chain's head was last known signed (Unix nanoseconds), for
	// SignedAt: read by any goroutine.
	signedAt atomic.Int64

	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error

	ready readyProbe
}

var _ consent.Store = (*Store)(nil)

// request is one Append waiting for the writer. Keys and value are prepared by the
// caller, so JSON encoding runs in parallel and the writer only writes.
type request struct {
	recordID  uuid.UUID
	consentID uuid.UUID
	keyID     string // of the record's receipt, "" without one
	value     []byte
	done      chan error // buffered: the writer never waits for a caller that gave up
}

// Open opens the store in the bbolt file at path, creating the file and its directory
// if there is no file. It fails after the lock timeout (DefaultLockTimeout) if
// another process has the file open.
//
// It refuses an empty file, which bbolt would make a new store: a store that existed
// is never replaced unnoticed. It refuses a file that others than its owner may read
// or write. A file bbolt cannot make sense of gives an error wrapping ErrDamaged.
func Open(path string, opts ...Option) (*Store, error) {
	c := config{queueSize: DefaultQueueSize, maxBatch: DefaultMaxBatch, lockTimeout: DefaultLockTimeout}
	for _, o := range opts {
		o(&c)
	}
	switch {
	case c.queueSize < 1:
		return nil, fmt.Errorf("bolt: open: queue size %d is less than 1", c.queueSize)
	case c.maxBatch < 1:
		return nil, fmt.Errorf("bolt: open: max batch %d is less than 1", c.maxBatch)
	case c.lockTimeout <= 0:
		// bbolt waits forever for the lock with a zero timeout: a second process would
		// hang silently instead of saying the file is in use.
		return nil, fmt.Errorf("bolt: open: lock timeout %v is not positive", c.lockTimeout)
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
		var missing *MissingKeysError
		if errors.As(err, &missing) {
			missing.Path = path
			return nil, missing
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	go s.write()
	return s, nil
}

// load reads what the store keeps in memory: the consent index, the chain's head,
// the last checkpoint and the ids of the keys that signed in the store. It refuses a
// signer that lacks one of those keys; then it makes what a new store, or one written
// by an older consentd, lacks, and signs the head if the last run left it unsigned.
func load(db *bolt.DB, c config) (*Store, error) {
	s := &Store{
		db:           db,
		maxBatch:     c.maxBatch,
		beforeCommit: c.beforeCommit,
		onCommit:     c.onCommit,
		queue:        make(chan *request, c.queueSize),
		index:        newConsentIndex(),
		snapshots:    snapshotCache{m: map[string]*storedSnapshot{}},
		signer:       c.signer,
		every:        c.every,
		keyIDs:       map[string]bool{},
		writerDone:   make(chan struct{}),
	}
	var complete bool
	err := guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			var err error
			complete, err = s.read(tx)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if s.signer != nil {
		var missing []string
		for kid := range s.keyIDs {
			if !s.signer.HasKey(kid) {
				missing = append(missing, kid)
			}
		}
		if len(missing) > 0 {
			slices.Sort(missing)
			return nil, &MissingKeysError{KeyIDs: missing}
		}
	}
	// Written only now: a store refused is left as it was found.
	if !complete {
		if err := guard(func() error { return db.Update(s.create) }); err != nil {
			return nil, err
		}
	}
	// A run killed before its Close leaves records that no checkpoint covers, and
	// one without a signer never signs. A failure here (a disk nearly full) must not
	// keep the banners from being served: the next checkpoint covers the same
	// records, at the latest at Close.
	_ = s.checkpoint()
	s.checkpointedAt = time.Now()
	// The age of the head's signature counts from the open at the most: a head that
	// the last run signed at its close, or a store without records, waits for
	// nothing, and one that could not be signed just now is tried again within every.
	s.signedAt.Store(s.checkpointedAt.UnixNano())
	return s, nil
}

// read reads what the store keeps in memory from tx, and every page of it on the way.
// It reports whether the store is complete: a new store, and one written by an older
// consentd, lack buckets or the chain id.
func (s *Store) read(tx *bolt.Tx) (complete bool, err error) {
	if err := readPages(tx, bucketRecords); err != nil {
		return false, err
	}
	records := tx.Bucket(bucketRecords)
	if records == nil {
		if k, _ := tx.Cursor().First(); k != nil {
			return false, fmt.Errorf("not a consentd store: it holds no records, but bucket %q", k)
		}
		return false, nil // a new store
	}
	if s.chain = chainID(tx); s.chain == "" {
		// Only a new store gets an id: statements signed before would no longer
		// verify under a new one.
		for _, name := range [][]byte{bucketChain, bucketCheckpoints, bucketPurges, bucketBase} {
			if b := tx.Bucket(name); b != nil {
				if k, _ := b.Cursor().First(); k != nil {
					return false, fmt.Errorf("the store has a chain but no chain id: written by an older consentd, or altered (consentd verify tells more)")
				}
			}
		}
	}
	if b := tx.Bucket(bucketChain); b != nil {
		if k, v := b.Cursor().Last(); k != nil {
			var ok bool
			if s.lastSeq, ok = uint64Key(k); !ok || len(v) < chainLinkEnd {
				return false, fmt.Errorf("the chain's last entry is malformed: consentd verify tells more")
			}
			copy(s.lastLink[:], v[16:chainLinkEnd])
		}
	}
	if b := tx.Bucket(bucketCheckpoints); b != nil {
		if k, _ := b.Cursor().Last(); k != nil {
			s.checkpointSeq, _ = uint64Key(k) // a malformed key: signed anew, verification reports it
		}
	}
	// A store written by an older consentd has no key ids yet: found once, in every
	// signed thing.
	find := tx.Bucket(bucketKeys) == nil
	if find {
		if err := s.findStatementKeys(tx); err != nil {
			return false, err
		}
	} else {
		err := tx.Bucket(bucketKeys).ForEach(func(k, _ []byte) error {
			s.keyIDs[string(k)] = true
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	err = records.ForEach(func(k, v []byte) error {
		sr, err := splitRecord(v)
		if err != nil || len(k) != 16 {
			return fmt.Errorf("record %x: %v", k, err)
		}
		s.index.add(sr.consentID, uuid.UUID(k))
		if find {
			var r struct {
				Receipt struct {
					KeyID string `json:"kid"`
				} `json:"receipt"`
			}
			if json.Unmarshal(sr.core, &r) == nil && r.Receipt.KeyID != "" {
				s.keyIDs[r.Receipt.KeyID] = true
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	for _, name := range buckets {
		if tx.Bucket(name) == nil {
			return false, nil
		}
	}
	return s.chain != "", nil
}

// create makes the buckets and the chain id that tx lacks, and stores the key ids
// read if the store had none stored.
func (s *Store) create(tx *bolt.Tx) error {
	found := tx.Bucket(bucketKeys) == nil
	for _, name := range buckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	if s.chain == "" {
		s.chain = rand.Text()
		if err := tx.Bucket(bucketMeta).Put(keyChain, []byte(s.chain)); err != nil {
			return fmt.Errorf("chain id: %w", err)
		}
	}
	if found {
		b := tx.Bucket(bucketKeys)
		for kid := range s.keyIDs {
			if err := b.Put([]byte(kid), nil); err != nil {
				return fmt.Errorf("key id %s: %w", kid, err)
			}
		}
	}
	return nil
}

// Append stores r durably: it returns nil only once the transaction holding r has been
// synced to disk. r.ID and r.ConsentID must be UUIDs (an error with code
// consent.EInvalid otherwise), and r.ID must not be stored yet: records are never
// replaced. When the write queue is full or the store closed, Append returns at once
// an error wrapping consent.ErrUnavailable and r is not stored.
//
// If ctx is done before r is queued, r is not stored. If ctx is done while r waits
// for its commit, Append returns ctx.Err() (wrapped) but r may still be committed:
// a transaction cannot take back one record, and the caller must then treat the
// outcome as unknown, as after a timeout.
func (s *Store) Append(ctx context.Context, r *consent.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: append: %w", err)
	}
	req, err := s.newRequest(r)
	if err != nil {
		return fmt.Errorf("bolt: append: %w", err)
	}
	if err := s.enqueue(req); err != nil {
		return fmt.Errorf("bolt: append: %w", err)
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("bolt: append: %w", ctx.Err())
	}
}

func (s *Store) newRequest(r *consent.Record) (*request, error) {
	if r == nil {
		return nil, consent.Errorf(consent.EInvalid, "no record")
	}
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return nil, consent.Errorf(consent.EInvalid, "record id %q is not a UUID", r.ID)
	}
	consentID, err := uuid.Parse(r.ConsentID)
	if err != nil {
		return nil, consent.Errorf(consent.EInvalid, "consent id %q is not a UUID", r.ConsentID)
	}
	var digest [32]byte
	snap := s.snapshots.lookup(r.Site, r.Fingerprint, s.snapshotGetter)
	if snap != nil {
		digest = snap.digest
	}
	value, err := encodeRecord(r, consentID, sealed(r, snap), digest)
	if err != nil {
		return nil, fmt.Errorf("encode record %s: %w", r.ID, err)
	}
	req := &request{recordID: id, consentID: consentID, value: value, done: make(chan error, 1)}
	if r.Receipt != nil {
		req.keyID = r.Receipt.KeyID
	}
	return req, nil
}

// enqueue hands req to the writer without ever blocking: a caller that cannot be
// served soon is better answered "busy" than left hanging until its client gives up.
func (s *Store) enqueue(req *request) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return fmt.Errorf("store closed: %w", consent.ErrUnavailable)
	}
	select {
	case s.queue <- req:
		return nil
	default:
		return fmt.Errorf("write queue full (%d records): %w", cap(s.queue), consent.ErrUnavailable)
	}
}

// write is the single writer goroutine; it returns once Close has closed the queue and
// everything queued before is committed and answered.
//
// It takes whatever is queued and commits it at once, never waiting on a timer for more:
// DB.Batch waits up to 10 ms to fill a batch of 1000, which measured 93 records/s with
// one caller and 747 with eight, while this loop gives 3,500/s with one and
// 75,000–83,000/s with 64. DB.Batch may also run its function twice.
func (s *Store) write() {
	defer close(s.writerDone)
	batch := make([]*request, 0, s.maxBatch)
	for req := range s.queue {
		batch = append(batch[:0], req)
		batch = s.takeQueued(batch)
		s.commit(batch)
		clear(batch) // let the answered requests be collected while the queue is idle
		if time.Since(s.checkpointedAt) >= s.every {
			// A failure is not an append's failure: the records are committed, and
			// the next checkpoint covers them.
			_ = s.checkpoint()
		}
	}
	_ = s.checkpoint()
}

// checkpoint signs the chain's head, if a signer is set and the head moved since the
// last checkpoint.
func (s *Store) checkpoint() error {
	if s.signer == nil || s.lastSeq == s.checkpointSeq {
		return nil
	}
	c := &consent.Checkpoint{Seq: s.lastSeq, Link: hex.EncodeToString(s.lastLink[:]), At: time.Now().UTC()}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return s.putSigned(tx.Bucket(bucketCheckpoints), seqKey(c.Seq), c)
	})
	s.checkpointedAt = time.Now()
	if err != nil {
		return fmt.Errorf("sign a checkpoint of place %d: %w", c.Seq, err)
	}
	s.checkpointSeq = c.Seq
	s.signedAt.Store(s.checkpointedAt.UnixNano())
	return nil
}

// takeQueued appends to batch the requests already queued, up to the batch limit.
func (s *Store) takeQueued(batch []*request) []*request {
	for len(batch) < s.maxBatch {
		select {
		case req, ok := <-s.queue:
			if !ok {
				return batch
			}
			batch = append(batch, req)
		default:
			return batch
		}
	}
	return batch
}

// commit writes batch in one transaction and answers every request in it.
func (s *Store) commit(batch []*request) {
	if s.beforeCommit != nil {
		s.beforeCommit(len(batch))
	}
	// A duplicate id fails its own request only; the others in the batch commit.
	rejected := make([]error, len(batch))
	var next uint64
	var nextLink [32]byte
	var newKeys []string // ids of keys that signed a receipt for the first time
	start := time.Now()
	err := s.db.Update(func(tx *bolt.Tx) error {
		records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
		// Record ids are UUIDv7 and places in the chain count up, so new keys land at
		// the end: full leaf pages take about 470 bytes per record instead of 1,050 at
		// the default 0.5. bbolt does not persist FillPercent, hence in every
		// transaction.
		records.FillPercent, chain.FillPercent = 1.0, 1.0
		seq, prev := s.lastSeq, s.lastLink
		for i, req := range batch {
			if records.Get(req.recordID[:]) != nil {
				rejected[i] = fmt.Errorf("bolt: append: %w",
					consent.Errorf(consent.EInvalid, "record id %s is already stored", req.recordID))
				continue
			}
			seq++
			binary.BigEndian.PutUint64(req.value[offsetSeq:offsetIdentSum], seq)
			sr, err := splitRecord(req.value)
			if err != nil {
				return fmt.Errorf("record %s: %w", req.recordID, err)
			}
			prev = link(prev[:], seq, req.recordID[:], sr.digests())
			if err := records.Put(req.recordID[:], req.value); err != nil {
				return fmt.Errorf("record %s: %w", req.recordID, err)
			}
			if err := chain.Put(seqKey(seq), append(req.recordID[:], prev[:]...)); err != nil {
				return fmt.Errorf("chain at %d: %w", seq, err)
			}
			if req.keyID != "" && !s.keyIDs[req.keyID] && !slices.Contains(newKeys, req.keyID) {
				if err := tx.Bucket(bucketKeys).Put([]byte(req.keyID), nil); err != nil {
					return fmt.Errorf("key id %s: %w", req.keyID, err)
				}
				newKeys = append(newKeys, req.keyID)
			}
		}
		next, nextLink = seq, prev
		return nil
	})
	if s.onCommit != nil {
		s.onCommit(len(batch), time.Since(start))
	}
	if err == nil {
		s.lastSeq, s.lastLink = next, nextLink
		for _, kid := range newKeys {
			s.keyIDs[kid] = true
		}
		// Indexed before anyone is answered: a record acknowledged to one visitor is
		// visible to the next request.
		s.index.mu.Lock()
		for i, req := range batch {
			if rejected[i] == nil {
				s.index.add(req.consentID, req.recordID)
			}
		}
		s.index.mu.Unlock()
	}
	for i, req := range batch {
		switch {
		case err != nil:
			req.done <- fmt.Errorf("bolt: append: %w", err)
		default:
			req.done <- rejected[i]
		}
	}
}

// RecordsByConsent returns the records of consentID, oldest first (by RecordedAt, then
// by ID). An id that is not a UUID has no records, as Append refuses it.
func (s *Store) RecordsByConsent(ctx context.Context, consentID string) ([]*consent.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: records by consent: %w", err)
	}
	recs := []*consent.Record{}
	id, err := uuid.Parse(consentID)
	if err != nil {
		return recs, nil
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, fmt.Errorf("bolt: records by consent: store closed: %w", consent.ErrUnavailable)
	}

	ids := s.index.records(id)
	err = s.db.View(func(tx *bolt.Tx) error {
		records := tx.Bucket(bucketRecords)
		for _, rid := range ids {
			v := records.Get(rid[:])
			if v == nil {
				continue // purged since the index was read
			}
			sr, err := splitRecord(v)
			if err != nil {
				return fmt.Errorf("decode record %s: %w", rid, err)
			}
			r, err := s.decode(tx, sr)
			if err != nil {
				return fmt.Errorf("decode record %s: %w", rid, err)
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
	// The index holds commit order. The server takes the UUIDv7 id and the timestamp
	// separately, so two records a few microseconds apart can disagree with it.
	slices.SortFunc(recs, func(a, b *consent.Record) int {
		return cmp.Or(a.RecordedAt.Compare(b.RecordedAt), strings.Compare(a.ID, b.ID))
	})
	return recs, nil
}

// Close stops taking appends (later ones get consent.ErrUnavailable), commits and
// answers those already queued, then closes the file. Later calls return the first
// call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.queue)
		s.mu.Unlock()
		<-s.writerDone
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("bolt: close: %w", err)
		}
	})
	return s.closeErr
}

// QueueDepth returns how many appends wait for the writer now.
func (s *Store) QueueDepth() int { return len(s.queue) }

// QueueCapacity returns how many appends may wait for the writer before Append
// refuses more (QueueSize).
func (s *Store) QueueCapacity() int { return cap(s.queue) }

// SignedAt returns when a checkpoint last signed the chain's head, or when the store
// opened if none has since: while records come in, a signature older than a few
// checkpoint intervals means that checkpoints fail.
func (s *Store) SignedAt() time.Time { return time.Unix(0, s.signedAt.Load()) }

// FileSize returns the size of the store's file on disk.
func (s *Store) FileSize() (int64, error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, fmt.Errorf("bolt: file size: %w", err)
	}
	return fi.Size(), nil
}

// uint64Key reads a key of eight bytes (a place in the chain, a time), which someone
// with access to the disk may have made any length.
func uint64Key(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// chainID returns the id of the store's chain in tx, "" if it has none.
func chainID(tx *bolt.Tx) string {
	if b := tx.Bucket(bucketMeta); b != nil {
		return string(b.Get(keyChain))
	}
	return ""
}
