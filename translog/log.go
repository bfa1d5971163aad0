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
func (l *Log) Append(tx Tx, leaves []tlog.Hash, s *Signer) (*Batch, error) {
	if s.Name() != l.verifier.origin {
		return nil, fmt.Errorf("translog: append: signer of log %q, want %q", s.Name(), l.verifier.origin)
	}
	first := l.Head().Size
	b := &Batch{First: first, start: tlog.StoredHashIndex(0, first), edge: map[int64]tlog.Hash{}}
	read := b.reader(tlog.HashReaderFunc(tx.ReadHashes))
	n := first
	for _, leaf := range leaves {
		hashes, err := tlog.StoredHashesForRecordHash(n, leaf, read)
		if err != nil {
			return nil, fmt.Errorf("translog: append leaf %d: %w", n, err)
		}
		b.hashes = append(b.hashes, hashes...)
		n++
	}
	root, err := tlog.TreeHash(n, read)
	if err != nil {
		return nil, fmt.Errorf("translog: append: root of size %d: %w", n, err)
	}
	if err := tx.WriteHashes(b.start, b.hashes); err != nil {
		return nil, fmt.Errorf("translog: append: %w", err)
	}
	if b.Checkpoint, err = s.SignTree(n, root); err != nil {
		return nil, err
	}
	if err := tx.PutCheckpoint(b.Checkpoint.Signed); err != nil {
		return nil, fmt.Errorf("translog: append: %w", err)
	}
	return b, nil
}

// Batch is the outcome of one Append: the checkpoint of the new tree, and the hashes
// that proving the batch's leaves takes, kept in memory: its own, and those of the
// tree before it that extending the tree read (its right edge, the left siblings of
// every new leaf's path). Its callers prove their leaves in parallel, without a read
// transaction each. It must not be changed.
type Batch struct {
	First      int64 // index of the batch's first leaf
	Checkpoint *Checkpoint

	start  int64       // storage index of hashes[0]
	hashes []tlog.Hash // the batch's stored hashes
	edge   map[int64]tlog.Hash
}

// reader returns the reader of the tree's hashes that takes them from b, and from
// stored only what b lacks. While Append runs, it keeps what it reads of stored in the
// edge.
func (b *Batch) reader(stored tlog.HashReader) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var missing, at []int64 // storage indexes b lacks, and where they go in out
		for i, x := range indexes {
			if h, ok := b.hash(x); ok {
				out[i] = h
			} else {
				missing, at = append(missing, x), append(at, int64(i))
			}
		}
		if len(missing) == 0 {
			return out, nil
		}
		hashes, err := stored.ReadHashes(missing)
		if err != nil {
			return nil, err
		}
		for j, i := range at {
			out[i] = hashes[j]
			if b.Checkpoint == nil {
				b.edge[missing[j]] = hashes[j]
			}
		}
		return out, nil
	})
}

func (b *Batch) hash(index int64) (tlog.Hash, bool) {
	if index >= b.start && index-b.start < int64(len(b.hashes)) {
		return b.hashes[index-b.start], true
	}
	h, ok := b.edge[index]
	return h, ok
}

// Prove returns the proof of the leaf at index, one of b's, in b's tree, from the
// hashes b holds; it reads from stored only what b lacks, which extending the tree
// did not read.
func (b *Batch) Prove(index int64, stored tlog.HashReader) (*Proof, error) {
	return Prove(b.reader(stored), index, b.Checkpoint)
}

// Commit makes b's checkpoint the log's head, once the transaction of the Append that
// returned b committed.
func (l *Log) Commit(b *Batch) { l.head.Store(b.Checkpoint) }

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
