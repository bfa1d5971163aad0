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

// purgeBatch is how many records one purge transaction removes: appends wait for the
// write lock while it runs, so a day's purge goes in many short steps.
const purgeBatch = 5000

// Purge removes the records of each site in before that were recorded before the
// site's time, and returns how many it removed. Records of other sites stay.
//
// A purged record leaves its digests in its chain entry, so the records after it
// still verify, and a signed statement, stored with the first of them, says what was
// purged, so that verification tells a purge from a deletion. Once every place at the start of the
// chain is purged, those places are dropped too, and a signed base says where the
// chain now starts.
func (s *Store) Purge(ctx context.Context, before map[string]time.Time) (int, error) {
	if s.signer == nil {
		return 0, fmt.Errorf("bolt: purge: %w", consent.Errorf(consent.EUnsupported, "a purge must be signed, and the store has no signing key"))
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
		n, last, err := s.purgeBatch(statement, after, end)
		purged += n
		if err != nil {
			return purged, fmt.Errorf("bolt: purge: %w", err)
		}
		if last == nil {
			break
		}
		after = last
	}
	for {
		dropped, err := s.dropPurgedPrefix()
		if err != nil {
			return purged, fmt.Errorf("bolt: purge: %w", err)
		}
		if dropped == 0 {
			return purged, nil
		}
	}
}

// purgeBatch purges up to purgeBatch records that statement covers among those after
// the key after and before end. It returns the last key it looked at, nil when it
// reached end. The first batch that purges anything signs and stores the statement
// in its transaction: no tombstone without it, no statement without a purge.
func (s *Store) purgeBatch(statement *consent.Checkpoint, after, end []byte) (int, []byte, error) {
	before := statement.Purged
	var last []byte
	var gone []uuid.UUID // consent ids, pairwise with their record ids
	err := s.db.Update(func(tx *bolt.Tx) error {
		records, chain := tx.Bucket(bucketRecords), tx.Bucket(bucketChain)
		var doomed [][]byte
		c := records.Cursor()
		k, v := seek(c, after, after != nil)
		for ; k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
			sr, err := splitRecord(v)
			if err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			cutoff, ok := before[sr.retention.site()]
			if !ok || !sr.retention.recordedAt().Before(cutoff) {
				continue
			}
			entry := chain.Get(seqKey(sr.seq))
			if len(entry) != chainLinkEnd || !bytes.Equal(entry[:16], k) {
				return fmt.Errorf("record %s is not at its place %d in the chain", uuid.UUID(k), sr.seq)
			}
			tomb := append(bytes.Clone(entry), sr.digests().tombstone()...)
			if err := chain.Put(seqKey(sr.seq), tomb); err != nil {
				return err
			}
			doomed = append(doomed, bytes.Clone(k))
			gone = append(gone, sr.consentID, uuid.UUID(k))
			if len(doomed) == purgeBatch {
				last = doomed[len(doomed)-1]
				break
			}
		}
		if len(doomed) == 0 {
			return nil
		}
		if statement.Signature == "" {
			k, v := chain.Cursor().Last()
			statement.Seq, statement.Link = binary.BigEndian.Uint64(k), hex.EncodeToString(v[16:chainLinkEnd])
			if err := s.putSigned(tx.Bucket(bucketPurges), timeNanoKey(statement.At), statement); err != nil {
				return err
			}
		}
		// Deleted after the scan: deleting under a moving bbolt cursor skips keys.
		for _, k := range doomed {
			if err := records.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	s.index.mu.Lock()
	for i := 0; i < len(gone); i += 2 {
		s.index.remove(gone[i], gone[i+1])
	}
	s.index.mu.Unlock()
	return len(gone) / 2, last, nil
}

// dropPurgedPrefix drops up to purgeBatch purged places from the start of the chain,
// never its last place (where the next record links on), and signs the new base.
func (s *Store) dropPurgedPrefix() (int, error) {
	dropped := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		chain := tx.Bucket(bucketChain)
		c := chain.Cursor()
		lastKey, _ := c.Last()
		var base *consent.Checkpoint
		var doomed [][]byte
		for k, v := c.First(); k != nil && len(v) > chainLinkEnd && !bytes.Equal(k, lastKey) && len(doomed) < purgeBatch; k, v = c.Next() {
			doomed = append(doomed, k)
			base = &consent.Checkpoint{Seq: binary.BigEndian.Uint64(k), Link: hex.EncodeToString(v[16:chainLinkEnd]), Base: true}
		}
		if base == nil {
			return nil
		}
		for _, k := range doomed {
			if err := chain.Delete(k); err != nil {
				return err
			}
		}
		// Checkpoints before the base vouch for places that are gone.
		checkpoints := tx.Bucket(bucketCheckpoints)
		var stale [][]byte
		cc := checkpoints.Cursor()
		for k, _ := cc.First(); k != nil && binary.BigEndian.Uint64(k) <= base.Seq; k, _ = cc.Next() {
			stale = append(stale, k)
		}
		for _, k := range stale {
			if err := checkpoints.Delete(k); err != nil {
				return err
			}
		}
		base.At = time.Now().UTC()
		dropped = len(doomed)
		return s.putSigned(tx.Bucket(bucketBase), keyBase, base)
	})
	return dropped, err
}

// putSigned signs cp and stores it under key in b.
func (s *Store) putSigned(b *bolt.Bucket, key []byte, cp *consent.Checkpoint) error {
	s.signer.SignCheckpoint(cp)
	value, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

func timeNanoKey(t time.Time) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(t.UnixNano()))
	return k[:]
}
