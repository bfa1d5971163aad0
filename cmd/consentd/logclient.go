package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
)

// What the commands read of consentd's public log (GET /v1/log/...) and of the
// checkpoints kept apart from it.

// maxLogAnswer bounds what the commands read of an answer about the log: a
// checkpoint, the keys, a consistency proof are a few KiB at most.
const maxLogAnswer = 1 << 20

// errNoCheckpoint is a log that has signed no checkpoint yet: its tree is empty.
var errNoCheckpoint = errors.New("the log has no checkpoint yet")

// noCheckpointYet ends consentd's 404 answer for a log without a checkpoint.
const noCheckpointYet = "no checkpoint was signed yet"

// getSmall returns the answer at path, which must be at most maxLogAnswer bytes.
func (c *dpoClient) getSmall(ctx context.Context, path string, query url.Values) ([]byte, error) {
	resp, err := c.get(ctx, path, query)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxLogAnswer+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the answer of consentd at %s: %w", c.base.JoinPath(path), err)
	case len(data) > maxLogAnswer:
		return nil, fmt.Errorf("consentd at %s answered more than %d bytes: not what it serves there", c.base.JoinPath(path), maxLogAnswer)
	}
	return data, nil
}

// checkpoint returns the log's newest checkpoint as GET /v1/log/checkpoint serves it,
// the signed note, not yet opened; errNoCheckpoint if the log has none.
func (c *dpoClient) checkpoint(ctx context.Context) ([]byte, error) {
	data, err := c.getSmall(ctx, "v1/log/checkpoint", nil)
	var answer *answerError
	// Any other 404 is a failure: a --url where consentd's log is not.
	if errors.As(err, &answer) && answer.status == http.StatusNotFound && strings.HasSuffix(answer.msg, noCheckpointYet) {
		return nil, errNoCheckpoint
	}
	return data, err
}

// consistency returns the proof that the log's tree of size second extends the one
// of size first, as GET /v1/log/consistency serves it.
func (c *dpoClient) consistency(ctx context.Context, first, second int64) (tlog.TreeProof, error) {
	if first == 0 || first == second {
		return tlog.TreeProof{}, nil // nothing to prove, and the server takes no size 0
	}
	q := url.Values{"first": {strconv.FormatInt(first, 10)}, "second": {strconv.FormatInt(second, 10)}}
	data, err := c.getSmall(ctx, "v1/log/consistency", q)
	if err != nil {
		return nil, err
	}
	var answer struct {
		First  int64    `json:"first"`
		Second int64    `json:"second"`
		Proof  []string `json:"proof"`
	}
	if err := json.Unmarshal(data, &answer); err != nil || answer.First != first || answer.Second != second {
		return nil, fmt.Errorf("consentd at %s answered no consistency proof from size %d to %d", c.base, first, second)
	}
	p := make(tlog.TreeProof, len(answer.Proof))
	for i, h := range answer.Proof {
		raw, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("consentd at %s answered a malformed consistency proof from size %d to %d", c.base, first, second)
		}
		p[i] = tlog.Hash(raw)
	}
	return p, nil
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
// them.
func readPublicKeysFile(path string) (*proof.PublicKeys, error) {
	data, err := readFile(path, maxLogAnswer)
	if err != nil {
		return nil, err
	}
	keys, err := proof.ReadPublicKeys(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

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
