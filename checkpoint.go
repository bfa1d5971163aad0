package consent

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Checkpoint is a signed statement about a store's hash chain at a time: the place
// and link of a record in it. Whoever changes the chain before a checkpoint, or cuts
// it off after one, cannot make the checkpoint agree without the private key.
//
// Two kinds of statement go further. A checkpoint with Purged says which records a
// retention purge removed, so that verification can tell a purge from a deletion. A
// Base checkpoint says that every record up to Seq was purged and dropped from the
// chain, so that verification starts from its link.
//
// Chain names the chain a statement is about: stores that share a signing key (a
// staging and a production instance, several instances on one database) cannot
// lend each other their statements.
type Checkpoint struct {
	Chain     string               `json:"chain"`
	Seq       uint64               `json:"seq"`
	Link      string               `json:"link"` // hex
	At        time.Time            `json:"at"`
	Base      bool                 `json:"base,omitempty"`
	Purged    map[string]time.Time `json:"purged,omitempty"` // per site: records before this time were purged
	KeyID     string               `json:"kid"`
	Signature string               `json:"signature"` // base64url ed25519 over Message
}

// Message returns the bytes a checkpoint's signature covers. A base's message has a
// prefix of its own, so that no ordinary checkpoint can be passed off as a base to
// drop the records before it.
func (c *Checkpoint) Message() []byte {
	kind := "consentd-checkpoint/2 "
	if c.Base {
		kind = "consentd-base/2 "
	}
	var b strings.Builder
	b.WriteString(kind + strconv.Quote(c.Chain) + " " + strconv.FormatUint(c.Seq, 10) + " " + c.Link + " " + c.At.UTC().Format(time.RFC3339Nano))
	sites := make([]string, 0, len(c.Purged))
	for site := range c.Purged {
		sites = append(sites, site)
	}
	slices.Sort(sites)
	for _, site := range sites {
		b.WriteString(" purged " + strconv.Quote(site) + " " + c.Purged[site].UTC().Format(time.RFC3339Nano))
	}
	return []byte(b.String())
}

// CheckpointVerifier checks checkpoint signatures: all that verifying a store needs,
// so that an auditor holding only the published public keys can do it.
type CheckpointVerifier interface {
	VerifyCheckpoint(c *Checkpoint) bool
	// HasKey reports whether the verifier holds the key with id kid: a checkpoint
	// signed by a key it lacks is unverifiable here, which is not the same as forged.
	HasKey(kid string) bool
}

// CheckpointSigner signs checkpoints and verifies them.
type CheckpointSigner interface {
	CheckpointVerifier
	SignCheckpoint(c *Checkpoint) // sets KeyID and Signature
}
