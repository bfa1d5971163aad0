package translog

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
)

// Checkpoint is a signed tree head: the log's origin, its size and root hash, and the
// C2SP tlog-checkpoint note they came from, kept byte for byte since every signature
// covers it.
type Checkpoint = consent.Checkpoint

// Signer signs checkpoints as C2SP signed notes: the note's key name is the log's
// origin, its key an ed25519 key.
type Signer struct {
	origin string
	hash   uint32
	key    ed25519.PrivateKey
}

var _ note.Signer = (*Signer)(nil)

// NewSigner returns a signer of the checkpoints of the log named origin with key. An
// origin must be a note key name: not empty, without spaces or '+'.
func NewSigner(origin string, key ed25519.PrivateKey) (*Signer, error) {
	v, err := newNoteVerifier(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Signer{origin: origin, hash: v.KeyHash(), key: key}, nil
}

func (s *Signer) Name() string                    { return s.origin }
func (s *Signer) KeyHash() uint32                 { return s.hash }
func (s *Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// CheckOrigin refuses an origin that cannot name a log: it is the key name of its
// signed notes.
func CheckOrigin(origin string) error {
	if _, err := VerifierKey(origin, make([]byte, 32)); err != nil {
		return fmt.Errorf("the log's origin %q is not a valid name: it must be non-empty, without spaces or +", origin)
	}
	return nil
}

// VerifierKey returns the note verifier key of the log named origin with the public
// key pub, as consentd publishes it: origin+hash+base64(algorithm and key).
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err == nil {
		// NewEd25519VerifierKey takes names that the keys it makes then cannot be
		// read with, such as ones with a space.
		_, err = note.NewVerifier(vkey)
	}
	if err != nil {
		return "", fmt.Errorf("translog: origin %q is not a log's name (a note key name: no space or +): %w", origin, err)
	}
	return vkey, nil
}

func newNoteVerifier(origin string, pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(vkey)
}

// SignTree returns the checkpoint of the tree of size leaves with root hash root,
// signed by s.
func (s *Signer) SignTree(size int64, root tlog.Hash) (*Checkpoint, error) {
	text := log.Checkpoint{Origin: s.origin, Size: uint64(size), Hash: root[:]}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, fmt.Errorf("translog: sign the checkpoint of size %d: %w", size, err)
	}
	return &Checkpoint{Origin: s.origin, Size: size, Root: root, Signed: signed}, nil
}

// Verifier checks the checkpoints and statements of one log: its origin, signed by
// any of the keys that signed for it (keys rotate; what old keys signed stays
// verifiable). After a restore, a log continues the tree of another origin (see
// Link): a verifier told so (Continuing) also takes what was signed under it.
type Verifier struct {
	origin  string
	origins []string // origin, then those it continues
	pubs    []ed25519.PublicKey
	known   note.Verifiers
}

// NewVerifier returns the verifier of the log named origin, signed by the public
// keys pubs.
func NewVerifier(origin string, pubs ...ed25519.PublicKey) (*Verifier, error) {
	return newVerifier([]string{origin}, pubs)
}

func newVerifier(origins []string, pubs []ed25519.PublicKey) (*Verifier, error) {
	var list []note.Verifier
	for _, origin := range origins {
		for _, pub := range pubs {
			v, err := newNoteVerifier(origin, pub)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
	}
	return &Verifier{origin: origins[0], origins: origins, pubs: pubs, known: note.VerifierList(list...)}, nil
}

// Continuing returns a verifier of v's log that also takes what its keys signed under
// the origin from, a log v's continues.
func (v *Verifier) Continuing(from string) (*Verifier, error) {
	if slices.Contains(v.origins, from) {
		return v, nil
	}
	return newVerifier(append(slices.Clone(v.origins), from), v.pubs)
}

// Origin returns the name of the log v verifies.
func (v *Verifier) Origin() string { return v.origin }

// knows reports whether origin names v's log or one it continues.
func (v *Verifier) knows(origin string) bool { return slices.Contains(v.origins, origin) }

// ErrUnknownKey matches the errors of notes that no key of the verifier signed, but
// that are otherwise well formed: signed by a key the verifier lacks, which is not
// the same as forged (see UnknownKeyError).
var ErrUnknownKey = errors.New("signed by no key known here")

// UnknownKeyError is the error of a note signed by no key of the verifier: Key names
// the key of its first signature, as name+hash (the start of its note verifier key).
type UnknownKeyError struct{ Key string }

func (e *UnknownKeyError) Error() string {
	return "signed by key " + e.Key + ", which is not known here"
}
func (e *UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// open opens the signed note with v's keys. A note that no key of v signed comes
// back, unverified, with an *UnknownKeyError.
func (v *Verifier) open(signed []byte) (*note.Note, error) {
	n, err := note.Open(signed, v.known)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		key := "(none)"
		if sigs := unverified.Note.UnverifiedSigs; len(sigs) > 0 {
			key = fmt.Sprintf("%s+%08x", sigs[0].Name, sigs[0].Hash)
		}
		return unverified.Note, &UnknownKeyError{Key: key}
	}
	return n, err
}

// Open returns the checkpoint in signed once a key of v verifies its signature and
// it names v's log, or one v's continues.
func (v *Verifier) Open(signed []byte) (*Checkpoint, error) {
	n, err := v.open(signed)
	if err != nil {
		return nil, fmt.Errorf("translog: checkpoint: %w", err)
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return nil, fmt.Errorf("translog: checkpoint: %w", err)
	}
	if !v.knows(cp.Origin) {
		return nil, fmt.Errorf("translog: checkpoint of log %q, want %q", cp.Origin, v.origin)
	}
	if cp.Size > 1<<62 || len(cp.Hash) != tlog.HashSize {
		return nil, fmt.Errorf("translog: checkpoint: malformed size or root")
	}
	return &Checkpoint{Origin: cp.Origin, Size: int64(cp.Size), Root: [32]byte(cp.Hash), Signed: signed}, nil
}

// Keys are a log's signing keys: the newest signs, all of them verify, so that
// rotating to a new key leaves what the old ones signed verifiable.
type Keys interface {
	LogSigner(origin string) (*Signer, error)
	LogVerifier(origin string) (*Verifier, error)
}
