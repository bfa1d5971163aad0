package translog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
)

// Stored is a store's log and records as Verify reads them, all in one consistent
// view (a read transaction). A store implements it over its own storage; Verify
// holds the rules.
type Stored interface {
	// Origin returns the name the store keeps for its log.
	Origin() (string, error)
	// Links calls fn with each signed link statement to a name the log had before a
	// restore, newest first, and a name for it in messages.
	Links(fn func(name string, signed []byte) error) error
	// Purges calls fn with each stored purge statement and when the purge ran.
	Purges(fn func(at time.Time, signed []byte) error) error
	// Snapshots calls fn with each stored snapshot and the site and fingerprint it is
	// stored under.
	Snapshots(fn func(site, fingerprint string, snapshot []byte) error) error
	// Leaves calls fn with each stored leaf and the index it is stored at, in the
	// order of the indexes.
	Leaves(fn func(index int64, leaf []byte) error) error
	// Leaf returns the leaf stored at index, nil if there is none.
	Leaf(index int64) ([]byte, error)
	// Record returns the stored record with id, nil if there is none.
	Record(id uuid.UUID) (*StoredRecord, error)
	// RecordCount returns how many records are stored.
	RecordCount() (int, error)
	// Records calls fn with each stored record's id and record.
	Records(fn func(id uuid.UUID, r *StoredRecord) error) error
	// Checkpoint returns the latest stored checkpoint, nil if there is none.
	Checkpoint() ([]byte, error)
	// ReadHashes returns the stored hashes of the tree at the storage indexes.
	ReadHashes(indexes []int64) ([]tlog.Hash, error)
}

// StoredRecord is a record as a store keeps it: the index of the leaf it claims, the
// consent id the store files it under, and its parts, the identifying one empty once
// erased. Err is why the store could not read it, if it could not.
type StoredRecord struct {
	Index       int64
	ConsentID   uuid.UUID
	Decision    []byte
	Identifying []byte
	Err         error
}

// Verify rebuilds the log's tree from the stored leaves, checks every record's parts
// against its leaf and every stored hash, checkpoint and purge statement against the
// tree, and checks that the tree extends each archived checkpoint, kept apart from
// the store: whoever rewrites the log and re-signs it cannot rewrite those. It
// returns what it found; an error only when it could not read the store.
func Verify(ctx context.Context, s Stored, verifier *Verifier, archived []*consent.Checkpoint) (*consent.Verification, error) {
	v := &verification{stored: s, verifier: verifier, tree: NewChecker(tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		hashes, err := s.ReadHashes(indexes)
		if err != nil && consent.ErrorCode(err) != consent.ENotFound {
			err = &readError{err} // not a hash missing: the store could not be read
		}
		return hashes, err
	}))}
	var err error
	if v.Origin, err = s.Origin(); err != nil {
		return nil, err
	}
	if v.Origin != verifier.Origin() {
		return v.broken(-1, nil, "the store's log is %q, the keys given are of %q", v.Origin, verifier.Origin()), nil
	}
	// What was signed under the names the log had before a restore verifies too.
	if broken, err := v.readLinks(); broken != nil || err != nil {
		return broken, err
	}
	for _, read := range []func() (*consent.Verification, error){v.readPurges, v.readSnapshots, func() (*consent.Verification, error) { return v.walk(ctx) }} {
		if broken, err := read(); broken != nil || err != nil {
			return broken, err
		}
	}
	// Before the records are counted: a tail cut off with its records kept is a
	// cut, which the checkpoint tells, before it is stray records.
	if broken, err := v.checkpoints(archived); broken != nil || err != nil {
		return broken, err
	}
	if broken, err := v.inserted(); broken != nil || err != nil {
		return broken, err
	}
	if v.purgedUnverified > 0 {
		v.Problem = fmt.Sprintf("%d records are missing that only a purge statement signed by key %s, which is not among the keys given, covers: a purge signed by a key since removed, or a deletion passed off as one", v.purgedUnverified, v.MissingKey)
	}
	v.OK = v.MissingKey == ""
	return &v.Verification, nil
}

