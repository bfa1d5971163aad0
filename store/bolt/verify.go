package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// Verify checks the hash chain of the open store: every record is where the chain
// says, unchanged, no record is outside the chain, and every checkpoint is signed and
// agrees with it.
func (s *Store) Verify(ctx context.Context) (*consent.Verification, error) {
	var v *consent.Verification
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = verify(ctx, tx, s.signer)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: verify: %w", err)
	}
	return v, nil
}

// VerifyFile checks the hash chain of a store file that no process has open, such as
// a backup copy; verifier checks the checkpoints' signatures.
func VerifyFile(ctx context.Context, path string, verifier consent.CheckpointVerifier) (*consent.Verification, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout})
	if err != nil {
		return nil, fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	defer db.Close()
	var v *consent.Verification
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRecords) == nil || tx.Bucket(bucketChain) == nil {
			return fmt.Errorf("not a consentd store")
		}
		v, err = verify(ctx, tx, verifier)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	return v, nil
}

func verify(ctx context.Context, tx *bolt.Tx, verifier consent.CheckpointVerifier) (*consent.Verification, error) {
	records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
	v := &consent.Verification{}
	broken := func(seq uint64, id []byte, format string, args ...any) (*consent.Verification, error) {
		v.BrokenAt, v.Problem = seq, fmt.Sprintf(format, args...)
		if id != nil {
			v.RecordID = uuid.UUID(id).String()
		}
		return v, nil
	}
	var prev [32]byte
	var want uint64 = 1
	c := chain.Cursor()
	for k, entry := c.First(); k != nil; k, entry = c.Next() {
		if v.Records%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		seq := binary.BigEndian.Uint64(k)
		if seq != want {
			return broken(want, nil, "the chain has no record at place %d: it was deleted", want)
		}
		id, stored := entry[:16], entry[16:]
		value := records.Get(id)
		if value == nil {
			return broken(seq, id, "record %s at place %d was deleted", uuid.UUID(id), seq)
		}
		sr, err := splitRecord(value)
		if err != nil {
			return broken(seq, id, "record %s at place %d is unreadable: %v", uuid.UUID(id), seq, err)
		}
		if sr.seq != seq {
			return broken(seq, id, "record %s claims place %d, the chain has it at %d", uuid.UUID(id), sr.seq, seq)
		}
		if sum := sha256.Sum256(sr.ident); len(sr.ident) > 0 && !bytes.Equal(sum[:], sr.identSum) {
			return broken(seq, id, "the identifying part of record %s at place %d was altered", uuid.UUID(id), seq)
		}
		prev = link(prev[:], seq, id, sr)
		if !bytes.Equal(prev[:], stored) {
			return broken(seq, id, "record %s at place %d was altered", uuid.UUID(id), seq)
		}
		v.Records++
		want++
	}
	if n := records.Stats().KeyN; n != v.Records {
		// Some record is outside the chain: find the first one.
		rc := records.Cursor()
		for k, value := rc.First(); k != nil; k, value = rc.Next() {
			sr, err := splitRecord(value)
			entry := chain.Get(seqKey(sr.seq))
			if err != nil || entry == nil || !bytes.Equal(entry[:16], k) {
				return broken(sr.seq, k, "record %s is not in the chain: it was inserted", uuid.UUID(k))
			}
		}
	}
	// A chain rewritten consistently, or cut off at its end, still disagrees with the
	// checkpoints signed before.
	cc := tx.Bucket(bucketCheckpoints).Cursor()
	for k, value := cc.First(); k != nil; k, value = cc.Next() {
		var cp consent.Checkpoint
		if err := json.Unmarshal(value, &cp); err != nil {
			return broken(binary.BigEndian.Uint64(k), nil, "the checkpoint at place %d is unreadable", binary.BigEndian.Uint64(k))
		}
		if verifier == nil || !verifier.VerifyCheckpoint(&cp) {
			return broken(cp.Seq, nil, "the checkpoint at place %d is not signed by a known key", cp.Seq)
		}
		entry := chain.Get(seqKey(cp.Seq))
		if entry == nil {
			return broken(cp.Seq, nil, "the chain ends at place %d, but a signed checkpoint vouches for place %d: records were cut off", want-1, cp.Seq)
		}
		if hex.EncodeToString(entry[16:]) != cp.Link {
			return broken(cp.Seq, entry[:16], "the chain up to place %d differs from its signed checkpoint: records were rewritten", cp.Seq)
		}
		v.Checkpoints++
	}
	v.OK = true
	return v, nil
}
