package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	consent "github.com/mixvoip/consentd"
)

// checkpointTimeLayout names archived checkpoints so that names sort by time.
const checkpointTimeLayout = "2006-01-02T150405.000000000Z"

// archiveCheckpoint is `consentd checkpoint --dir DIR`: it keeps the newest signed
// checkpoint of a running consentd in DIR, apart from consentd, after checking its
// signature with the keys consentd publishes. Checkpoints archived this way catch a
// chain rewritten or cut off later (consentd verify --checkpoint), so the command
// also compares the new one with the newest already archived, and fails if the chain
// went back or is another one: evidence that the store was replaced or cut off.
func archiveCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd checkpoint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	dir := fs.String("dir", "", "the archive: one file per checkpoint, checkpoint-<time>-<place>.json")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("consentd checkpoint: --dir DIR is required")
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	verifier, err := c.publishedKeys(ctx)
	if err != nil {
		return err
	}
	data, err := c.getJSON(ctx, "v1/dpo/checkpoint", nil)
	var answer *answerError
	if errors.As(err, &answer) && answer.status == http.StatusNotFound && strings.HasSuffix(answer.msg, noCheckpointYet) {
		// Not a failure: a new store signs its first checkpoint a minute after its
		// first records. Any other 404 is: a --url where the DPO API is not.
		fmt.Fprintf(stdout, "nothing archived: %s\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	cp := new(consent.Checkpoint)
	if err := json.Unmarshal(data, cp); err != nil || cp.Signature == "" {
		return errors.New("consentd answered no checkpoint: is it older than this command?")
	}
	if !verifier.VerifyCheckpoint(cp) {
		return fmt.Errorf("the checkpoint at place %d does not verify with the keys consentd publishes (key %s): nothing archived", cp.Seq, cp.KeyID)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	last, err := lastArchived(*dir)
	if err != nil {
		return err
	}
	name := "checkpoint-" + cp.At.UTC().Format(checkpointTimeLayout) + "-" + strconv.FormatUint(cp.Seq, 10) + ".json"
	write := func(path string) error {
		return writeWhole(path, func(w io.Writer) error { _, err := w.Write(data); return err })
	}
	if problem := wentBack(last, cp); problem != "" {
		// Kept as evidence under a name the archive's newest is never taken from,
		// so that every later run fails too, until someone looks.
		path := filepath.Join(*dir, "rejected-"+name)
		if err := write(path); err != nil {
			return err
		}
		return fmt.Errorf("%s (kept as %s)", problem, path)
	}
	path := filepath.Join(*dir, name)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		fmt.Fprintf(stdout, "%s: already archived, consentd signed no newer checkpoint\n", path)
		return nil
	}
	if err := write(path); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: place %d of chain %s, signed by %s\n", path, cp.Seq, cp.Chain, cp.KeyID)
	return nil
}

// noCheckpointYet ends consentd's 404 answer for a store that signed no checkpoint yet.
const noCheckpointYet = "no checkpoint was signed yet"

// wentBack says how the checkpoint cp contradicts last, the newest one archived: it
// is of another chain, or its place is before last's, or at last's with another
// link. "" if it does not (or there is no last).
func wentBack(last, cp *consent.Checkpoint) string {
	switch {
	case last == nil:
		return ""
	case last.Chain != cp.Chain:
		return fmt.Sprintf("the store's chain is %s, the archive's newest checkpoint is of chain %s: the store was replaced by another (after --new-store or a restore on purpose, start a new archive directory and keep this one)", cp.Chain, last.Chain)
	case cp.Seq < last.Seq:
		return fmt.Sprintf("the chain's head is at place %d, before the archived checkpoint at place %d: the chain was cut off or rewritten (or restored from a backup); run consentd verify --checkpoint with the archive on a backup", cp.Seq, last.Seq)
	case cp.Seq == last.Seq && cp.Link != last.Link:
		return fmt.Sprintf("the chain's link at place %d is not the archived one: the chain was rewritten; run consentd verify --checkpoint with the archive on a backup", cp.Seq)
	}
	return ""
}

// lastArchived returns the newest checkpoint in the archive dir, nil if it has none.
func lastArchived(dir string) (*consent.Checkpoint, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--dir: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "checkpoint-") && strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names)
	return readCheckpoint(filepath.Join(dir, names[len(names)-1]))
}
