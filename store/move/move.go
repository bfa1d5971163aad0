// Package move copies a whole consent store into an empty one of another backend
// (consentd copy), its log intact: the same leaves at the same indexes under the same
// origin, the same stored hashes, checkpoint, link and purge statements, snapshots
// and audit entries, so that every receipt the source issued verifies against the
// copy. A backend takes part as a Source, which marks itself as moved, and as a
// Destination.
package move

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// Source is a whole store in one consistent read view.
type Source interface {
	translog.Stored
	// Audit calls fn with each audit entry as stored (JSON), oldest first.
	Audit(fn func(entry []byte) error) error
}

// Destination is an empty store that Copy fills: with its origin first and its
// checkpoint last. The leaves come in order, each between the first of the stored
// hashes it adds to the tree (its own) and the rest: the order of their storage
// indexes, in which a store that keys them so writes its pages full. Nothing of it
// counts unless the backend's fill as a whole succeeds. The byte slices it is given
// are valid only during the call.
type Destination interface {
	SetOrigin(origin string) error
	// Link stores a link statement; they come oldest first.
	Link(signed []byte) error
	Purge(at time.Time, p *translog.Purge) error
	Snapshot(site, fingerprint string, snapshot []byte) error
	Audit(entry []byte) error
	// Leaf stores the leaf at index, and the record it names unless r is nil (a
	// purged record's tombstone).
	Leaf(index int64, leaf []byte, id uuid.UUID, r *translog.StoredRecord) error
	WriteHashes(start int64, hashes []tlog.Hash) error
	PutCheckpoint(signed []byte) error
}

// Copied is what Copy copied.
type Copied struct {
	Origin string
	// Checkpoint is the source's latest, nil for a log without leaves.
	Checkpoint *consent.Checkpoint
	Records    int
	Snapshots  int
	Audit      int
	Purges     int
	Links      int
}

// Move copies the store that from hands out into the new one that to fills (a
// backend's Move and Fill), verifying what it copies with keys, and calls check,
// when the copy is whole, before from marks its store as moved: a copy that check
// refuses leaves the source as it was.
func Move(ctx context.Context, from func(copy func(Source) error) error, to func(fill func(Destination) error) error, keys translog.Keys, check func(*Copied) error) (*Copied, error) {
	var copied *Copied
	err := from(func(src Source) error {
		origin, err := src.Origin()
		if err != nil {
			return err
		}
		v, err := keys.LogVerifier(origin)
		if err != nil {
			return err
		}
		err = to(func(dst Destination) error {
			copied, err = Copy(ctx, src, dst, v)
			return err
		})
		if err != nil {
			return err
		}
		return check(copied)
	})
	if err != nil {
		return nil, err
	}
	return copied, nil
}

// Copy copies src into dst. It copies only a store whose checkpoint verifies with v
// and whose leaves and records hold together (each leaf in its place, each record
// named by its leaf); the copy's own verification is the caller's, once the
// destination is whole.
func Copy(ctx context.Context, src Source, dst Destination, v *translog.Verifier) (*Copied, error) {
	origin, err := src.Origin()
	if err != nil {
		return nil, fmt.Errorf("the log's name: %w", err)
	}
	c := &Copied{Origin: origin}
	if c.Origin != v.Origin() {
		return nil, fmt.Errorf("the store's log is %q, the keys given are of %q", c.Origin, v.Origin())
	}
	signed, err := src.Checkpoint()
	if err != nil {
		return nil, fmt.Errorf("the checkpoint: %w", err)
	}
	signed = slices.Clone(signed) // the Copied outlives src's view
	var size int64
	if signed != nil {
		if c.Checkpoint, err = v.Open(signed); err != nil {
			return nil, fmt.Errorf("the store's checkpoint: %w", err)
		}
		size = c.Checkpoint.Size
	}
	if err := dst.SetOrigin(c.Origin); err != nil {
		return nil, err
	}
	// The links first: what was signed under the names they link verifies too.
	if v, err = c.links(src, dst, v); err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		func() error { return c.purges(src, dst, v) },
		func() error { return c.snapshots(src, dst) },
		func() error { return c.audit(src, dst) },
		func() error { return c.leaves(ctx, src, dst, size) },
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if signed != nil {
		if err := dst.PutCheckpoint(signed); err != nil {
			return nil, fmt.Errorf("the checkpoint: %w", err)
		}
	}
	return c, nil
}

// links copies the link statements, and returns v extended to the names they link.
func (c *Copied) links(src Source, dst Destination, v *translog.Verifier) (*translog.Verifier, error) {
	v, links, err := v.Lineage(src.Links)
	if err != nil {
		return nil, err
	}
	for _, link := range slices.Backward(links) { // oldest first, as stored
		if err := dst.Link(link.Signed); err != nil {
			return nil, fmt.Errorf("a link statement: %w", err)
		}
	}
	c.Links = len(links)
	return v, nil
}

func (c *Copied) purges(src Source, dst Destination, v *translog.Verifier) error {
	return src.Purges(func(at time.Time, signed []byte) error {
		// A statement signed by a key retired since is copied as it is: verification
		// reports it, in the copy as in the source.
		p, err := v.OpenPurge(signed)
		if err != nil && !errors.Is(err, translog.ErrUnknownKey) {
			return fmt.Errorf("the purge statement of %s: %w", at.Format(time.RFC3339Nano), err)
		}
		c.Purges++
		return dst.Purge(at, p)
	})
}

func (c *Copied) snapshots(src Source, dst Destination) error {
	return src.Snapshots(func(site, fingerprint string, snapshot []byte) error {
		c.Snapshots++
		return dst.Snapshot(site, fingerprint, snapshot)
	})
}

