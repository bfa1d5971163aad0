package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
)

// Verify checks the hash chain of the open store: every record is where the chain
// says, unchanged, and so is the snapshot of what its visitor was shown; no record is
// outside the chain, every purged record was covered by a signed purge, and every
// checkpoint is signed and agrees with the chain.
func (s *Store) Verify(ctx context.Context) (*consent.Verification, error) {
	var v *consent.Verification
	err := guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			v, err = verify(ctx, tx, s.signer, nil)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: verify: %w", err)
	}
	return v, nil
}

// VerifyFile checks the hash chain of a store file that no process has open, such as
// a backup copy; verifier checks the checkpoints' signatures. The chain must also
// agree with the archived checkpoints, kept apart from the store (GET
// /v1/dpo/checkpoint): whoever rewrites the chain and deletes the checkpoints in the
// file cannot delete those.
//
// A file that bbolt cannot make sense of, or whose pages do not hold together, gives
// an error wrapping ErrDamaged; a missing or empty file is not a store.
func VerifyFile(ctx context.Context, path string, verifier consent.CheckpointVerifier, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	if slices.Contains(archived, nil) {
		return nil, fmt.Errorf("bolt: verify %s: an archived checkpoint is missing", path)
	}
	v, err := verifyFile(ctx, path, verifier, archived)
	if err != nil {
		return nil, fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	return v, nil
}

func verifyFile(ctx context.Context, path string, verifier consent.CheckpointVerifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	switch fi, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		return nil, errors.New("not a consentd store: there is no such file")
	case err != nil:
		return nil, err
	case fi.Size() == 0:
		return nil, errors.New("not a consentd store: the file is empty")
	}
	// The free list read as it opens, under guard: Check would read it in a
	// goroutine of its own.
	db, err := openDB(path, bolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout, PreLoadFreelist: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var v *consent.Verification
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if err := readPages(tx, nil); err != nil {
				return err
			}
			if err := checkPages(tx); err != nil {
				return err
			}
			if tx.Bucket(bucketRecords) == nil || tx.Bucket(bucketChain) == nil || tx.Bucket(bucketCheckpoints) == nil {
				return fmt.Errorf("not a consentd store")
			}
			var err error
			v, err = verify(ctx, tx, verifier, archived)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// verification is one walk along the chain: the report so far, and what checking
// the next place needs. verify walks the whole chain; a purge walks the purged start
// of it before dropping it.
type verification struct {
	consent.Verification
	verifier     consent.CheckpointVerifier
	chain        string // the id every signed statement must name
	baseLink     string // the link at place From-1, hex, when a base starts the chain
	records      *bolt.Bucket
	purgedBefore map[string]time.Time // per site, from the signed purges
	snapshots    map[[32]byte]bool    // the digests of the stored snapshots
	prev         [32]byte             // the link of the place before want
	want         uint64               // the next place

	// The first statement signed by a key the verifier lacks: missingKey, and what
	// to report if nothing is broken.
	missingKey, unverified string
}

func (v *verification) broken(seq uint64, id []byte, format string, args ...any) *consent.Verification {
	v.BrokenAt, v.Problem = seq, fmt.Sprintf(format, args...)
	if len(id) == 16 {
		v.RecordID = uuid.UUID(id).String()
	}
	return &v.Verification
}

// signed decodes a signed statement of the store, which what describes, and checks
// it. It returns what is wrong with it, "" if nothing (see check).
func (v *verification) signed(value []byte, base bool, what string) (*consent.Checkpoint, string) {
	var cp consent.Checkpoint
	if err := json.Unmarshal(value, &cp); err != nil {
		return nil, what + " is not signed by a known key"
	}
	return &cp, v.check(&cp, base, what)
}

// check tells what is wrong with the signed statement cp, which what describes, ""
// if nothing. A statement signed by a key the verifier lacks cannot be told from a
// forged one here, nor is it one: it is taken at its word, so that the walk goes on
// to find what is broken, if anything, and the first such statement is noted.
func (v *verification) check(cp *consent.Checkpoint, base bool, what string) string {
	switch {
	case cp.Base != base || cp.Signature == "" || !plausibleKeyID(cp.KeyID):
		return what + " is not signed by a known key"
	case v.verifier == nil || !v.verifier.HasKey(cp.KeyID):
		if v.missingKey == "" {
			v.missingKey = cp.KeyID
			v.unverified = fmt.Sprintf("%s is signed by key %s, which is not among the keys given", what, cp.KeyID)
		}
	case !v.verifier.VerifyCheckpoint(cp):
		return what + " is not signed by a known key" // but claims to be
	}
	if cp.Chain != v.chain {
		return fmt.Sprintf("%s was signed for another chain (%q, this one is %q)", what, cp.Chain, v.chain)
	}
	return ""
}

// plausibleKeyID reports whether kid could name a key: the report repeats it, and
// it comes from the file.
func plausibleKeyID(kid string) bool {
	if kid == "" || len(kid) > 64 {
		return false
	}
	for _, c := range kid {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// begin prepares a walk along the chain of tx from its start: the place after the
// signed base, if records before it were dropped, else the first; and the signed
// purges that cover purged records. It returns the report if either is broken.
func begin(tx *bolt.Tx, verifier consent.CheckpointVerifier) (*verification, *consent.Verification) {
	v := &verification{verifier: verifier, chain: chainID(tx), records: tx.Bucket(bucketRecords), want: 1}
	if b := tx.Bucket(bucketBase); b != nil {
		if value := b.Get(keyBase); value != nil {
			base, problem := v.signed(value, true, "the base of the chain")
			if problem != "" {
				return nil, v.broken(0, nil, "%s", problem)
			}
			link, err := hex.DecodeString(base.Link)
			if err != nil || len(link) != len(v.prev) {
				return nil, v.broken(base.Seq, nil, "the base of the chain has no valid link")
			}
			copy(v.prev[:], link)
			v.want = base.Seq + 1
			v.From, v.baseLink = v.want, base.Link
		}
	}
	if broken := v.purges(tx); broken != nil {
		return nil, broken
	}
	v.snapshots = map[[32]byte]bool{{}: true} // zeros: the record named no stored snapshot
	if b := tx.Bucket(bucketSnapshots); b != nil {
		c := b.Cursor()
		for k, value := c.First(); k != nil; k, value = c.Next() {
			// A record names its snapshot by digest: the snapshot must also be
			// where the record's site and fingerprint find it, or a forged one could
			// take its key while the original hides under another.
			var snap struct {
				Site        string `json:"site"`
				Fingerprint string `json:"fingerprint"`
			}
			if err := json.Unmarshal(value, &snap); err != nil || !bytes.Equal(k, snapshotKey(snap.Site, snap.Fingerprint)) {
				return nil, v.broken(0, nil, "the snapshot stored under %q was altered or moved", k)
			}
			v.snapshots[sha256.Sum256(value)] = true
		}
	}
	return v, nil
}

// step checks the chain entry at key k, the next place: the record there or its
// tombstone, and the link. It returns the report if the place is broken.
func (v *verification) step(k, entry []byte) *consent.Verification {
	seq, ok := uint64Key(k)
	switch {
	case !ok:
		return v.broken(v.want, nil, "the chain has a malformed place %x", k)
	case seq < v.want:
		return v.broken(seq, nil, "the chain has an entry at place %d, before its start at %d: it was inserted", seq, v.want)
	case seq > v.want:
		return v.broken(v.want, nil, "the chain has no record at place %d: it was deleted", v.want)
	case len(entry) < chainLinkEnd:
		return v.broken(seq, nil, "the chain entry at place %d is unreadable", seq)
	}
	id, stored := entry[:16], entry[16:chainLinkEnd]
	var d digests
	if len(entry) == chainLinkEnd {
		value := v.records.Get(id)
		if value == nil {
			return v.broken(seq, id, "record %s at place %d was deleted", uuid.UUID(id), seq)
		}
		sr, err := splitRecord(value)
		if err != nil {
			return v.broken(seq, id, "record %s at place %d is unreadable: %v", uuid.UUID(id), seq, err)
		}
		if sr.seq != seq {
			return v.broken(seq, id, "record %s claims place %d, the chain has it at %d", uuid.UUID(id), sr.seq, seq)
		}
		if sum := sha256.Sum256(sr.ident); len(sr.ident) > 0 && !bytes.Equal(sum[:], sr.identSum) {
			return v.broken(seq, id, "the identifying part of record %s at place %d was altered", uuid.UUID(id), seq)
		}
		if !v.snapshots[[32]byte(sr.reference.snapshot())] {
			return v.broken(seq, id, "the snapshot of what record %s at place %d was shown was altered or removed", uuid.UUID(id), seq)
		}
		d = sr.digests()
		v.Records++
	} else {
		var err error
		if d, err = splitTombstone(entry[chainLinkEnd:]); err != nil {
			return v.broken(seq, id, "the purged record %s at place %d has an unreadable tombstone", uuid.UUID(id), seq)
		}
		site, at := d.reference.site(), d.reference.recordedAt()
		if cutoff, ok := v.purgedBefore[site]; !ok || !at.Before(cutoff) {
			return v.broken(seq, id, "record %s at place %d (%s, %s) was deleted: no signed purge covers it",
				uuid.UUID(id), seq, site, at.Format(time.RFC3339))
		}
		v.Purged++
	}
	v.prev = link(v.prev[:], seq, id, d)
	if !bytes.Equal(v.prev[:], stored) {
		return v.broken(seq, id, "record %s at place %d was altered", uuid.UUID(id), seq)
	}
	v.want++
	return nil
}

func verify(ctx context.Context, tx *bolt.Tx, verifier consent.CheckpointVerifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	v, broken := begin(tx, verifier)
	if broken != nil {
		return broken, nil
	}
	chain := tx.Bucket(bucketChain)
	c := chain.Cursor()
	for k, entry := c.First(); k != nil; k, entry = c.Next() {
		if (v.Records+v.Purged)%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if broken := v.step(k, entry); broken != nil {
			return broken, nil
		}
	}
	if n := v.records.Stats().KeyN; n != v.Records {
		// Some record is outside the chain: name the first one found.
		rc := v.records.Cursor()
		for k, value := rc.First(); k != nil; k, value = rc.Next() {
			sr, err := splitRecord(value)
			if err != nil {
				return v.broken(0, k, "record %x is unreadable and not in the chain: it was inserted", k), nil
			}
			entry := chain.Get(seqKey(sr.seq))
			if len(entry) != chainLinkEnd || !bytes.Equal(entry[:16], k) {
				return v.broken(sr.seq, k, "record %x is not in the chain: it was inserted", k), nil
			}
		}
		return v.broken(0, nil, "%d records are stored, %d are in the chain", n, v.Records), nil
	}
	// A chain rewritten consistently, or cut off at its end, still disagrees with the
	// checkpoints signed before.
	cc := tx.Bucket(bucketCheckpoints).Cursor()
	for k, value := cc.First(); k != nil; k, value = cc.Next() {
		seq, _ := uint64Key(k)
		cp, problem := v.signed(value, false, fmt.Sprintf("the checkpoint at place %d", seq))
		if problem != "" {
			return v.broken(seq, nil, "%s", problem), nil
		}
		if broken := v.agrees(chain, cp); broken != nil {
			return broken, nil
		}
		v.Checkpoints++
	}
	for _, cp := range archived {
		if problem := v.check(cp, false, fmt.Sprintf("the archived checkpoint at place %d", cp.Seq)); problem != "" {
			return v.broken(cp.Seq, nil, "%s", problem), nil
		}
		switch {
		case cp.Seq+1 == v.From && cp.Link != v.baseLink:
			return v.broken(cp.Seq, nil, "the chain's base at place %d differs from an archived checkpoint: records were rewritten", cp.Seq), nil
		case cp.Seq+1 < v.From:
			continue // its place was purged and dropped since
		case cp.Seq+1 > v.From:
			if broken := v.agrees(chain, cp); broken != nil {
				return broken, nil
			}
		}
		v.Archived++
	}
	if v.missingKey != "" {
		v.MissingKey, v.Problem = v.missingKey, v.unverified
		return &v.Verification, nil
	}
	v.OK = true
	return &v.Verification, nil
}

// purges checks the signed purge statements and keeps, per site, the latest time
// before which records were purged.
func (v *verification) purges(tx *bolt.Tx) *consent.Verification {
	v.purgedBefore = map[string]time.Time{}
	b := tx.Bucket(bucketPurges)
	if b == nil {
		return nil
	}
	chain := tx.Bucket(bucketChain)
	c := b.Cursor()
	for k, value := c.First(); k != nil; k, value = c.Next() {
		what := fmt.Sprintf("the purge stored under %x", k)
		if nanos, ok := uint64Key(k); ok {
			what = "the purge of " + time.Unix(0, int64(nanos)).UTC().Format(time.RFC3339)
		}
		cp, problem := v.signed(value, false, what)
		if problem != "" {
			return v.broken(0, nil, "%s", problem)
		}
		// A purge before the base vouched for places that are gone now.
		if cp.Seq >= v.From {
			if broken := v.agrees(chain, cp); broken != nil {
				return broken
			}
		}
		for site, t := range cp.Purged {
			if t.After(v.purgedBefore[site]) {
				v.purgedBefore[site] = t
			}
		}
	}
	return nil
}

// agrees checks that the chain has cp's link at cp's place.
func (v *verification) agrees(chain *bolt.Bucket, cp *consent.Checkpoint) *consent.Verification {
	entry := chain.Get(seqKey(cp.Seq))
	if entry == nil {
		return v.broken(cp.Seq, nil, "the chain ends before place %d, but a signed checkpoint vouches for it: records were cut off", cp.Seq)
	}
	if len(entry) < chainLinkEnd || hex.EncodeToString(entry[16:chainLinkEnd]) != cp.Link {
		return v.broken(cp.Seq, entry[:min(len(entry), 16)], "the chain up to place %d differs from its signed checkpoint: records were rewritten", cp.Seq)
	}
	return nil
}

// LastCheckpoint returns the newest signed checkpoint of the chain's head.
func (s *Store) LastCheckpoint(ctx context.Context) (*consent.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt: last checkpoint: %w", err)
	}
	cp := new(consent.Checkpoint)
	err := s.db.View(func(tx *bolt.Tx) error {
		k, value := tx.Bucket(bucketCheckpoints).Cursor().Last()
		if k == nil {
			return consent.Errorf(consent.ENotFound, "no checkpoint was signed yet")
		}
		return json.Unmarshal(value, cp)
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: last checkpoint: %w", err)
	}
	return cp, nil
}
