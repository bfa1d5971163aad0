package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/client"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
)

// What the commands read of the checkpoints and keys kept apart from consentd.

// maxLogAnswer bounds the files about the log the commands read: a checkpoint, the
// keys, are a few KiB at most.
const maxLogAnswer = 1 << 20

// newestCheckpoint returns the newest checkpoint of the log of c, once it verifies
// with verifier; client.ErrNoCheckpoint if the log has none yet.
func newestCheckpoint(ctx context.Context, c *client.Client, verifier *translog.Verifier) (*consent.Checkpoint, error) {
	signed, signedAt, err := c.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := verifier.Open(signed)
	if err != nil {
		return nil, fmt.Errorf("the checkpoint consentd at %s serves does not verify with the keys it publishes: %s", c.URL(), strings.TrimPrefix(err.Error(), "translog: "))
	}
	cp.SignedAt = signedAt
	return cp, nil
}

// parseCheckpoint reads a signed checkpoint note without checking its signature:
// its origin, size and root, for a file that a verifier opens later.
func parseCheckpoint(signed []byte) (*consent.Checkpoint, error) {
	_, err := note.Open(signed, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, errors.New("not a signed note")
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal([]byte(unverified.Note.Text)); err != nil || cp.Size > 1<<62 || len(cp.Hash) != tlog.HashSize {
		return nil, errors.New("not a checkpoint (origin, size and root hash, signed)")
	}
	return &consent.Checkpoint{Origin: cp.Origin, Size: int64(cp.Size), Root: [32]byte(cp.Hash), Signed: signed}, nil
}

// readCheckpointFile reads a file holding a signed checkpoint, as GET
// /v1/log/checkpoint serves it; its signature is not checked yet.
func readCheckpointFile(path string) (*consent.Checkpoint, error) {
	data, err := readFile(path, maxLogAnswer)
	if err != nil {
		return nil, err
	}
	cp, err := parseCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: want a checkpoint as GET /v1/log/checkpoint serves it", path, err)
	}
	return cp, nil
}

// readPublicKeysFile reads the keys in the file at path, as GET /v1/keys serves
// them, or those a proof downloaded from the console holds (api.ProofFile).
func readPublicKeysFile(path string) (*proof.PublicKeys, error) {
	data, err := readFile(path, maxProofFile)
	if err != nil {
		return nil, err
	}
	var file struct {
		PublicKeys json.RawMessage `json:"public_keys"`
	}
	if json.Unmarshal(data, &file) == nil && file.PublicKeys != nil {
		data = file.PublicKeys
	}
	keys, err := proof.ReadPublicKeys(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// maxProofFile bounds a file of receipts or of keys: a visitor's download, or a
// proof from the console, of a few records each.
const maxProofFile = 64 << 20

// readFile reads a file of at most max bytes: a file that should be small and is
// not is refused, not read whole.
func readFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes, not what it should be", path, max)
	}
	return data, nil
}
