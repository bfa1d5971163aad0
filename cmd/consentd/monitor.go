package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/client"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
)

// A monitor's directory: the keys of the log it follows, and the checkpoints it
// kept, named by their tree's size so that names sort by it.
const (
	monitorKeys        = "keys.json"
	keptPrefix         = "checkpoint-"
	rejectedPrefix     = "rejected-checkpoint-"
	keptSizeLayout     = "%012d"
	rejectedTimeLayout = "20060102T150405Z"
)

// errSplitView is returned when the log no longer extends the newest checkpoint
// kept: it was cut off or rewritten, or shows another view to someone else.
var errSplitView = errors.New("the log does not extend the checkpoint kept")

// monitor is `consentd monitor --url URL --dir DIR`: it follows consentd's log from
// outside. Each run fetches the newest checkpoint (GET /v1/log/checkpoint), opens
// it with the published keys, proves with a consistency proof (GET
// /v1/log/consistency) that its tree extends the newest checkpoint kept in DIR, and
// keeps it. A checkpoint that does not extend it is evidence that the log was cut
// off, rewritten or forked: it is kept aside, and the run, and every later one,
// fails. `consentd verify --checkpoint` checks a store against the kept files.
func monitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd monitor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", envOr("CONSENTD_URL", "http://localhost:8080"), "the consentd whose log to follow ($CONSENTD_URL)")
	dir := fs.String("dir", "", "where to keep the log's keys ("+monitorKeys+") and its checkpoints ("+keptPrefix+"<size>)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("consentd monitor: --dir DIR is required: where the checkpoints are kept, apart from consentd")
	}
	c, err := newClient("--url", *base, "")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	m := &monitorDir{path: *dir}
	published, _, err := c.Keys(ctx)
	if err != nil {
		return err
	}
	_, err = os.Stat(filepath.Join(*dir, monitorKeys))
	first := errors.Is(err, iofs.ErrNotExist)
	verifier, added, err := m.keys(published)
	if err != nil {
		return err
	}
	switch {
	case first:
		fmt.Fprintf(stdout, "%s: the keys of the log %s kept (%s)\n", filepath.Join(*dir, monitorKeys), verifier.Origin(), strings.Join(added, ", "))
	case len(added) > 0:
		fmt.Fprintf(stdout, "%s: the log %s has new keys, kept: %s\n", filepath.Join(*dir, monitorKeys), verifier.Origin(), strings.Join(added, ", "))
	}
	kept, err := m.newest(verifier)
	if err != nil {
		return err
	}
	cp, err := newestCheckpoint(ctx, c, verifier)
	if errors.Is(err, client.ErrNoCheckpoint) {
		fmt.Fprintf(stdout, "nothing kept: the log %s at %s has no checkpoint yet (no record in it)\n", verifier.Origin(), c.URL())
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w; nothing kept", err)
	}
	if kept == nil {
		path, err := m.keep(cp)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: the first checkpoint of the log %s kept, size %d\n", path, cp.Origin, cp.Size)
		return nil
	}
	if kept.Size == cp.Size && kept.Root == cp.Root {
		fmt.Fprintf(stdout, "the log %s is unchanged at size %d: nothing new kept\n", cp.Origin, cp.Size)
		return nil
	}
	var p tlog.TreeProof
	if cp.Size > kept.Size {
		if p, err = c.Consistency(ctx, kept.Size, cp.Size); err != nil {
			return err
		}
	}
	if err := translog.VerifyConsistency(p, kept, cp); err != nil {
		path, keepErr := m.reject(cp, time.Now())
		if keepErr != nil {
			return errors.Join(fmt.Errorf("%w: %v", errSplitView, err), keepErr)
		}
		return fmt.Errorf("%w: the log %s at %s, at size %d, does not extend the checkpoint of size %d kept in %s: it was cut off or rewritten, or gives others another view (%s); kept as %s",
			errSplitView, cp.Origin, c.URL(), cp.Size, kept.Size, *dir, strings.TrimPrefix(err.Error(), "translog: "), path)
	}
	if err := cosign(ctx, kept, cp, p); err != nil {
		return err
	}
	path, err := m.keep(cp)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: the log %s grew from size %d to %d, proved consistent (%s)\n", path, cp.Origin, kept.Size, cp.Size, count(len(p), "hash"))
	return nil
}