// verification is one walk along the log: the report so far, and what checking the
// next leaf needs.
type verification struct {
	consent.Verification
	stored   Stored
	verifier *Verifier
	tree     *Checker
	purges   []*Purge
	// unverifiedPurges are statements signed by a key the verifier lacks, and
	// purgedUnverified counts the missing records only they cover.
	unverifiedPurges []*Purge
	purgedUnverified int
	links            []*Link
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
	var unknown *UnknownKeyError
	if v.MissingKey == "" && errors.As(err, &unknown) {
		v.MissingKey = unknown.Key
		v.Problem = what + " is signed by key " + unknown.Key + ", which is not among the keys given"
	}
}

// readLinks reads the link statements and extends the verifier to the names they
// link.
func (v *verification) readLinks() (*consent.Verification, error) {
	var broken *consent.Verification
	err := v.stored.Links(func(name string, signed []byte) error {
		link, err := v.verifier.OpenLink(signed)
		if err != nil {
			broken = v.broken(-1, nil, "the link statement stored under %s: %v", name, err)
			return errStop
		}
		if v.verifier, err = v.verifier.Continuing(link.From); err != nil {
			broken = v.broken(-1, nil, "%v", err)
			return errStop
		}
		v.links = append(v.links, link)
		return nil
	})
	return stopped(broken, err)
}

// readPurges reads the signed purge statements, which say which missing records
// were purged; checkpoints checks them against the tree. A statement signed by a key
// the verifier lacks is taken at its word, and reported.
func (v *verification) readPurges() (*consent.Verification, error) {
	var broken *consent.Verification
	err := v.stored.Purges(func(at time.Time, signed []byte) error {
		name := "the purge statement of " + at.UTC().Format(time.RFC3339Nano)
		p, err := v.verifier.OpenPurge(signed)
		switch {
		case errors.Is(err, ErrUnknownKey):
			v.unverified(name, err)
			v.unverifiedPurges = append(v.unverifiedPurges, p)
		case err != nil:
			broken = v.broken(-1, nil, "%s is not signed by a key of the log: %v", name, err)
			return errStop
		default:
			v.purges = append(v.purges, p)
		}
		return nil
	})
	return stopped(broken, err)
}

// readSnapshots reads the digests of the stored snapshots, which leaves name.
func (v *verification) readSnapshots() (*consent.Verification, error) {
	v.snapshots = map[[32]byte]bool{{}: true} // zeros: the record named no stored snapshot
	var broken *consent.Verification
	err := v.stored.Snapshots(func(site, fingerprint string, value []byte) error {
		// A record names its snapshot by digest: the snapshot must also be where
		// the record's site and fingerprint find it, or a forged one could take its
		// key while the original hides under another.
		var snap struct {
			Site        string `json:"site"`
			Fingerprint string `json:"fingerprint"`
		}
		if err := json.Unmarshal(value, &snap); err != nil || snap.Site != site || snap.Fingerprint != fingerprint {
			broken = v.broken(-1, nil, "the snapshot stored under %q was altered or moved", site+"\x00"+fingerprint)
			return errStop
		}
		v.snapshots[sha256.Sum256(value)] = true
		return nil
	})
	return stopped(broken, err)
}

// walk checks every leaf, in order, and the record it names.
func (v *verification) walk(ctx context.Context) (*consent.Verification, error) {
	var broken *consent.Verification
	progress := consent.VerifyProgress(ctx)
	err := v.stored.Leaves(func(index int64, leaf []byte) error {
		if v.Leaves%10000 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if progress != nil {
				progress.Store(v.Leaves)
			}
		}
		var err error
		if broken, err = v.step(index, leaf); broken != nil {
			return errStop
		}
		return err
	})
	return stopped(broken, err)
}

