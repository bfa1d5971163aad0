package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/mixvoip/consentd/translog"
)

// bucketPurges maps the time of a purge (Unix nanoseconds, big-endian) and a site to
// the signed statement that the purge removed that site's records recorded before a
// time (translog.Purge).
var bucketPurges = []byte("purges")

func purgeKey(at time.Time, site string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), site...)
}

// purgeTime returns the time of the purge stored under key k.
func purgeTime(k []byte) time.Time {
	if len(k) < 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(k))).UTC()
}

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
// A purged record's leaf stays in the log as its tombstone, and a signed statement
// per site, stored in the transaction that removes the site's first record, says
// what was purged from which tree, so that verification tells a purge from a
// deletion.
func (s *Store) Purge(ctx context.Context, before map[string]time.Time) (int, error) {
	var latest time.Time
	for _, t := range before {
		if t.After(latest) {
			latest = t
		}
	}
	if latest.IsZero() {
		return 0, nil
	}
	p := &purge{before: before, at: time.Now().UTC(), signed: map[string]*translog.Purge{}}
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
			err = s.purgeRecords(p, doomed)
		}
		if err != nil {
			return purged, fmt.Errorf("bolt: purge: %w", err)
		}
		purged += len(doomed)
		if last == nil {
			return purged, nil
		}
		after = last
	}
}

// purge is one call of Purge: the sites' times, and the statements signed so far.
type purge struct {
	before map[string]time.Time
	at     time.Time
	signed map[string]*translog.Purge // by site
}

// findPurged returns, in one read transaction, the keys of up to purgeBatch records
// past their site's time among up to purgeScan after the key after and before end,
// and the last key it looked at (nil once it reached end).
func (s *Store) findPurged(before map[string]time.Time, after, end []byte) (doomed [][]byte, last []byte, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		c, log := tx.Bucket(bucketRecords).Cursor(), tx.Bucket(bucketLog)
		scanned := 0
		for k, v := seek(c, after, after != nil); k != nil && bytes.Compare(k, end) < 0; k, v = c.Next() {
			if scanned++; scanned > purgeScan || len(doomed) == purgeBatch {
				return nil
			}
			last = bytes.Clone(k)
			leaf, _, err := recordLeaf(log, k, v)
			if err != nil {
				return err
			}
			if cutoff, ok := before[leaf.Site]; ok && leaf.RecordedAt.Before(cutoff) {
				doomed = append(doomed, last)
			}
		}
		last = nil
		return nil
	})
	return doomed, last, err
}

// recordLeaf returns the leaf of the record stored as v under key k, and the record
// taken apart.
func recordLeaf(log *bolt.Bucket, k, v []byte) (*translog.Leaf, storedRecord, error) {
	sr, err := splitRecord(v)
	if err != nil {
		return nil, sr, fmt.Errorf("record %x: %w", k, err)
	}
	var leaf translog.Leaf
	if err := leaf.UnmarshalBinary(log.Get(leafKey(sr.index))); err != nil || !bytes.Equal(leaf.RecordID[:], k) {
		return nil, sr, fmt.Errorf("record %x is not at its leaf %d in the log", k, sr.index)
	}
	return &leaf, sr, nil
}

// purgeRecords removes the records with the keys doomed, and their keys in the
// consent index, in one transaction. The transaction that removes a site's first
// record signs and stores the site's statement: no record gone without it, no
// statement without a purge. A record the statement could not cover (logged after
// it, its clock stepped back) stays.
func (s *Store) purgeRecords(p *purge, doomed [][]byte) error {
	if len(doomed) == 0 {
		return nil
	}
	var signedNow []string
	var gone [][2]uuid.UUID // consent and record ids
	err := s.update(func(tx *bolt.Tx) error {
		gone = gone[:0]
		records, log, consents, recent := tx.Bucket(bucketRecords), tx.Bucket(bucketLog), tx.Bucket(bucketConsents), tx.Bucket(bucketRecent)
		for _, k := range doomed {
			v := records.Get(k)
			if v == nil {
				continue // purged meanwhile
			}
			leaf, sr, err := recordLeaf(log, k, v)
			if err != nil {
				return err
			}
			statement := p.signed[leaf.Site]
			if statement == nil {
				if statement, err = s.signPurge(tx, p, leaf.Site); err != nil {
					return err
				}
				signedNow = append(signedNow, leaf.Site)
			}
			if !statement.Covers(sr.index, leaf) {
				continue
			}
			if err := records.Delete(k); err != nil {
				return err
			}
			if err := consents.Delete(consentKey(sr.consentID, uuid.UUID(k))); err != nil {
				return err
			}
			if err := recent.Delete(k); err != nil {
				return err
			}
			gone = append(gone, [2]uuid.UUID{sr.consentID, uuid.UUID(k)})
		}
		return nil
	})
	if err != nil {
		for _, site := range signedNow {
			delete(p.signed, site) // rolled back: the next transaction stores it
		}
		return err
	}
	for _, g := range gone {
		s.recent.remove(g[0], g[1])
	}
	return nil
}

// signPurge signs the statement of p for site over the tree tx holds, and stores it.
func (s *Store) signPurge(tx *bolt.Tx, p *purge, site string) (*translog.Purge, error) {
	// The head may lag the tree tx holds by the writer's last commit: the statement
	// then names an older tree of the same log, and covers fewer records.
	head := s.log.Head()
	signer, err := s.keys.LogSigner(s.origin)
	if err != nil {
		return nil, err
	}
	statement, err := signer.SignPurge(head, site, p.before[site])
	if err != nil {
		return nil, err
	}
	if err := tx.Bucket(bucketPurges).Put(purgeKey(p.at, site), statement.Signed); err != nil {
		return nil, err
	}
	p.signed[site] = statement
	return statement, nil
}
