package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// Verify checks the hash chain of the open store: every record is where the chain
// says, unchanged, no record is outside the chain, every purged record was covered by
// a signed purge, and every checkpoint is signed and agrees with the chain.
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

// verification is one run of verify: the report, and how to end it at a broken link.
type verification struct {
	consent.Verification
	verifier consent.CheckpointVerifier
}

func (v *verification) broken(seq uint64, id []byte, format string, args ...any) *consent.Verification {
	v.BrokenAt, v.Problem = seq, fmt.Sprintf(format, args...)
	if id != nil {
		v.RecordID = uuid.UUID(id).String()
	}
	return &v.Verification
}

// signed decodes a signed statement of the store and checks its signature and kind.
func (v *verification) signed(value []byte, base bool) (*consent.Checkpoint, bool) {
	var cp consent.Checkpoint
	if err := json.Unmarshal(value, &cp); err != nil || cp.Base != base {
		return nil, false
	}
	return &cp, v.verifier != nil && v.verifier.VerifyCheckpoint(&cp)
}

func verify(ctx context.Context, tx *bolt.Tx, verifier consent.CheckpointVerifier) (*consent.Verification, error) {
	records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
	v := &verification{verifier: verifier}

	// Records before a signed base were purged and dropped: the chain starts there.
	var prev [32]byte
	var want uint64 = 1
	if b := tx.Bucket(bucketBase); b != nil {
		if value := b.Get(keyBase); value != nil {
			base, ok := v.signed(value, true)
			if !ok {
				return v.broken(0, nil, "the base of the chain is not signed by a known key"), nil
			}
			link, err := hex.DecodeString(base.Link)
			if err != nil || len(link) != len(prev) {
				return v.broken(base.Seq, nil, "the base of the chain has no valid link"), nil
			}
			copy(prev[:], link)
			want = base.Seq + 1
			v.From = want
		}
	}
	purgedBefore, broken := v.purges(tx)
	if broken != nil {
		return broken, nil
	}

	c := chain.Cursor()
	for k, entry := c.Seek(seqKey(want)); k != nil; k, entry = c.Next() {
		if (v.Records+v.Purged)%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		seq := binary.BigEndian.Uint64(k)
		if seq != want {
			return v.broken(want, nil, "the chain has no record at place %d: it was deleted", want), nil
		}
		if len(entry) < chainLinkEnd {
			return v.broken(seq, nil, "the chain entry at place %d is unreadable", seq), nil
		}
		id, stored := entry[:16], entry[16:chainLinkEnd]
		var d digests
		if len(entry) == chainLinkEnd {
			value := records.Get(id)
			if value == nil {
				return v.broken(seq, id, "record %s at place %d was deleted", uuid.UUID(id), seq), nil
			}
			sr, err := splitRecord(value)
			if err != nil {
				return v.broken(seq, id, "record %s at place %d is unreadable: %v", uuid.UUID(id), seq, err), nil
			}
			if sr.seq != seq {
				return v.broken(seq, id, "record %s claims place %d, the chain has it at %d", uuid.UUID(id), sr.seq, seq), nil
			}
			if sum := sha256.Sum256(sr.ident); len(sr.ident) > 0 && !bytes.Equal(sum[:], sr.identSum) {
				return v.broken(seq, id, "the identifying part of record %s at place %d was altered", uuid.UUID(id), seq), nil
			}
			d = sr.digests()
			v.Records++
		} else {
			var err error
			if d, err = splitTombstone(entry[chainLinkEnd:]); err != nil {
				return v.broken(seq, id, "the purged record %s at place %d has an unreadable tombstone", uuid.UUID(id), seq), nil
			}
			site, at := d.retention.site(), d.retention.recordedAt()
			if cutoff, ok := purgedBefore[site]; !ok || !at.Before(cutoff) {
				return v.broken(seq, id, "record %s at place %d (%s, %s) was deleted: no signed purge covers it",
					uuid.UUID(id), seq, site, at.Format(time.RFC3339)), nil
			}
			v.Purged++
		}
		prev = link(prev[:], seq, id, d)
		if !bytes.Equal(prev[:], stored) {
			return v.broken(seq, id, "record %s at place %d was altered", uuid.UUID(id), seq), nil
		}
		want++
	}
	if n := records.Stats().KeyN; n != v.Records {
		// Some record is outside the chain: find the first one.
		rc := records.Cursor()
		for k, value := rc.First(); k != nil; k, value = rc.Next() {
			sr, err := splitRecord(value)
			entry := chain.Get(seqKey(sr.seq))
			if err != nil || len(entry) != chainLinkEnd || !bytes.Equal(entry[:16], k) {
				return v.broken(sr.seq, k, "record %s is not in the chain: it was inserted", uuid.UUID(k)), nil
			}
		}
	}
	// A chain rewritten consistently, or cut off at its end, still disagrees with the
	// checkpoints signed before.
	cc := tx.Bucket(bucketCheckpoints).Cursor()
	for k, value := cc.First(); k != nil; k, value = cc.Next() {
		cp, ok := v.signed(value, false)
		if !ok {
			return v.broken(binary.BigEndian.Uint64(k), nil, "the checkpoint at place %d is not signed by a known key", binary.BigEndian.Uint64(k)), nil
		}
		if broken := v.agrees(chain, cp); broken != nil {
			return broken, nil
		}
		v.Checkpoints++
	}
	v.OK = true
	return &v.Verification, nil
}

// purges checks the signed purge statements and returns, per site, the latest time
// before which records were purged.
func (v *verification) purges(tx *bolt.Tx) (map[string]time.Time, *consent.Verification) {
	before := map[string]time.Time{}
	b := tx.Bucket(bucketPurges)
	if b == nil {
		return before, nil
	}
	chain := tx.Bucket(bucketChain)
	c := b.Cursor()
	for k, value := c.First(); k != nil; k, value = c.Next() {
		cp, ok := v.signed(value, false)
		if !ok {
			at := time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
			return nil, v.broken(0, nil, "the purge of %s is not signed by a known key", at.Format(time.RFC3339))
		}
		// A purge before the base vouched for places that are gone now.
		if cp.Seq >= v.From {
			if broken := v.agrees(chain, cp); broken != nil {
				return nil, broken
			}
		}
		for site, t := range cp.Purged {
			if t.After(before[site]) {
				before[site] = t
			}
		}
	}
	return before, nil
}

// agrees checks that the chain has cp's link at cp's place.
func (v *verification) agrees(chain *bolt.Bucket, cp *consent.Checkpoint) *consent.Verification {
	entry := chain.Get(seqKey(cp.Seq))
	if entry == nil {
		return v.broken(cp.Seq, nil, "the chain ends before place %d, but a signed checkpoint vouches for it: records were cut off", cp.Seq)
	}
	if len(entry) < chainLinkEnd || hex.EncodeToString(entry[16:chainLinkEnd]) != cp.Link {
		return v.broken(cp.Seq, entry[:16], "the chain up to place %d differs from its signed checkpoint: records were rewritten", cp.Seq)
	}
	return nil
}
