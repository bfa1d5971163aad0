package translog

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// purgeHeader is the first line of a purge statement. It is not an origin, so no
// checkpoint parser takes a statement for a checkpoint.
const purgeHeader = "consentd.purge/v1"

// Purge is a signed statement that a retention purge removed the records of Site
// recorded before Before, from the tree of Size leaves with root Root: verification
// tells a purged record, whose leaf stays as its tombstone, from a deleted one.
type Purge struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Site   string
	Before time.Time
	Signed []byte
}

// SignPurge returns the statement, signed by s, that the records of site recorded
// before before were purged from the tree of cp.
func (s *Signer) SignPurge(cp *Checkpoint, site string, before time.Time) (*Purge, error) {
	if site == "" || strings.ContainsAny(site, "\n") {
		return nil, fmt.Errorf("translog: purge statement: malformed site %q", site)
	}
	before = before.UTC()
	text := fmt.Sprintf("%s\n%s\n%d\n%s\n%s\n%s\n", purgeHeader, s.origin, cp.Size,
		base64.StdEncoding.EncodeToString(cp.Root[:]), site, before.Format(time.RFC3339Nano))
	signed, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		return nil, fmt.Errorf("translog: sign a purge statement: %w", err)
	}
	return &Purge{Origin: s.origin, Size: cp.Size, Root: cp.Root, Site: site, Before: before, Signed: signed}, nil
}

// OpenPurge returns the purge statement in signed once a key of v verifies it and it
// names v's log. A statement well formed but signed by a key v lacks comes back too,
// with an *UnknownKeyError: what it says, which nothing vouches for here.
func (v *Verifier) OpenPurge(signed []byte) (*Purge, error) {
	n, err := v.open(signed)
	var unknown *UnknownKeyError
	if err != nil && !errors.As(err, &unknown) {
		return nil, fmt.Errorf("translog: purge statement: %w", err)
	}
	p, perr := v.parsePurge(n, signed)
	if perr != nil {
		return nil, perr
	}
	if unknown != nil {
		return p, fmt.Errorf("translog: purge statement: %w", unknown)
	}
	return p, nil
}

func (v *Verifier) parsePurge(n *note.Note, signed []byte) (*Purge, error) {
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 7 || lines[0] != purgeHeader || lines[6] != "" {
		return nil, errors.New("translog: purge statement: malformed")
	}
	if !v.knows(lines[1]) {
		return nil, fmt.Errorf("translog: purge statement of log %q, want %q", lines[1], v.origin)
	}
	size, err1 := strconv.ParseInt(lines[2], 10, 64)
	root, err2 := base64.StdEncoding.DecodeString(lines[3])
	before, err3 := time.Parse(time.RFC3339Nano, lines[5])
	if err := errors.Join(err1, err2, err3); err != nil || size < 0 || len(root) != tlog.HashSize || lines[4] == "" {
		return nil, errors.New("translog: purge statement: malformed")
	}
	return &Purge{Origin: lines[1], Size: size, Root: tlog.Hash(root), Site: lines[4], Before: before, Signed: signed}, nil
}

// Covers reports whether p covers the leaf at index l: a leaf of its site, recorded
// before its time, in the tree it was made from.
func (p *Purge) Covers(index int64, l *Leaf) bool {
	return index < p.Size && l.Site == p.Site && l.RecordedAt.Before(p.Before)
}

// Tree returns the tree p was made from, as an unsigned checkpoint, for Checker.Check.
func (p *Purge) Tree() *Checkpoint { return &Checkpoint{Origin: p.Origin, Size: p.Size, Root: p.Root} }
