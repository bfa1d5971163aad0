package translog

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/mod/sumdb/tlog"
)

// Tx is the log's storage inside one transaction of its store: the stored hashes of
// the tree, by storage index (tlog.StoredHashIndex), and the latest checkpoint. A
// store implements it over its own transaction, so that a batch's records, hashes
// and checkpoint commit together or not at all.
type Tx interface {
	// ReadHashes returns the hashes stored at indexes, in their order, or an error
	// if one is missing.
	ReadHashes(indexes []int64) ([]tlog.Hash, error)
	// WriteHashes stores hashes at the storage indexes from start on.
	WriteHashes(start int64, hashes []tlog.Hash) error
	// Checkpoint returns the latest stored checkpoint, nil if none is stored.
	Checkpoint() ([]byte, error)
	// PutCheckpoint stores signed as the latest checkpoint.
	PutCheckpoint(signed []byte) error
}

// Log is the head of one log: the checkpoint of its latest committed tree. One
// writer at a time appends to it (see Append); anyone may read its head.
type Log struct {
	verifier *Verifier
	head     atomic.Pointer[Checkpoint]
}

// Open returns the log whose storage tx holds. Its latest checkpoint must verify with
// v and agree with the stored hashes: a store whose head does not is damaged or was
// altered, and extending it would sign a fork. A log without a checkpoint is empty.
func Open(tx Tx, v *Verifier) (*Log, error) {
	l := &Log{verifier: v}
	signed, err := tx.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("translog: open: %w", err)
	}
	if signed == nil {
		if _, err := tx.ReadHashes([]int64{0}); err == nil {
			return nil, errors.New("translog: open: hashes are stored but no checkpoint")
		}
		l.head.Store(&Checkpoint{Origin: v.origin})
		return l, nil
	}
	cp, err := v.Open(signed)
	if err != nil {
		return nil, fmt.Errorf("translog: open: the latest checkpoint: %w", err)
	}
	if cp.Origin != v.origin {
		return nil, fmt.Errorf("translog: open: the latest checkpoint is of log %q, want %q", cp.Origin, v.origin)
	}
	root, err := tlog.TreeHash(cp.Size, tlog.HashReaderFunc(tx.ReadHashes))
	if err != nil {
		return nil, fmt.Errorf("translog: open: the tree of the latest checkpoint (size %d): %w", cp.Size, err)
	}
	if root != tlog.Hash(cp.Root) {
		return nil, fmt.Errorf("translog: open: the stored hashes do not give the root of the latest checkpoint (size %d)", cp.Size)
	}
	l.head.Store(cp)
	return l, nil
}

// Head returns the checkpoint of the latest committed tree; an empty log's has size 0
// and no signature.
func (l *Log) Head() *Checkpoint { return l.head.Load() }

// Origin returns the log's name.
func (l *Log) Origin() string { return l.verifier.origin }

// Append adds leaves (their record hashes, tlog.RecordHash of each leaf's bytes) to
// the tree in tx, in order, after the head: it writes their stored hashes and one
// checkpoint of the new tree, signed by s. The head moves only when the caller passes
// that checkpoint to Commit, once tx committed: a checkpoint must never be given out
// before the tree it signs is durable.
//
// Only one goroutine may call Append and Commit.
func (l *Log) Append(tx Tx, leaves []tlog.Hash, s *Signer) (*Checkpoint, error) {
	if s.Name() != l.verifier.origin {
		return nil, fmt.Errorf("translog: append: signer of log %q, want %q", s.Name(), l.verifier.origin)
	}
	n := l.Head().Size
	start := tlog.StoredHashIndex(0, n)
	var pending []tlog.Hash
	// The hashes of this batch are read back before they are written: the tree's
	// right edge moves with every leaf.
	read := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var stored []int64
		for i, x := range indexes {
			if x >= start {
				out[i] = pending[x-start]
			} else {
				stored = append(stored, x)
			}
		}
		if len(stored) == 0 {
			return out, nil
		}
		hashes, err := tx.ReadHashes(stored)
		if err != nil {
			return nil, err
		}
		for i, x := range indexes {
			if x < start {
				out[i], hashes = hashes[0], hashes[1:]
			}
		}
		return out, nil
	})
	for _, leaf := range leaves {
		hashes, err := tlog.StoredHashesForRecordHash(n, leaf, read)
		if err != nil {
			return nil, fmt.Errorf("translog: append leaf %d: %w", n, err)
		}
		pending = append(pending, hashes...)
		n++
	}
	root, err := tlog.TreeHash(n, read)
	if err != nil {
		return nil, fmt.Errorf("translog: append: root of size %d: %w", n, err)
	}
	if err := tx.WriteHashes(start, pending); err != nil {
		return nil, fmt.Errorf("translog: append: %w", err)
	}
	cp, err := s.SignTree(n, root)
	if err != nil {
		return nil, err
	}
	if err := tx.PutCheckpoint(cp.Signed); err != nil {
		return nil, fmt.Errorf("translog: append: %w", err)
	}
	return cp, nil
}

// Commit makes cp, returned by Append, the log's head, once the transaction of that
// Append committed.
func (l *Log) Commit(cp *Checkpoint) { l.head.Store(cp) }

// HashStore is where a reader outside the store's transactions reads the tree's
// hashes: consent.Store's ReadHashes.
type HashStore interface {
	ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error)
}

// Hashes returns the reader of the tree's hashes in s, for proofs and tiles.
func Hashes(ctx context.Context, s HashStore) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hashes, err := s.ReadHashes(ctx, indexes)
		out := make([]tlog.Hash, len(hashes))
		for i, h := range hashes {
			out[i] = h
		}
		return out, err
	})
}
