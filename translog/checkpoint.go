package translog

import (
	"crypto/ed25519"
	"fmt"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

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
	v, err := newVerifier(origin, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Signer{origin: origin, hash: v.KeyHash(), key: key}, nil
}

func (s *Signer) Name() string                    { return s.origin }
func (s *Signer) KeyHash() uint32                 { return s.hash }
func (s *Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }

// VerifierKey returns the note verifier key of the log named origin with the public
// key pub, as consentd publishes it: origin+hash+base64(algorithm and key).
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return "", fmt.Errorf("translog: origin %q: %w", origin, err)
	}
	return vkey, nil
}

func newVerifier(origin string, pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := VerifierKey(origin, pub)
	if err != nil {
		return nil, err
	}
	return note.NewVerifier(vkey)
}

// SignCheckpoint returns the C2SP tlog-checkpoint of the tree of size leaves with
// root hash root, signed by s.
func SignCheckpoint(s *Signer, size int64, root tlog.Hash) ([]byte, error) {
	text := log.Checkpoint{Origin: s.origin, Size: uint64(size), Hash: root[:]}.Marshal()
	signed, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, fmt.Errorf("translog: sign the checkpoint of size %d: %w", size, err)
	}
	return signed, nil
}

// OpenCheckpoint returns the checkpoint in signed once its signature verifies with
// the verifier key vkey, whose name is the log's origin.
func OpenCheckpoint(signed []byte, vkey string) (*log.Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("translog: verifier key: %w", err)
	}
	cp, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return nil, fmt.Errorf("translog: checkpoint: %w", err)
	}
	return cp, nil
}
