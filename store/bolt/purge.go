package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

var (
	// bucketPurges maps the time of a purge (Unix nanoseconds, big-endian) to its
	// signed statement: a checkpoint whose Purged says which records it removed.
	bucketPurges = []byte("purges")
	// bucketBase holds under keyBase the signed base of the chain, once a purge has
	// dropped the places before it.
	bucketBase = []byte("base")
	keyBase    = []byte("base")
)

// chainLinkEnd is where a chain entry's record id and link end, and a purged record's
// tombstone begins.
const chainLinkEnd = 16 + 32

// purgeBatch is how many records one purge transaction removes, and purgeScan how
// many a read transaction looks at to find them: appends wait for the write lock
// while a purge transaction runs, so a day's purge goes in many short steps, and the
// records that stay are looked at outside it.
const (
	purgeBatch = 5000
	purgeScan  = 50000
)

// Purge removes the records of each site in before that were recorded before the
// site's time, and returns how many it removed. Records of other sites stay.
//
// A purged record leaves its digests in its chain entry, so the records after it
// still verify, and a signed statement, stored with the first of them, says what was
// purged, so that verification tells a purge from a deletion. Once every place at
// the start of the chain is purged, those places are dropped too, and a signed base
// says where the chain now starts.
func (s *Store) Purge(ctx context.Context, before map[string]time.Time) (int, error) {
	if s.signer == nil {
		return 0, fmt.Errorf("bolt: purge: a purge must be signed, and the store has no signing key")
	}
	var latest time.Time
	for _, t := range before {
		if t.After(latest) {
			latest = t
		}
	}
	if latest.IsZero() {
		return 0, nil
	}
	statement := &consent.Checkpoint{At: time.Now().UTC(), Purged: before}
	// A record's id is made just before its time is taken, so no record recorded
	// before latest has an id after it; a second's margin covers clock steps.
	end := timeKey(latest.Add(time.Second))
	purged := 0
	for after := []byte(nil); ; {
		if err := ctx.Err(); err != nil {
			return purged, fmt.Errorf("bolt: purge: %w", err)
		}
		doomed, last, err := s.findPurged(before, after, end)
		if err == nil {
			err = s.purgeRecords(statement, doomed)
		}
		if err != nil {
			return purged, fmt.Errorf("bolt: purge: %w", err)
		}
		purged += len(doomed)
		if last == nil {
			break
		}
		after = last
	}
	for {
		if err := ctx.Err(); err != nil {
			return purged, fmt.Errorf("bolt: purge: %w", err)
		}
		dropped, err := s.dropPurgedPrefix()
		if err != nil {
			return purged, fmt.Errorf("bolt: purge: %w", err)
		}
		if dropped == 0 {
			return purged, nil
		}
	}
}

// findPurged returns, in one read transaction, the keys of up to purgeBatch records
// past their site's time among up to purgeScan after the key after and before end,
// and the last key it looked at (nil once it reached end).
func (s *Store) findPurged(before map[string]time.Time, after, end []byte) (doomed [][]byte, last []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		scanned := 0
		for k, v := seek(c, after, after != nil); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
			if scanned++; scanned > purgeScan || len(doomed) == purgeBatch {
				return nil
			}
			last = bytes.Clone(k)
			sr, err := splitRecord(v)
			if err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			if pastRetention(before, sr) {
				doomed = append(doomed, last)
			}
		}
		last = nil
		return nil
	})
	return doomed, last, err
}

func pastRetention(before map[string]time.Time, sr storedRecord) bool {
	cutoff, ok := before[sr.reference.site()]
	return ok && sr.reference.recordedAt().Before(cutoff)
}