// cosign is where a checkpoint proved to extend the one kept before would go to a
// witness (C2SP tlog-witness: add-checkpoint with old's size and the proof p), whose
// cosignature visitors could then ask for. None is asked yet.
func cosign(ctx context.Context, old, cp *consent.Checkpoint, p tlog.TreeProof) error { return nil }

// monitorDir is the directory of consentd monitor.
type monitorDir struct{ path string }

// keys returns the verifier of the log with the keys kept in the directory and
// those published, and the ids of the published keys it had not kept yet. The
// first run keeps the published keys; a later one adds the new ones (keys rotate)
// and never drops one, but refuses keys of another log.
func (m *monitorDir) keys(published *proof.PublicKeys) (*translog.Verifier, []string, error) {
	path := filepath.Join(m.path, monitorKeys)
	kept, err := readPublicKeysFile(path)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		kept = &proof.PublicKeys{Origin: published.Origin}
	case err != nil:
		return nil, nil, err
	case kept.Origin != published.Origin:
		return nil, nil, fmt.Errorf("consentd now publishes the keys of the log %q, but %s follows the log %q: the log was replaced (after a restore, a new origin on purpose: follow it in a new directory, and keep this one)", published.Origin, m.path, kept.Origin)
	}
	var added []string
	for _, k := range published.Keys {
		if !slices.ContainsFunc(kept.Keys, func(old proof.PublicKey) bool { return old.ID == k.ID }) {
			kept.Keys = append(kept.Keys, k)
			added = append(added, k.ID)
		}
	}
	verifier, err := kept.Verifier()
	if err != nil {
		return nil, nil, fmt.Errorf("the keys consentd publishes: %w", err)
	}
	if len(added) > 0 {
		data, err := json.MarshalIndent(kept, "", "  ")
		if err == nil {
			err = writeWhole(path, func(w io.Writer) error { _, err := w.Write(append(data, '\n')); return err })
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return verifier, added, nil
}

// newest returns the newest checkpoint kept, opened with verifier; nil if none is.
func (m *monitorDir) newest(verifier *translog.Verifier) (*consent.Checkpoint, error) {
	entries, err := os.ReadDir(m.path)
	if err != nil {
		return nil, fmt.Errorf("--dir: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), keptPrefix) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	slices.Sort(names) // sizes of 12 digits: by name is by size
	path := filepath.Join(m.path, names[len(names)-1])
	cp, err := readCheckpointFile(path)
	if err == nil {
		cp, err = verifier.Open(cp.Signed)
	}
	if err != nil {
		return nil, fmt.Errorf("the newest checkpoint kept, %s, does not open with the keys kept: %s", path, strings.TrimPrefix(err.Error(), "translog: "))
	}
	return cp, nil
}

// keep writes cp into the directory, whole or not at all, and returns its path.
func (m *monitorDir) keep(cp *consent.Checkpoint) (string, error) {
	path := filepath.Join(m.path, keptPrefix+fmt.Sprintf(keptSizeLayout, cp.Size))
	return path, writeWhole(path, func(w io.Writer) error { _, err := w.Write(cp.Signed); return err })
}

// reject keeps cp aside, as evidence, under a name that newest never takes; once,
// however many runs find it.
func (m *monitorDir) reject(cp *consent.Checkpoint, now time.Time) (string, error) {
	prefix := rejectedPrefix + fmt.Sprintf(keptSizeLayout, cp.Size) + "-"
	entries, err := os.ReadDir(m.path)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			path := filepath.Join(m.path, e.Name())
			if data, err := os.ReadFile(path); err == nil && bytes.Equal(data, cp.Signed) {
				return path, nil
			}
		}
	}
	path := filepath.Join(m.path, prefix+now.UTC().Format(rejectedTimeLayout))
	return path, writeWhole(path, func(w io.Writer) error { _, err := w.Write(cp.Signed); return err })
}
