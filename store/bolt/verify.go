package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// Verify checks the open store's log against its keys, and against the archived
// checkpoints (see VerifyFile).
func (s *Store) Verify(ctx context.Context, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	verifier, err := s.keys.LogVerifier(s.origin)
	if err != nil {
		return nil, fmt.Errorf("bolt: verify: %w", err)
	}
	var v *consent.Verification
	err = guard(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			var err error
			v, err = verify(ctx, tx, verifier, archived)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bolt: verify: %w", err)
	}
	return v, nil
}

// VerifyFile checks the log of a store file that no process has open, such as a
// backup copy, with verifier, which needs only the published keys. It rebuilds the
// tree from the stored leaves, and compares every stored hash, the checkpoint and
// the purge statements with it; it checks every record's parts against its leaf, and
// that the tree extends each archived checkpoint, kept apart from the store: whoever
// rewrites the log and re-signs it cannot rewrite those.
//
// A file that bbolt cannot make sense of, or whose pages do not hold together, gives
// an error wrapping ErrDamaged; a missing or empty file is not a store.
func VerifyFile(ctx context.Context, path string, verifier *translog.Verifier, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	if slices.Contains(archived, nil) {
		return nil, fmt.Errorf("bolt: verify %s: an archived checkpoint is missing", path)
	}
	v, err := verifyFile(ctx, path, verifier, archived)
	if err != nil {
		return nil, fmt.Errorf("bolt: verify %s: %w", path, err)
	}
	return v, nil
}

// FileOrigin returns the name of the log of the store file at path, which no process
// has open: what verifying it with a keyring takes.
func FileOrigin(path string) (string, error) {
	var origin string
	err := readFile(path, func(tx *bolt.Tx) error {
		origin = string(tx.Bucket(bucketMeta).Get(keyOrigin))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("bolt: the log's name in %s: %w", path, err)
	}
	return origin, nil
}

// readFile calls fn in a read transaction of the store file at path, which no process
// has open, once bbolt could make sense of it and it proved a consentd store.
func readFile(path string, fn func(tx *bolt.Tx) error) error {
	switch fi, err := os.Stat(path); {
	case errors.Is(err, fs.ErrNotExist):
		return errors.New("not a consentd store: there is no such file")
	case err != nil:
		return err
	case fi.Size() == 0:
		return errors.New("not a consentd store: the file is empty")
	}
	// The free list read as it opens, under guard: Check would read it in a
	// goroutine of its own.
	db, err := openDB(path, bolt.Options{ReadOnly: true, Timeout: DefaultLockTimeout, PreLoadFreelist: true})
	if err != nil {
		return err
	}
	defer db.Close()
	return guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if _, err := isNew(tx); err != nil {
				return err
			}
			return fn(tx)
		})
	})
}