// purgeRecords turns the records with the keys doomed into tombstones in one
// transaction, and forgets them in the consent index. The first call that purges
// anything signs and stores the statement in its transaction: no tombstone without
// it, no statement without a purge.
func (s *Store) purgeRecords(statement *consent.Checkpoint, doomed [][]byte) error {
	if len(doomed) == 0 {
		return nil
	}
	var gone []uuid.UUID // consent ids, pairwise with their record ids
	err := s.db.Update(func(tx *bolt.Tx) error {
		records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
		for _, k := range doomed {
			v := records.Get(k)
			if v == nil {
				continue // purged meanwhile
			}
			sr, err := splitRecord(v)
			if err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			entry := chain.Get(seqKey(sr.seq))
			if len(entry) != chainLinkEnd || !bytes.Equal(entry[:16], k) {
				return fmt.Errorf("record %x is not at its place %d in the chain", k, sr.seq)
			}
			if err := chain.Put(seqKey(sr.seq), append(bytes.Clone(entry), sr.digests().tombstone()...)); err != nil {
				return err
			}
			if err := records.Delete(k); err != nil {
				return err
			}
			gone = append(gone, sr.consentID, uuid.UUID(k))
		}
		if len(gone) == 0 || statement.Signature != "" {
			return nil
		}
		k, v := chain.Cursor().Last()
		seq, ok := uint64Key(k)
		if !ok || len(v) < chainLinkEnd {
			return fmt.Errorf("the chain's last entry is malformed")
		}
		statement.Seq, statement.Link = seq, hex.EncodeToString(v[16:chainLinkEnd])
		return s.putSigned(tx.Bucket(bucketPurges), timeNanoKey(statement.At), statement)
	})
	if err != nil {
		statement.Signature = "" // rolled back: the next transaction stores it
		return err
	}
	s.index.mu.Lock()
	for i := 0; i < len(gone); i += 2 {
		s.index.remove(gone[i], gone[i+1])
	}
	s.index.mu.Unlock()
	return nil
}

// dropPurgedPrefix drops up to purgeBatch purged places from the start of the chain,
// never its last place (where the next record links on), and signs the new base.
// It walks those places as verification does first: a base vouches for what it
// drops, so it must not be signed over a chain that does not verify.
func (s *Store) dropPurgedPrefix() (int, error) {
	dropped := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		v, broken := begin(tx, s.signer)
		if broken != nil {
			return fmt.Errorf("the chain does not verify, nothing dropped: %s", broken.Problem)
		}
		chain := tx.Bucket(bucketChain)
		c := chain.Cursor()
		lastKey, _ := c.Last()
		var doomed [][]byte
		for k, entry := c.First(); k != nil && len(entry) > chainLinkEnd && !bytes.Equal(k, lastKey) && len(doomed) < purgeBatch; k, entry = c.Next() {
			if broken := v.step(k, entry); broken != nil {
				return fmt.Errorf("the chain does not verify, nothing dropped: %s", broken.Problem)
			}
			doomed = append(doomed, bytes.Clone(k))
		}
		// A statement of a key the signer lacks may be forged: a base signed over it
		// would vouch for a deletion.
		if v.missingKey != "" {
			return fmt.Errorf("the chain cannot be verified, nothing dropped: %s", v.unverified)
		}
		if len(doomed) == 0 {
			return nil
		}
		for _, k := range doomed {
			if err := chain.Delete(k); err != nil {
				return err
			}
		}
		base := &consent.Checkpoint{Seq: v.want - 1, Link: hex.EncodeToString(v.prev[:]), At: time.Now().UTC(), Base: true}
		// Checkpoints before the base vouch for places that are gone.
		checkpoints := tx.Bucket(bucketCheckpoints)
		var stale [][]byte
		cc := checkpoints.Cursor()
		for k, _ := cc.First(); k != nil; k, _ = cc.Next() {
			seq, ok := uint64Key(k)
			if !ok {
				continue // not a checkpoint: left for verification to report
			}
			if seq > base.Seq {
				break
			}
			stale = append(stale, bytes.Clone(k))
		}
		for _, k := range stale {
			if err := checkpoints.Delete(k); err != nil {
				return err
			}
		}
		dropped = len(doomed)
		return s.putSigned(tx.Bucket(bucketBase), keyBase, base)
	})
	return dropped, err
}

// putSigned signs cp for the store's chain and stores it under key in b, and the
// id of the key that signed it with the others.
func (s *Store) putSigned(b *bolt.Bucket, key []byte, cp *consent.Checkpoint) error {
	cp.Chain = s.chain
	s.signer.SignCheckpoint(cp)
	value, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if err := b.Put(key, value); err != nil {
		return err
	}
	return b.Tx().Bucket(bucketKeys).Put([]byte(cp.KeyID), nil)
}

func timeNanoKey(t time.Time) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(t.UnixNano()))
	return k[:]
}
