package translog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// proofHeader is the first line of a C2SP tlog-proof.
const proofHeader = "c2sp.org/tlog-proof@v1"

// Proof is the proof that a leaf is in a log: its index, the hashes of its
// inclusion proof (RFC 6962, from the leaf's sibling up), and the checkpoint of the
// tree they lead to. Its text form is C2SP tlog-proof.
type Proof struct {
	Index      int64
	Hashes     tlog.RecordProof
	Checkpoint []byte // the signed note, verbatim
}

// Prove returns the proof that the leaf at index is in the tree of cp, reading the
// tree's hashes with r.
func Prove(r tlog.HashReader, index int64, cp *Checkpoint) (*Proof, error) {
	if index < 0 || index >= cp.Size {
		return nil, fmt.Errorf("translog: prove leaf %d: not in a tree of size %d", index, cp.Size)
	}
	hashes, err := tlog.ProveRecord(cp.Size, index, r)
	if err != nil {
		return nil, fmt.Errorf("translog: prove leaf %d in size %d: %w", index, cp.Size, err)
	}
	return &Proof{Index: index, Hashes: hashes, Checkpoint: cp.Signed}, nil
}

// MarshalText returns p as a C2SP tlog-proof.
func (p *Proof) MarshalText() ([]byte, error) {
	index := strconv.FormatInt(p.Index, 10)
	hashLine := base64.StdEncoding.EncodedLen(tlog.HashSize) + 1
	b := make([]byte, 0, len(proofHeader)+len("\nindex \n")+len(index)+len(p.Hashes)*hashLine+1+len(p.Checkpoint))
	b = append(b, proofHeader+"\nindex "...)
	b = append(b, index...)
	b = append(b, '\n')
	for _, h := range p.Hashes {
		b = base64.StdEncoding.AppendEncode(b, h[:])
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, p.Checkpoint...), nil
}

// UnmarshalText reads a C2SP tlog-proof. It refuses extra data, which consentd never
// writes, rather than carry bytes nothing authenticates.
func (p *Proof) UnmarshalText(text []byte) error {
	head, checkpoint, ok := bytes.Cut(text, []byte("\n\n"))
	if !ok {
		return errors.New("translog: proof: no empty line before the checkpoint")
	}
	lines := strings.Split(string(head), "\n")
	if len(lines) < 2 || lines[0] != proofHeader {
		return fmt.Errorf("translog: proof: does not start with %s and an index line", proofHeader)
	}
	digits, ok := strings.CutPrefix(lines[1], "index ")
	index, err := strconv.ParseInt(digits, 10, 64)
	if !ok || err != nil || index < 0 || strconv.FormatInt(index, 10) != digits {
		return fmt.Errorf("translog: proof: malformed line %q, want index and a decimal", lines[1])
	}
	hashes := make(tlog.RecordProof, 0, len(lines)-2)
	for _, line := range lines[2:] {
		// One text per hash, as MarshalText writes it: strict base64 refuses stray
		// bits in the last character, the length a \r or \n it would skip.
		raw, err := base64.StdEncoding.Strict().DecodeString(line)
		if err != nil || len(raw) != tlog.HashSize || len(line) != base64.StdEncoding.EncodedLen(tlog.HashSize) {
			return fmt.Errorf("translog: proof: malformed hash line %q", line)
		}
		hashes = append(hashes, tlog.Hash(raw))
	}
	*p = Proof{Index: index, Hashes: hashes, Checkpoint: checkpoint}
	return nil
}

// ErrNotIncluded is wrapped by the errors of VerifyInclusion and VerifyConsistency
// whose proofs do not hold.
var ErrNotIncluded = errors.New("the proof does not hold")

// VerifyInclusion checks that the leaf with the bytes leaf is at p.Index in the tree
// of p's checkpoint, signed for v's log, and returns that checkpoint.
func (v *Verifier) VerifyInclusion(p *Proof, leaf []byte) (*Checkpoint, error) {
	cp, err := v.Open(p.Checkpoint)
	if err != nil {
		return nil, err
	}
	if p.Index >= cp.Size {
		return nil, fmt.Errorf("translog: leaf %d is not in a tree of size %d: %w", p.Index, cp.Size, ErrNotIncluded)
	}
	if err := tlog.CheckRecord(p.Hashes, cp.Size, tlog.Hash(cp.Root), p.Index, tlog.RecordHash(leaf)); err != nil {
		return nil, fmt.Errorf("translog: leaf %d in the tree of size %d: %w", p.Index, cp.Size, ErrNotIncluded)
	}
	return cp, nil
}

// ProveConsistency returns the proof that the tree of size newer extends the tree of
// size older, reading the hashes of the newer tree with r.
func ProveConsistency(r tlog.HashReader, older, newer int64) (tlog.TreeProof, error) {
	if older < 0 || older > newer {
		return nil, fmt.Errorf("translog: prove consistency: a tree of size %d does not extend one of size %d", newer, older)
	}
	if older == 0 || older == newer {
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newer, older, r)
	if err != nil {
		return nil, fmt.Errorf("translog: prove consistency of size %d with size %d: %w", newer, older, err)
	}
	return p, nil
}

// VerifyConsistency checks with p that the tree of newer extends the tree of older,
// both checkpoints opened already.
func VerifyConsistency(p tlog.TreeProof, older, newer *Checkpoint) error {
	switch {
	case older.Size > newer.Size:
		return fmt.Errorf("translog: the tree of size %d cannot extend one of size %d: %w", newer.Size, older.Size, ErrNotIncluded)
	case older.Size == 0:
		return nil
	case older.Size == newer.Size:
		if older.Root != newer.Root {
			return fmt.Errorf("translog: two roots for the tree of size %d (a split view): %w", older.Size, ErrNotIncluded)
		}
		return nil
	}
	if err := tlog.CheckTree(p, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("translog: the tree of size %d does not extend the one of size %d: %w", newer.Size, older.Size, ErrNotIncluded)
	}
	return nil
}
