package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// Verify checks the open store's log against its keys, and against the archived
// checkpoints (see VerifyFile).
func (s *Store) Verify(ctx context.Context, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	verifier, err := s.keys.LogVerifier(s.origin)
	if err != nil {
		return nil, fmt.Errorf("bolt: verify: %w", err)
	}
	var v *consent.Verification
	err = guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			v, err = verify(ctx, tx, verifier, archived)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: verify: %w", err)
	}
	return v, nil
}

// VerifyFile checks the log of a store file that no process has open, such as a
// backup copy, with verifier, which needs only the published keys. It rebuilds the
// tree from the stored leaves, and compares every stored hash, the checkpoint and
// the purge statements with it; it checks every record's parts against its leaf, and
// that the tree extends each archived checkpoint, kept apart from the store: whoever
// rewrites the log and re-signs it cannot rewrite those.
//
// A file that bbolt cannot make sense of, or whose pages do not hold together, gives
// an error wrapping ErrDamaged; a missing or empty file is not a store.
func VerifyFile(ctx context.Context, path string, verifier *translog.Verifier, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	if slices.Contains(archived, nil) {
		return nil, fmt.Errorf("bolt: verify %s: an archived checkpoint is missing", path)
	}
	v, err := verifyFile(ctx, path, verifier, archived)
	if err != nil {
		return nil, fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	return v, nil
}

// FileOrigin returns the name of the log of the store file at path, which no process
// has open: what verifying it with a keyring takes.
func FileOrigin(path string) (string, error) {
	var origin string
	err := readFile(path, func(tx *bolt.Tx) error {
		origin = string(tx.Bucket(bucketMeta).Get(keyOrigin))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("bolt: the log's name in %s: %w", path, err)
	}
	return origin, nil
}

// readFile calls fn in a read transaction of the store file at path, which no process
// has open, once bbolt could make sense of it and it proved a consentd store.
func readFile(path string, fn func(tx *bolt.Tx) error) error {
	switch fi, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("not a consentd store: there is no such file")
	case err != nil:
		return err
	case fi.Size() == 0:
		return errors.New("not a consentd store: the file is empty")
	}
	// The free list read as it opens, under guard: Check would read it in a
	// goroutine of its own.
	db, err := openDB(path, bolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout, PreLoadFreelist: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if _, err := isNew(tx); err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

func verifyFile(ctx context.Context, path string, verifier *translog.Verifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	var v *consent.Verification
	err := readFile(path, func(tx *bolt.Tx) error {
		if err := readPages(tx, nil); err != nil {
			return err
		}
		if err := checkPages(tx); err != nil {
			return err
		}
		var err error
		v, err = verify(ctx, tx, verifier, archived)
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// stored is a store's log and records in one read transaction, as translog.Verify
// reads them.
type stored struct{ tx *bolt.Tx }

var _ translog.Stored = stored{}

func verify(ctx context.Context, tx *bolt.Tx, verifier *translog.Verifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	v, err := translog.Verify(ctx, stored{tx}, verifier, archived)
	if err != nil || !v.OK {
		return v, err
	}
	return v, checkIndex(tx, v)
}

// checkIndex checks that the consent index holds every record under its consent id,
// and nothing else: a record it lacks would be missed by a lookup and by an
// erasure by consent id. What it finds wrong makes v not OK.
func checkIndex(tx *bolt.Tx, v *consent.Verification) error {
	recent, consents := tx.Bucket(bucketRecent), tx.Bucket(bucketConsents)
	if recent == nil || consents == nil {
		return nil // built when the store next opens
	}
	records := 0
	err := tx.Bucket(bucketRecords).ForEach(func(k, val []byte) error {
		sr, err := splitRecord(val)
		if err != nil {
			return fmt.Errorf("record %x: %w", k, err)
		}
		records++
		if !bytes.Equal(recent.Get(k), sr.consentID[:]) && consents.Get(consentKey(sr.consentID, uuid.UUID(k))) == nil {
			v.OK, v.RecordID = false, uuid.UUID(k).String()
			v.Problem = fmt.Sprintf("record %s is not in the consent index under its consent id: a lookup or an erasure by that id would miss it; rebuild the index with consentd reindex (consentd stopped)", v.RecordID)
			return errStop
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		return nil
	case err != nil:
		return err
	}
	// An entry a merge has put in bucketConsents and not yet dropped from
	// bucketRecent counts once.
	n := consents.Stats().KeyN
	err = recent.ForEach(func(k, v []byte) error {
		if len(v) == len(uuid.UUID{}) && consents.Get(consentKey(uuid.UUID(v), uuid.UUID(k))) == nil {
			n++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if n != records {
		v.OK = false
		v.Problem = fmt.Sprintf("the consent index holds %d entries for %d records; rebuild it with consentd reindex (consentd stopped)", n, records)
	}
	return nil
}

// errStop ends a walk that found what it looked for.
var errStop = errors.New("stop")

func (s stored) Origin() (string, error) { return string(s.tx.Bucket(bucketMeta).Get(keyOrigin)), nil }

func (s stored) Links(fn func(name string, signed []byte) error) error {
	c := s.tx.Bucket(bucketLinks).Cursor()
	for k, signed := c.Last(); k != nil; k, signed = c.Prev() {
		if err := fn(fmt.Sprintf("%x", k), signed); err != nil {
			return err
		}
	}
	return nil
}

func (s stored) Purges(fn func(at time.Time, signed []byte) error) error {
	return s.tx.Bucket(bucketPurges).ForEach(func(k, v []byte) error { return fn(purgeTime(k), v) })
}

func (s stored) Snapshots(fn func(site, fingerprint string, snapshot []byte) error) error {
	return s.tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
		site, fingerprint, _ := strings.Cut(string(k), "\x00")
		return fn(site, fingerprint, v)
	})
}

func (s stored) Leaves(fn func(index int64, leaf []byte) error) error {
	c := s.tx.Bucket(bucketLog).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) == 8 {
			continue // a hash, checked as its leaves are, or the checkpoint
		}
		index, ok := leafIndex(k)
		if !ok {
			index = -1 // no leaf's key: no leaf where the next one should be
		}
		if err := fn(index, v); err != nil {
			return err
		}
	}
	return nil
}

func (s stored) Leaf(index int64) ([]byte, error) {
	return s.tx.Bucket(bucketLog).Get(leafKey(index)), nil
}

func (s stored) Record(id uuid.UUID) (*translog.StoredRecord, error) {
	v := s.tx.Bucket(bucketRecords).Get(id[:])
	if v == nil {
		return nil, nil
	}
	return storedRecordOf(v), nil
}

func (s stored) RecordCount() (int, error) { return s.tx.Bucket(bucketRecords).Stats().KeyN, nil }

func (s stored) Records(fn func(id uuid.UUID, r *translog.StoredRecord) error) error {
	return s.tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		r := storedRecordOf(v)
		var id uuid.UUID
		if len(k) != len(id) {
			r.Err = fmt.Errorf("a key of %d bytes", len(k))
		}
		copy(id[:], k)
		return fn(id, r)
	})
}

func (s stored) Checkpoint() ([]byte, error) { return s.tx.Bucket(bucketLog).Get(keyCheckpoint), nil }

func (s stored) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return logTx{tx: s.tx}.ReadHashes(indexes)
}

// storedRecordOf takes the stored value v apart for translog.Verify.
func storedRecordOf(v []byte) *translog.StoredRecord {
	sr, err := splitRecord(v)
	return &translog.StoredRecord{Index: sr.index, ConsentID: sr.consentID, Decision: sr.decision, Identifying: sr.identifying, Err: err}
}
