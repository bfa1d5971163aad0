package translog

import (
	"encoding/base64"
	"errors"
	"fmt"
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