func verifyFile(ctx context.Context, path string, verifier *translog.Verifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	var v *consent.Verification
	err := readFile(path, func(tx *bolt.Tx) error {
		if err := readPages(tx, nil); err != nil {
			return err
		}
		if err := checkPages(tx); err != nil {
			return err
		}
		var err error
		v, err = verify(ctx, tx, verifier, archived)
		return err
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

// verification is one walk along the log: the report so far, and what checking the
// next leaf needs.
type verification struct {
	consent.Verification
	verifier *translog.Verifier
	tree     *translog.Checker
	records  *bolt.Bucket
	purges   []*translog.Purge
	// unverifiedPurges are statements signed by a key the verifier lacks, and
	// purgedUnverified counts the missing records only they cover.
	unverifiedPurges []*translog.Purge
	purgedUnverified int
	links            []*translog.Link
	snapshots        map[[32]byte]bool // the digests of the stored snapshots
}

func (v *verification) broken(index int64, id *uuid.UUID, format string, args ...any) *consent.Verification {
	// What is broken is the finding; a key missing for a statement is beside it.
	v.Problem, v.MissingKey = fmt.Sprintf(format, args...), ""
	if index >= 0 {
		v.BrokenAt = &index
	}
	if id != nil {
		v.RecordID = id.String()
	}
	return &v.Verification
}

// unverified notes a statement signed by a key the verifier lacks (err, an
// *UnknownKeyError): it cannot be told from a forged one here, nor is it one. The
// walk goes on to find what is broken, if anything; the first such statement is
// reported if nothing is.
func (v *verification) unverified(what string, err error) {
	var unknown *translog.UnknownKeyError
	if v.MissingKey == "" && errors.As(err, &unknown) {
		v.MissingKey = unknown.Key
		v.Problem = what + " is signed by key " + unknown.Key + ", which is not among the keys given"
	}
}

func verify(ctx context.Context, tx *bolt.Tx, verifier *translog.Verifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	v := &verification{
		verifier: verifier,
		tree:     translog.NewChecker(tlog.HashReaderFunc(logTx{tx}.ReadHashes)),
		records:  tx.Bucket(bucketRecords),
	}
	v.Origin = string(tx.Bucket(bucketMeta).Get(keyOrigin))
	if v.Origin != verifier.Origin() {
		return v.broken(-1, nil, "the store's log is %q, the keys given are of %q", v.Origin, verifier.Origin()), nil
	}
	// What was signed under the names the log had before a restore verifies too.
	lineageVerifier, links, err := lineage(tx, verifier)
	if err != nil {
		return v.broken(-1, nil, "%v", err), nil
	}
	v.verifier, v.links = lineageVerifier, links
	if broken := v.readPurges(tx); broken != nil {
		return broken, nil
	}
	if broken := v.readSnapshots(tx); broken != nil {
		return broken, nil
	}
	c := tx.Bucket(bucketLog).Cursor()
	for k, value := c.First(); k != nil; k, value = c.Next() {
		if len(k) == 8 {
			continue // a hash, checked as its leaves are, or the checkpoint
		}
		if v.Leaves%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if broken := v.step(k, value); broken != nil {
			return broken, nil
		}
	}
	// Before the records are counted: a tail cut off with its records kept is a
	// cut, which the checkpoint tells, before it is stray records.
	if broken := v.checkpoints(tx, archived); broken != nil {
		return broken, nil
	}
	if n := v.records.Stats().KeyN; n != v.Records {
		return v.inserted(tx), nil
	}
	if v.purgedUnverified > 0 {
		v.Problem = fmt.Sprintf("%d records are missing that only a purge statement signed by key %s, which is not among the keys given, covers: a purge signed by a key since removed, or a deletion passed off as one", v.purgedUnverified, v.MissingKey)
	}
	v.OK = v.MissingKey == ""
	return &v.Verification, nil
}

// readPurges reads the signed purge statements, which say which missing records
// were purged; checkpoints checks them against the tree. A statement signed by a key
// the verifier lacks is taken at its word, and reported.
func (v *verification) readPurges(tx *bolt.Tx) *consent.Verification {
	c := tx.Bucket(bucketPurges).Cursor()
	for k, value := c.First(); k != nil; k, value = c.Next() {
		p, err := v.verifier.OpenPurge(value)
		if errors.Is(err, translog.ErrUnknownKey) {
			v.unverified(fmt.Sprintf("the purge statement stored under %x", k), err)
			v.unverifiedPurges = append(v.unverifiedPurges, p)
			continue
		}
		if err != nil {
			return v.broken(-1, nil, "the purge statement stored under %x is not signed by a key of the log: %v", k, err)
		}
		v.purges = append(v.purges, p)
	}
	return nil
}

func (v *verification) readSnapshots(tx *bolt.Tx) *consent.Verification {
	v.snapshots = map[[32]byte]bool{{}: true} // zeros: the record named no stored snapshot
	c := tx.Bucket(bucketSnapshots).Cursor()
	for k, value := c.First(); k != nil; k, value = c.Next() {
		// A record names its snapshot by digest: the snapshot must also be where
		// the record's site and fingerprint find it, or a forged one could take its
		// key while the original hides under another.
		var snap struct {
			Site        string `json:"site"`
			Fingerprint string `json:"fingerprint"`
		}
		if err := json.Unmarshal(value, &snap); err != nil || !bytes.Equal(k, snapshotKey(snap.Site, snap.Fingerprint)) {
			return v.broken(-1, nil, "the snapshot stored under %q was altered or moved", k)
		}
		v.snapshots[sha256.Sum256(value)] = true
	}
	return nil
}

// step checks the leaf stored under key k, the next in the log, and the record it
// names.
func (v *verification) step(k, leafBytes []byte) *consent.Verification {
	index := v.Leaves
	if got, ok := leafIndex(k); !ok || got != index {
		return v.broken(index, nil, "the log has no leaf %d: a leaf was deleted or inserted", index)
	}
	if err := v.tree.Add(translog.LeafHash(leafBytes)); err != nil {
		return v.broken(index, nil, "%v: the leaf, or the tree's hashes, were altered", err)
	}
	var leaf translog.Leaf
	if err := leaf.UnmarshalBinary(leafBytes); err != nil {
		return v.broken(index, nil, "leaf %d is unreadable: %v", index, err)
	}
	id := &leaf.RecordID
	if !v.snapshots[leaf.Snapshot] {
		return v.broken(index, id, "the snapshot of what record %s (leaf %d) was shown was altered or removed", leaf.RecordID, index)
	}
	value := v.records.Get(leaf.RecordID[:])
	switch {
	case value != nil:
		sr, err := splitRecord(value)
		switch {
		case err != nil:
			return v.broken(index, id, "record %s (leaf %d) is unreadable: %v", leaf.RecordID, index, err)
		case sr.index != index:
			return v.broken(index, id, "record %s claims leaf %d, the log has it at %d", leaf.RecordID, sr.index, index)
		case sha256.Sum256(sr.decision) != leaf.Decision:
			return v.broken(index, id, "the decision of record %s (leaf %d) was altered", leaf.RecordID, index)
		case !sameConsent(sr):
			return v.broken(index, id, "record %s (leaf %d) is filed under another consent id than its decision's: it would be shown to another visitor", leaf.RecordID, index)
		case len(sr.identifying) == 0:
			v.Erased++
		case sha256.Sum256(sr.identifying) != leaf.Identifying:
			return v.broken(index, id, "the identifying part of record %s (leaf %d) was altered", leaf.RecordID, index)
		}
		v.Records++
	case slices.ContainsFunc(v.purges, func(p *translog.Purge) bool { return p.Covers(index, &leaf) }):
		v.Purged++
	case slices.ContainsFunc(v.unverifiedPurges, func(p *translog.Purge) bool { return p.Covers(index, &leaf) }):
		v.Purged++
		v.purgedUnverified++
	default:
		return v.broken(index, id, "record %s (leaf %d, %s, %s) was deleted: no signed purge covers it",
			leaf.RecordID, index, leaf.Site, leaf.RecordedAt.Format(time.RFC3339))
	}
	v.Leaves++
	return nil
}

// inserted names a record that is stored but whose leaf does not name it.
func (v *verification) inserted(tx *bolt.Tx) *consent.Verification {
	log := tx.Bucket(bucketLog)
	c := v.records.Cursor()
	for k, value := c.First(); k != nil; k, value = c.Next() {
		sr, err := splitRecord(value)
		if err != nil || len(k) != 16 {
			return v.broken(-1, nil, "record %x is unreadable and not in the log: it was inserted", k)
		}
		id := uuid.UUID(k)
		var leaf translog.Leaf
		if leaf.UnmarshalBinary(log.Get(leafKey(sr.index))) != nil || leaf.RecordID != id {
			return v.broken(-1, &id, "record %s is not in the log: it was inserted", id)
		}
	}
	return v.broken(-1, nil, "%d records are stored, %d are in the log", v.records.Stats().KeyN, v.Records)
}

// checkpoints checks the store's checkpoint, the purge statements and the archived
// checkpoints against the rebuilt tree: a log rewritten consistently and re-signed,
// or cut off at its end, no longer extends those signed before.
func (v *verification) checkpoints(tx *bolt.Tx, archived []*consent.Checkpoint) *consent.Verification {
	signed := tx.Bucket(bucketLog).Get(keyCheckpoint)
	if signed == nil {
		if v.Leaves > 0 {
			return v.broken(-1, nil, "the log has %d leaves and no checkpoint", v.Leaves)
		}
	} else {
		cp, err := v.verifier.Open(signed)
		switch {
		case errors.Is(err, translog.ErrUnknownKey):
			v.unverified("the log's checkpoint", err)
		case err != nil:
			return v.broken(-1, nil, "the log's checkpoint is not signed by a key of the log: %v", err)
		case cp.Size != v.Leaves:
			return v.broken(min(cp.Size, v.Leaves), nil, "the log's checkpoint vouches for %d leaves, the log holds %d: leaves were cut off or added", cp.Size, v.Leaves)
		default:
			if err := v.tree.Check(cp); err != nil {
				return v.broken(-1, nil, "the log's %v", err)
			}
			v.Checkpoints++
		}
	}
	for _, l := range v.links {
		if err := v.tree.Check(l.Tree()); err != nil {
			return v.broken(-1, nil, "the log does not continue the tree of %q its link statement names (%v)", l.From, err)
		}
	}
	for _, p := range slices.Concat(v.purges, v.unverifiedPurges) {
		if err := v.tree.Check(p.Tree()); err != nil {
			return v.broken(-1, nil, "a purge statement of %s before %s was signed for another tree (%v): purged records may have been laundered", p.Site, p.Before.Format(time.RFC3339), err)
		}
	}
	for _, a := range archived {
		cp, err := v.verifier.Open(a.Signed)
		switch {
		case errors.Is(err, translog.ErrUnknownKey):
			v.unverified(fmt.Sprintf("the archived checkpoint of size %d", a.Size), err)
			continue
		case err != nil:
			return v.broken(-1, nil, "an archived checkpoint is not signed by a key of the log: %v", err)
		}
		if err := v.tree.Check(cp); err != nil {
			return v.broken(-1, nil, "the log does not extend the archived %v: it was rewritten or cut off, or two views of it were given out", err)
		}
		v.Archived++
	}
	return nil
}

// sameConsent reports whether the consent id in sr's header, by which the store finds
// it, is the one its decision names.
func sameConsent(sr storedRecord) bool {
	id, ok := sr.decisionConsentID()
	return ok && id == sr.consentID
}