// step checks the leaf stored at index, the next in the log, and the record it
// names. It returns what it found wrong, or an error if it could not read the store.
func (v *verification) step(stored int64, leafBytes []byte) (*consent.Verification, error) {
	index := v.Leaves
	if stored != index {
		return v.broken(index, nil, "the log has no leaf %d: a leaf was deleted or inserted", index), nil
	}
	if err := v.tree.Add(LeafHash(leafBytes)); err != nil {
		if unreadable(err) {
			return nil, err
		}
		return v.broken(index, nil, "%v: the leaf, or the tree's hashes, were altered", err), nil
	}
	var leaf Leaf
	if err := leaf.UnmarshalBinary(leafBytes); err != nil {
		return v.broken(index, nil, "leaf %d is unreadable: %v", index, err), nil
	}
	id := &leaf.RecordID
	if !v.snapshots[leaf.Snapshot] {
		return v.broken(index, id, "the snapshot of what record %s (leaf %d) was shown was altered or removed", leaf.RecordID, index), nil
	}
	sr, err := v.stored.Record(leaf.RecordID)
	switch {
	case err != nil:
		return nil, fmt.Errorf("record %s (leaf %d): %w", leaf.RecordID, index, err)
	case sr != nil:
		switch {
		case sr.Err != nil:
			return v.broken(index, id, "record %s (leaf %d) is unreadable: %v", leaf.RecordID, index, sr.Err), nil
		case sr.Index != index:
			return v.broken(index, id, "record %s claims leaf %d, the log has it at %d", leaf.RecordID, sr.Index, index), nil
		case sha256.Sum256(sr.Decision) != leaf.Decision:
			return v.broken(index, id, "the decision of record %s (leaf %d) was altered", leaf.RecordID, index), nil
		case !sr.SameConsent():
			return v.broken(index, id, "record %s (leaf %d) is filed under another consent id than its decision's: it would be shown to another visitor", leaf.RecordID, index), nil
		case len(sr.Identifying) == 0:
			v.Erased++
		case sha256.Sum256(sr.Identifying) != leaf.Identifying:
			return v.broken(index, id, "the identifying part of record %s (leaf %d) was altered", leaf.RecordID, index), nil
		}
		v.Records++
	case slices.ContainsFunc(v.purges, func(p *Purge) bool { return p.Covers(index, &leaf) }):
		v.Purged++
	case slices.ContainsFunc(v.unverifiedPurges, func(p *Purge) bool { return p.Covers(index, &leaf) }):
		v.Purged++
		v.purgedUnverified++
	default:
		return v.broken(index, id, "record %s (leaf %d, %s, %s) was deleted: no signed purge covers it",
			leaf.RecordID, index, leaf.Site, leaf.RecordedAt.Format(time.RFC3339)), nil
	}
	v.Leaves++
	return nil, nil
}

// inserted finds a record that is stored but whose leaf does not name it, if more
// are stored than the walk found.
func (v *verification) inserted() (*consent.Verification, error) {
	n, err := v.stored.RecordCount()
	if err != nil || n == v.Records {
		return nil, err
	}
	var broken *consent.Verification
	err = v.stored.Records(func(id uuid.UUID, sr *StoredRecord) error {
		if sr.Err != nil {
			broken = v.broken(-1, nil, "record %x is unreadable and not in the log: it was inserted", id[:])
			return errStop
		}
		leafBytes, err := v.stored.Leaf(sr.Index)
		if err != nil {
			return err
		}
		var leaf Leaf
		if leaf.UnmarshalBinary(leafBytes) != nil || leaf.RecordID != id {
			broken = v.broken(-1, &id, "record %s is not in the log: it was inserted", id)
			return errStop
		}
		return nil
	})
	if broken != nil || err != nil {
		return stopped(broken, err)
	}
	return v.broken(-1, nil, "%d records are stored, %d are in the log", n, v.Records), nil
}

