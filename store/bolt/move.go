package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mixvoip/consentd/internal/durable"
	"github.com/mixvoip/consentd/store/move"
	"github.com/mixvoip/consentd/translog"
)

// keyMoved, in bucketMeta, holds the store's move.Mark as JSON once consentd copy
// copies it to another store, and keyCopying, in a copy that consentd copy has not
// completed, where it is copied from: Open refuses a store with either.
var (
	keyMoved   = []byte("moved")
	keyCopying = []byte("copying")
)

// readMark returns the store's move.Mark, nil if it has none.
func readMark(tx *bolt.Tx) (*move.Mark, error) {
	v := tx.Bucket(bucketMeta).Get(keyMoved)
	if v == nil {
		return nil, nil
	}
	m := new(move.Mark)
	if err := json.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("the mark of a move (consentd copy): %w", err)
	}
	return m, nil
}

func putMark(tx *bolt.Tx, m *move.Mark) error {
	if m == nil {
		return tx.Bucket(bucketMeta).Delete(keyMoved)
	}
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyMoved, v)
}

// Move copies the store in the file at path, which no process may have open, with
// copy, which is given the whole store in one read transaction. The store is marked
// as being moved to to first, so that it takes no records meanwhile, and as moved
// for good once copy succeeds; if copy fails, the store gets back the mark it had
// before. A store moved for good is not copied again: its copy went on.
func Move(path, to string, copy func(move.Source) error) error {
	if err := moveFrom(path, to, copy); err != nil {
		return fmt.Errorf("bolt: move %s: %w", path, err)
	}
	return nil
}

func moveFrom(path, to string, copy func(move.Source) error) error {
	db, err := openStoreFile(path)
	if err != nil {
		return err
	}
	defer db.Close()
	var before *move.Mark
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			switch fresh, err := isNew(tx); {
			case err != nil:
				return err
			case fresh:
				return errors.New("not a consentd store: it is empty")
			}
			var err error
			if before, err = readMark(tx); err != nil {
				return err
			}
			if before != nil && before.Done {
				return before.Err()
			}
			if from := tx.Bucket(bucketMeta).Get(keyCopying); from != nil {
				return move.InProgress(string(from))
			}
			return putMark(tx, &move.Mark{To: to, At: time.Now().UTC()})
		})
	})
	if err != nil {
		return err
	}
	copied := guard(func() error {
		return db.View(func(tx *bolt.Tx) error { return copy(stored{tx}) })
	})
	after := before
	if copied == nil {
		after = &move.Mark{To: to, At: time.Now().UTC(), Done: true}
	}
	marked := guard(func() error {
		return db.Update(func(tx *bolt.Tx) error { return putMark(tx, after) })
	})
	return move.Outcome(copied, marked)
}

// Audit calls fn with each audit entry, oldest first.
func (s stored) Audit(fn func(entry []byte) error) error {
	return s.tx.Bucket(bucketAudit).ForEach(func(_, v []byte) error { return fn(v) })
}

// Fill makes a new store in the file at path, where there must be no file, with
// fill, all or nothing: it writes a temporary file beside path and gives it the name
// only once fill succeeded and the file is synced. The store is marked as a copy of
// from in progress, which Open refuses, until Complete.
func Fill(path, from string, fill func(move.Destination) error) error {
	if err := fillFile(path, from, fill); err != nil {
		return fmt.Errorf("bolt: fill %s: %w", path, err)
	}
	return nil
}

func fillFile(path, from string, fill func(move.Destination) error) error {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		if err == nil {
			err = errors.New("a file is there already: a store is copied into a new file only")
		}
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".copy-*") // mode 0600: records are personal data
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Close(); err != nil {
		return err
	}
	db, err := openBolt(tmp, bolt.Options{Timeout: DefaultLockTimeout})
	if err != nil {
		return err
	}
	// One sync at the end: until the file has its name, a crash loses nothing.
	db.NoSync = true
	w := &filler{db: db}
	err = fill(w)
	if err == nil {
		err = w.put(bucketMeta, keyCopying, []byte(from))
	}
	if err == nil {
		err = w.commit()
	}
	if err == nil {
		err = db.Sync()
	}
	if w.tx != nil {
		_ = w.tx.Rollback()
	}
	if closeErr := db.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	return durable.Link(tmp, path)
}

// filler is a new store being filled, in transactions of up to fillBatch writes.
type filler struct {
	db     *bolt.DB
	tx     *bolt.Tx
	writes int
}

