package translog

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// linkHeader is the first line of a link statement; not an origin, so no checkpoint
// parser takes one for a checkpoint.
const linkHeader = "consentd.link/v1"

// Link is a signed statement that the log named Origin continues the tree of Size
// leaves with root Root of the log named From. A store restored from a backup signs
// one under a new origin: under its old one, it would sign trees of sizes that the
// old name's checkpoints, held by visitors and monitors, already vouch for with other
// roots, a fork of the log.
type Link struct {
	Origin, From string
	Size         int64
	Root         tlog.Hash
	Signed       []byte
}

// SignLink returns the statement, signed by s, that s's log continues the tree of
// from, a checkpoint of another log.
func (s *Signer) SignLink(from *Checkpoint) (*Link, error) {
	if from.Origin == s.origin {
		return nil, fmt.Errorf("translog: a log cannot continue itself (%s)", s.origin)
	}
	text := fmt.Sprintf("%s\n%s\n%s\n%d\n%s\n", linkHeader, s.origin, from.Origin, from.Size,
		base64.StdEncoding.EncodeToString(from.Root[:]))
	signed, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		return nil, fmt.Errorf("translog: sign a link statement: %w", err)
	}
	return &Link{Origin: s.origin, From: from.Origin, Size: from.Size, Root: from.Root, Signed: signed}, nil
}

// OpenLink returns the link statement in signed once a key of v verifies it and it
// names v's log, or one v's continues, as the continuing one.
func (v *Verifier) OpenLink(signed []byte) (*Link, error) {
	n, err := v.open(signed)
	if err != nil {
		return nil, fmt.Errorf("translog: link statement: %w", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) != 6 || lines[0] != linkHeader || lines[5] != "" || lines[2] == "" {
		return nil, errors.New("translog: link statement: malformed")
	}
	if !v.knows(lines[1]) {
		return nil, fmt.Errorf("translog: link statement of log %q, want %q", lines[1], v.origin)
	}
	size, err1 := strconv.ParseInt(lines[3], 10, 64)
	root, err2 := base64.StdEncoding.DecodeString(lines[4])
	if errors.Join(err1, err2) != nil || size < 0 || len(root) != tlog.HashSize {
		return nil, errors.New("translog: link statement: malformed")
	}
	return &Link{Origin: lines[1], From: lines[2], Size: size, Root: tlog.Hash(root), Signed: signed}, nil
}

// Tree returns the tree l continues, as an unsigned checkpoint, for Checker.Check.
func (l *Link) Tree() *Checkpoint { return &Checkpoint{Origin: l.From, Size: l.Size, Root: l.Root} }

// Lineage reads the link statements that links hands out, newest first (as
// Stored.Links does), and returns v extended to every name the log had before, and
// the statements, newest first.
func (v *Verifier) Lineage(links func(fn func(name string, signed []byte) error) error) (*Verifier, []*Link, error) {
	var out []*Link
	err := links(func(name string, signed []byte) error {
		link, err := v.OpenLink(slices.Clone(signed)) // kept beyond the store's read
		if err != nil {
			return fmt.Errorf("the link statement stored under %s: %w", name, err)
		}
		if v, err = v.Continuing(link.From); err != nil {
			return err
		}
		out = append(out, link)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v, out, nil
}

// Rename signs, with keys, what the log whose head is head, and whose earlier names
// links give, needs to go on under the name origin: the statement that it continues
// head's tree, and the checkpoint of that tree under origin (nil for an empty tree).
// It refuses a name the log ever had: under it, the renamed log would sign trees
// that checkpoints of the old one vouch for with other roots.
func Rename(head *Checkpoint, links []*Link, origin string, keys Keys) (*Link, []byte, error) {
	if origin == head.Origin || slices.ContainsFunc(links, func(l *Link) bool { return l.From == origin }) {
		return nil, nil, fmt.Errorf("the store's log is or was named %q: a restored store needs a name it never had", origin)
	}
	signer, err := keys.LogSigner(origin)
	if err != nil {
		return nil, nil, err
	}
	link, err := signer.SignLink(head)
	if err != nil || head.Size == 0 {
		return link, nil, err
	}
	cp, err := signer.SignTree(head.Size, head.Root)
	if err != nil {
		return nil, nil, err
	}
	return link, cp.Signed, nil
}