func (c *Copied) audit(src Source, dst Destination) error {
	return src.Audit(func(entry []byte) error {
		c.Audit++
		return dst.Audit(entry)
	})
}

// leaves copies every leaf, in order, with the record it names and the stored hashes
// it adds to the tree: size of them, as many as the checkpoint vouches for.
func (c *Copied) leaves(ctx context.Context, src Source, dst Destination, size int64) error {
	var next int64
	hashes := &hashCursor{src: src, n: tlog.StoredHashCount(size)}
	err := src.Leaves(func(index int64, leaf []byte) error {
		switch {
		case index != next:
			return fmt.Errorf("leaf %d is missing: the store was altered or is damaged (consentd verify says more)", next)
		case index >= size:
			return fmt.Errorf("the store holds more leaves than the %d its checkpoint vouches for: the store was altered (consentd verify says more)", size)
		}
		next++
		if next%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var l translog.Leaf
		if err := l.UnmarshalBinary(leaf); err != nil {
			return fmt.Errorf("leaf %d: %w", index, err)
		}
		r, err := src.Record(l.RecordID)
		switch {
		case err != nil:
			return fmt.Errorf("the record of leaf %d: %w", index, err)
		case r != nil && r.Err != nil:
			return fmt.Errorf("the record of leaf %d: %w", index, r.Err)
		case r != nil && r.Index != index:
			return fmt.Errorf("record %s claims leaf %d, but leaf %d names it: the store was altered (consentd verify says more)", l.RecordID, r.Index, index)
		case r != nil:
			c.Records++
		}
		first := tlog.StoredHashIndex(0, index)
		added, err := hashes.read(first, tlog.StoredHashCount(index+1))
		if err != nil {
			return fmt.Errorf("the hashes of leaf %d: %w", index, err)
		}
		if err := dst.WriteHashes(first, added[:1]); err != nil {
			return err
		}
		if err := dst.Leaf(index, leaf, l.RecordID, r); err != nil {
			return err
		}
		return dst.WriteHashes(first+1, added[1:])
	})
	if err != nil {
		return err
	}
	if next != size {
		return fmt.Errorf("the store holds %d leaves, but its checkpoint vouches for %d: the store was altered (consentd verify says more)", next, size)
	}
	stored, err := src.RecordCount()
	switch {
	case err != nil:
		return fmt.Errorf("the records: %w", err)
	case stored != c.Records:
		return fmt.Errorf("the store holds %d records, but its leaves name %d: the store was altered (consentd verify says more)", stored, c.Records)
	}
	return nil
}

// hashChunk is how many stored hashes a hashCursor reads at a time.
const hashChunk = 1 << 14

// hashCursor reads a store's stored hashes in the order of their storage indexes, a
// chunk at a time.
type hashCursor struct {
	src   Source
	n     int64 // how many hashes the tree stores
	start int64 // the storage index of chunk[0]
	chunk []tlog.Hash
}

// read returns the stored hashes from storage index from up to to, which must not be
// before those read last.
func (h *hashCursor) read(from, to int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, to-from)
	for x := from; x < to; x++ {
		if x >= h.start+int64(len(h.chunk)) {
			end := min(h.n, x+hashChunk)
			if x >= end {
				return nil, fmt.Errorf("storage index %d is beyond the tree's %d hashes", x, h.n)
			}
			indexes := make([]int64, 0, end-x)
			for i := x; i < end; i++ {
				indexes = append(indexes, i)
			}
			chunk, err := h.src.ReadHashes(indexes)
			if err != nil {
				return nil, err
			}
			h.start, h.chunk = x, chunk
		}
		out = append(out, h.chunk[x-h.start])
	}
	return out, nil
}

// Mark is what a store keeps of its move: where to, since when, and whether the copy
// completed. A store with a mark takes no more records.
type Mark struct {
	To   string    `json:"to"`
	At   time.Time `json:"at"`
	Done bool      `json:"done"`
}

// ErrMoved is wrapped by the error of a store marked as moved, or as a copy in
// progress: it takes no writes.
var ErrMoved = errors.New("moved by consentd copy")

// MovedError is the error of a store marked as moved: what its mark says.
type MovedError struct{ Mark Mark }

// Err returns the error of a store with m.
func (m *Mark) Err() error { return &MovedError{Mark: *m} }

func (e *MovedError) Error() string {
	at := e.Mark.At.UTC().Format(time.RFC3339)
	if e.Mark.Done {
		return fmt.Sprintf("the store was copied to %s on %s and takes no more records, so that two stores never grow one log: serve %s", e.Mark.To, at, e.Mark.To)
	}
	return fmt.Sprintf("the store is being copied to %s since %s and takes no more records; if that copy stopped, run it again", e.Mark.To, at)
}

func (e *MovedError) Is(target error) bool { return target == ErrMoved }

// InProgress returns the error of a store that is a copy of from still in progress:
// it takes no writes until consentd copy completes it, once its source is marked as
// moved, so that the two are never served at once.
func InProgress(from string) error {
	return fmt.Errorf("the store is a copy of %s that consentd copy has not completed: run that copy again to complete it, or remove this one (%w)", from, ErrMoved)
}

// Outcome is the error of a move whose copy ended with copied and whose final mark
// of the source with marked.
func Outcome(copied, marked error) error {
	switch {
	case marked == nil:
		return copied
	case copied == nil:
		return fmt.Errorf("the copy is complete, but the source could not be marked as moved (run the copy again to complete it): %w", marked)
	}
	return fmt.Errorf("%w; and the source's mark could not be set back: %v", copied, marked)
}