// fillBatch bounds the writes of one transaction of Fill: bbolt keeps a
// transaction's pages in memory until it commits.
const fillBatch = 20000

var _ move.Destination = (*filler)(nil)

// put stores a copy of value under key in bucket: bbolt needs the value until the
// transaction commits, and the caller's is valid only during the call.
func (w *filler) put(bucket, key, value []byte) error {
	if w.writes >= fillBatch {
		if err := w.commit(); err != nil {
			return err
		}
	}
	if w.tx == nil {
		tx, err := w.db.Begin(true)
		if err != nil {
			return err
		}
		w.tx, w.writes = tx, 0
	}
	w.writes++
	b := w.tx.Bucket(bucket)
	if !bytes.Equal(bucket, bucketSnapshots) {
		// Keys in order, as the writer's: full pages. bbolt keeps no FillPercent
		// across transactions.
		b.FillPercent = 1.0
	}
	return b.Put(key, bytes.Clone(value))
}

func (w *filler) commit() error {
	if w.tx == nil {
		return nil
	}
	tx := w.tx
	w.tx = nil
	return tx.Commit()
}

func (w *filler) SetOrigin(origin string) error {
	return w.db.Update(func(tx *bolt.Tx) error {
		if err := newStore(tx, origin); err != nil {
			return err
		}
		// The copy's records are counted when it first opens.
		return tx.Bucket(bucketMeta).Delete(keyCounted)
	})
}

func (w *filler) Link(signed []byte) error {
	// The links are few: each in a sequence of its own, oldest first.
	if err := w.commit(); err != nil {
		return err
	}
	return w.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLinks)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(indexKey(int64(seq)), bytes.Clone(signed))
	})
}

func (w *filler) Purge(at time.Time, p *translog.Purge) error {
	return w.put(bucketPurges, purgeKey(at, p.Site), p.Signed)
}

func (w *filler) Snapshot(site, fingerprint string, snapshot []byte) error {
	return w.put(bucketSnapshots, snapshotKey(site, fingerprint), snapshot)
}

func (w *filler) Audit(entry []byte) error {
	var e struct{ ID string }
	if err := json.Unmarshal(entry, &e); err != nil {
		return fmt.Errorf("an audit entry: %w", err)
	}
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return fmt.Errorf("an audit entry: %w", err)
	}
	return w.put(bucketAudit, id[:], entry)
}

func (w *filler) Leaf(index int64, leaf []byte, id uuid.UUID, r *translog.StoredRecord) error {
	if err := w.put(bucketLog, leafKey(index), leaf); err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	v := encodeRecord(r.ConsentID, r.Decision, r.Identifying)
	binary.BigEndian.PutUint64(v[offsetIndex:], uint64(index))
	if err := w.put(bucketConsents, consentKey(r.ConsentID, id), nil); err != nil {
		return err
	}
	return w.put(bucketRecords, id[:], v)
}

func (w *filler) WriteHashes(start int64, hashes []tlog.Hash) error {
	for i, h := range hashes {
		if err := w.put(bucketLog, hashKey(start+int64(i)), h[:]); err != nil {
			return err
		}
	}
	return nil
}

func (w *filler) PutCheckpoint(signed []byte) error {
	return w.put(bucketLog, keyCheckpoint, signed)
}

// Complete marks the copy of from in the file at path, which no process may have
// open, as complete: a store that Open takes. It does nothing to a store that is no
// copy in progress, and refuses a copy of another store.
func Complete(path, from string) error {
	err := func() error {
		db, err := openStoreFile(path)
		if err != nil {
			return err
		}
		defer db.Close()
		return guard(func() error {
			return db.Update(func(tx *bolt.Tx) error {
				if _, err := isNew(tx); err != nil {
					return err
				}
				meta := tx.Bucket(bucketMeta)
				switch copying := meta.Get(keyCopying); {
				case copying == nil:
					return nil
				case string(copying) != from:
					return fmt.Errorf("it is a copy of %s, not of %s", copying, from)
				}
				return meta.Delete(keyCopying)
			})
		})
	}()
	if err != nil {
		return fmt.Errorf("bolt: complete the copy %s: %w", path, err)
	}
	return nil
}

// openStoreFile opens the store file at path, which must exist, for a command that
// changes it while no consentd serves it.
func openStoreFile(path string) (*bolt.DB, error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("not a consentd store: %w", err)
	}
	return openDB(path, bolt.Options{Timeout: DefaultLockTimeout})
}
