package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/bolt"
)

// A backup directory holds verified copies of the store named by the UTC time they
// were taken, so that names sort by age and tell it without a file system's times,
// which a copy to another machine may change.
const (
	backupPrefix     = "consent-"
	backupSuffix     = ".db"
	backupTimeLayout = "2006-01-02T150405Z"
	// unverifiedSuffix marks a copy that did not verify: kept for analysis, never
	// counted as a backup nor pruned, and not named like one that can be restored.
	unverifiedSuffix = ".unverified"
)

// backupDir is a directory of store copies of which the newest keep are kept.
type backupDir struct {
	path string
	keep int
}

// newCopy returns the path of a copy taken at t.
func (d backupDir) newCopy(t time.Time) string {
	return filepath.Join(d.path, backupPrefix+t.UTC().Format(backupTimeLayout)+backupSuffix)
}

// copies returns the names of the verified copies in the directory, oldest first, and
// the time the newest was taken (zero if there is none).
func (d backupDir) copies() (names []string, newest time.Time, err error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("backup directory: %w", err)
	}
	for _, e := range entries {
		stamp, ok := strings.CutPrefix(e.Name(), backupPrefix)
		stamp, ok2 := strings.CutSuffix(stamp, backupSuffix)
		t, err := time.Parse(backupTimeLayout, stamp)
		if !ok || !ok2 || err != nil || !e.Type().IsRegular() {
			continue
		}
		names = append(names, e.Name())
		newest = t
	}
	slices.Sort(names) // ReadDir sorts too; the times in the names are what matter
	return names, newest, nil
}

// save writes a copy taken at t with write, checks it with check, and if it passes,
// removes all but the newest d.keep copies. It returns the copy's path and size. A
// copy that fails its check is renamed with the suffix .unverified and nothing is
// removed: the copies before it are then the last good ones.
func (d backupDir) save(t time.Time, write func(io.Writer) (int64, error), check func(path string) error) (path string, size int64, err error) {
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return "", 0, fmt.Errorf("backup directory: %w", err)
	}
	path = d.newCopy(t)
	err = writeWhole(path, func(w io.Writer) (err error) {
		size, err = write(w)
		return err
	})
	if err != nil {
		return "", size, fmt.Errorf("backup cut short after %d bytes: %w", size, err)
	}
	if err := check(path); err != nil {
		if renameErr := os.Rename(path, path+unverifiedSuffix); renameErr == nil {
			path += unverifiedSuffix
		}
		return path, size, err
	}
	return path, size, d.prune()
}

// prune removes the oldest verified copies beyond d.keep.
func (d backupDir) prune() error {
	names, _, err := d.copies()
	if err != nil {
		return err
	}
	for len(names) > d.keep {
		if err := os.Remove(filepath.Join(d.path, names[0])); err != nil {
			return fmt.Errorf("prune backups: %w", err)
		}
		names = names[1:]
	}
	return nil
}

// backupRetry is the longest wait before a failed scheduled backup is tried again.
const backupRetry = 15 * time.Minute

// backups takes a copy of the store into m.BackupDir whenever the newest copy there
// is m.BackupEvery old, at once if there is none, until ctx is done: a restart
// neither skips a backup nor takes one too many. A failed one is logged and tried
// again after backupRetry (or m.BackupEvery if shorter).
func (m *Main) backups(ctx context.Context, store *bolt.Store, keys consent.CheckpointVerifier) {
	d := backupDir{path: m.BackupDir, keep: m.BackupKeep}
	if names, newest, err := d.copies(); err == nil && len(names) > 0 {
		if fi, err := os.Stat(filepath.Join(d.path, names[len(names)-1])); err == nil {
			m.metrics.BackupFound(newest, fi.Size())
		}
	}
	var failed time.Time
	for {
		_, newest, err := d.copies()
		if err != nil {
			m.logger.Error("cannot read the backup directory; trying again later", "err", err)
			failed = time.Now()
		}
		timer := time.NewTimer(time.Until(nextBackup(newest, failed, m.BackupEvery)))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		if err := m.backup(ctx, d, store, keys); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed = time.Now()
		}
	}
}

// nextBackup returns when to take the next backup, every after the newest copy, or
// later when the last attempt failed.
func nextBackup(newest, failed time.Time, every time.Duration) time.Time {
	next := newest.Add(every)
	if retry := failed.Add(min(backupRetry, every)); retry.After(next) {
		return retry
	}
	return next
}

// backup takes one copy of store into d, checks its hash chain with keys, and
// reports the outcome to the log, the metrics and the tests.
func (m *Main) backup(ctx context.Context, d backupDir, store *bolt.Store, keys consent.CheckpointVerifier) error {
	start := time.Now()
	write := func(w io.Writer) (int64, error) { return store.WriteBackup(ctx, w) }
	path, size, err := d.save(start, write, func(path string) error {
		v, err := bolt.VerifyFile(ctx, path, keys)
		switch {
		case err != nil:
			return err
		case !v.OK || v.MissingKey != "":
			return fmt.Errorf("the copy does not verify: %s", v.Problem)
		}
		return nil
	})
	took := time.Since(start)
	if err != nil && ctx.Err() == nil {
		m.logger.Error("backup failed; the copies before it are the last good ones", "err", err, "file", path)
	} else if err == nil {
		m.logger.Info("backup written and verified", "file", path, "bytes", size, "took", took.Round(time.Millisecond))
	}
	m.metrics.BackupDone(start, took, size, err)
	if m.backedUp != nil {
		m.backedUp(path, err)
	}
	return err
}
