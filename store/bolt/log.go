package bolt

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// The keys of bucketLog put everything a batch writes at the bucket's end, so that a
// commit dirties its last page and not three buckets' (a third fewer pages per
// commit, which at one writer is what a commit costs):
//
//	hashKey      the storage index of a hash (tlog.StoredHashIndex), 8 bytes big-endian
//	leafKey      the storage index of a leaf's own hash, and 0x00: after that hash
//	keyCheckpoint 8 bytes 0xff, after every index a tree can reach
var keyCheckpoint = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func hashKey(storage int64) []byte { return indexKey(storage) }

func leafKey(index int64) []byte { return append(indexKey(tlog.StoredHashIndex(0, index)), 0) }

// leafIndex returns the index of the leaf stored under key k, ok false if k is no
// leaf's key.
func leafIndex(k []byte) (index int64, ok bool) {
	if len(k) != 9 || k[8] != 0 || k[0] >= 0x80 {
		return 0, false
	}
	level, n := tlog.SplitStoredHashIndex(int64(binary.BigEndian.Uint64(k)))
	return n, level == 0
}

// logTx is the log's storage in one bbolt transaction: its hashes and latest
// checkpoint in bucketLog.
// logTx is the log's storage in the transaction tx; signedAt is the time its
// PutCheckpoint keeps, for a transaction that signs one.
type logTx struct {
	tx       *bolt.Tx
	signedAt time.Time
}

var _ translog.Tx = logTx{}

func (l logTx) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	b := l.tx.Bucket(bucketLog)
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		v := b.Get(hashKey(x))
		if len(v) != tlog.HashSize {
			return nil, consent.Errorf(consent.ENotFound, "no hash at storage index %d", x)
		}
		out[i] = tlog.Hash(v)
	}
	return out, nil
}

func (l logTx) WriteHashes(start int64, hashes []tlog.Hash) error {
	b := l.tx.Bucket(bucketLog)
	for i, h := range hashes {
		if err := b.Put(hashKey(start+int64(i)), h[:]); err != nil {
			return fmt.Errorf("hash at %d: %w", start+int64(i), err)
		}
	}
	return nil
}

func (l logTx) Checkpoint() ([]byte, error) {
	return l.tx.Bucket(bucketLog).Get(keyCheckpoint), nil
}

func (l logTx) PutCheckpoint(signed []byte) error {
	if err := l.tx.Bucket(bucketLog).Put(keyCheckpoint, signed); err != nil {
		return err
	}
	if l.signedAt.IsZero() {
		return l.tx.Bucket(bucketMeta).Delete(keySignedAt) // a time no longer of this checkpoint
	}
	return l.tx.Bucket(bucketMeta).Put(keySignedAt, binary.BigEndian.AppendUint64(nil, uint64(l.signedAt.UnixMilli())))
}

// keySignedAt, in bucketMeta, holds when the newest checkpoint was signed, in
// milliseconds since 1970: the signed note says nothing of time.
var keySignedAt = []byte("checkpoint-signed-at")

// signedAt returns the time keySignedAt holds in tx, zero if none.
func signedAt(tx *bolt.Tx) time.Time {
	v := tx.Bucket(bucketMeta).Get(keySignedAt)
	if len(v) != 8 {
		return time.Time{}
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(v)))
}

// LastCheckpoint returns the log's newest checkpoint.
func (s *Store) LastCheckpoint(ctx context.Context) (*consent.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: last checkpoint: %w", err)
	}
	head := s.log.Head()
	if head.Size == 0 {
		return nil, fmt.Errorf("bolt: last checkpoint: %w", consent.Errorf(consent.ENotFound, "no checkpoint was signed yet"))
	}
	cp := *head
	if at := s.signedAt.Load(); at != 0 {
		cp.SignedAt = time.UnixMilli(at)
	}
	return &cp, nil
}

// ReadHashes returns the hashes of the log's tree at the storage indexes.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: read hashes: %w", err)
	}
	var out [][32]byte
	err := s.view(func(tx *bolt.Tx) error {
		hashes, err := logTx{tx: tx}.ReadHashes(indexes)
		out = make([][32]byte, len(hashes))
		for i, h := range hashes {
			out[i] = h
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: read hashes: %w", err)
	}
	return out, nil
}

// treeSize returns the size of the log's tree that tx holds, from its checkpoint.
func (s *Store) treeSize(tx *bolt.Tx) (int64, error) {
	verifier, err := s.keys.LogVerifier(s.origin)
	if err != nil {
		return 0, err
	}
	log, err := translog.Open(logTx{tx: tx}, verifier)
	if err != nil {
		return 0, err
	}
	return log.Head().Size, nil
}
