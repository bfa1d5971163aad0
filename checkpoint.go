package consent

import (
	"strconv"
	"time"
)

// Checkpoint is a signed statement of the head of a store's hash chain: the place
// and link of its last record at a time. Whoever changes the chain before a
// checkpoint, or cuts it off after one, cannot make the checkpoint agree without the
// private key.
type Checkpoint struct {
	Seq       uint64    `json:"seq"`
	Link      string    `json:"link"` // hex
	At        time.Time `json:"at"`
	KeyID     string    `json:"kid"`
	Signature string    `json:"signature"` // base64url ed25519 over Message
}

// Message returns the bytes a checkpoint's signature covers.
func (c *Checkpoint) Message() []byte {
	return []byte("consentd-checkpoint/1 " + strconv.FormatUint(c.Seq, 10) + " " + c.Link + " " + c.At.UTC().Format(time.RFC3339Nano))
}

// CheckpointVerifier checks checkpoint signatures: all that verifying a store needs,
// so that an auditor holding only the published public keys can do it.
type CheckpointVerifier interface {
	VerifyCheckpoint(c *Checkpoint) bool
}

// CheckpointSigner signs checkpoints and verifies them.
type CheckpointSigner interface {
	CheckpointVerifier
	SignCheckpoint(c *Checkpoint) // sets KeyID and Signature
}