// checkpoints checks the store's checkpoint, the link and purge statements and the
// archived checkpoints against the rebuilt tree: a log rewritten consistently and
// re-signed, or cut off at its end, no longer extends those signed before.
func (v *verification) checkpoints(archived []*consent.Checkpoint) (*consent.Verification, error) {
	signed, err := v.stored.Checkpoint()
	if err != nil {
		return nil, err
	}
	if signed == nil {
		if v.Leaves > 0 {
			return v.broken(-1, nil, "the log has %d leaves and no checkpoint", v.Leaves), nil
		}
	} else {
		cp, err := v.verifier.Open(signed)
		switch {
		case errors.Is(err, ErrUnknownKey):
			v.unverified("the log's checkpoint", err)
		case err != nil:
			return v.broken(-1, nil, "the log's checkpoint is not signed by a key of the log: %v", err), nil
		case cp.Size != v.Leaves:
			return v.broken(min(cp.Size, v.Leaves), nil, "the log's checkpoint vouches for %d leaves, the log holds %d: leaves were cut off or added", cp.Size, v.Leaves), nil
		default:
			if err := v.tree.Check(cp); err != nil {
				if unreadable(err) {
					return nil, err
				}
				return v.broken(-1, nil, "the log's %v", err), nil
			}
			v.Checkpoints++
		}
	}
	for _, l := range v.links {
		if err := v.tree.Check(l.Tree()); err != nil {
			if unreadable(err) {
				return nil, err
			}
			return v.broken(-1, nil, "the log does not continue the tree of %q its link statement names (%v)", l.From, err), nil
		}
	}
	for _, p := range slices.Concat(v.purges, v.unverifiedPurges) {
		if err := v.tree.Check(p.Tree()); err != nil {
			if unreadable(err) {
				return nil, err
			}
			return v.broken(-1, nil, "a purge statement of %s before %s was signed for another tree (%v): purged records may have been laundered", p.Site, p.Before.Format(time.RFC3339), err), nil
		}
	}
	for _, a := range archived {
		cp, err := v.verifier.Open(a.Signed)
		switch {
		case errors.Is(err, ErrUnknownKey):
			v.unverified(fmt.Sprintf("the archived checkpoint of size %d", a.Size), err)
			continue
		case err != nil:
			return v.broken(-1, nil, "an archived checkpoint is not signed by a key of the log: %v", err), nil
		}
		if err := v.tree.Check(cp); err != nil {
			if unreadable(err) {
				return nil, err
			}
			return v.broken(-1, nil, "the log does not extend the archived %v: it was rewritten or cut off, or two views of it were given out", err), nil
		}
		v.Archived++
	}
	return nil, nil
}

// readError is a failure to read the store's hashes, which no finding is made of:
// a database that did not answer has not been tampered with.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// unreadable reports whether err, from the tree's checker, is a failure to read the
// store rather than a hash missing or altered.
func unreadable(err error) bool {
	var re *readError
	return errors.As(err, &re)
}

// errStop ends a walk over a store at a finding.
var errStop = errors.New("stop")

// stopped returns what a walk that found broken, or ended with err, gives.
func stopped(broken *consent.Verification, err error) (*consent.Verification, error) {
	if broken != nil {
		return broken, nil
	}
	return nil, err
}

// consentIDField opens the consent id in a decision part: its members are sorted and
// its strings escape every quote, so this appears once, before the id.
var consentIDField = []byte(`"consent_id":"`)

// SameConsent reports whether the consent id the store files sr under, by which it
// finds it for a visitor, is the one its decision names, which its leaf vouches for.
func (sr *StoredRecord) SameConsent() bool {
	_, rest, ok := bytes.Cut(sr.Decision, consentIDField)
	if !ok || len(rest) < 36 {
		return false
	}
	id, err := uuid.ParseBytes(rest[:36])
	return err == nil && id == sr.ConsentID
}
