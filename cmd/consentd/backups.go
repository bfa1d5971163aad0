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
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/translog"
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
	return d.list(backupSuffix)
}

// list returns the names of the copies in the directory whose names end in suffix,
// oldest first, and the time the newest was taken.
func (d backupDir) list(suffix string) (names []string, newest time.Time, err error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("backup directory: %w", err)
	}
	for _, e := range entries {
		stamp, ok := strings.CutPrefix(e.Name(), backupPrefix)
		stamp, ok2 := strings.CutSuffix(stamp, suffix)
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

// save writes a copy taken at t with write and checks it with check before it takes
// its name, then removes all but the newest d.keep copies. It returns the copy's path
// and size. A copy that fails its check is kept as consent-<time>.db.unverified
// (an *unverifiedError), of which the newest d.keep stay too; no good copy is
// removed for it.
func (d backupDir) save(ctx context.Context, t time.Time, write func(io.Writer) (int64, error), check func(path string) error) (path string, size int64, err error) {
	if err := os.MkdirAll(d.path, 0o700); err != nil {
		return "", 0, fmt.Errorf("backup directory: %w", err)
	}
	path = d.newCopy(t)
	err = writeChecked(ctx, path, func(w io.Writer) (err error) {
		size, err = write(w)
		return err
	}, check)
	var unverified *unverifiedError
	switch {
	case errors.As(err, &unverified):
		return unverified.path, size, errors.Join(err, d.prune(backupSuffix+unverifiedSuffix))
	case err != nil:
		return "", size, fmt.Errorf("backup of %d bytes: %w", size, err)
	}
	return path, size, d.prune(backupSuffix)
}

// prune removes the oldest copies whose names end in suffix beyond d.keep.
func (d backupDir) prune(suffix string) error {
	names, _, err := d.list(suffix)
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
// again after backupRetry (or m.BackupEvery if shorter); one that did not verify,
// only after m.BackupEvery, as the next will likely not verify either and each
// costs a copy of the store.
func (m *Main) backups(ctx context.Context, store *bolt.Store, keys *proof.Keyring) {
	d := backupDir{path: m.BackupDir, keep: m.BackupKeep}
	if names, newest, err := d.copies(); err == nil && len(names) > 0 {
		if fi, err := os.Stat(filepath.Join(d.path, names[len(names)-1])); err == nil {
			m.metrics.BackupFound(newest, fi.Size())
		}
	}
	var failed time.Time
	retry := min(backupRetry, m.BackupEvery)
	for {
		_, newest, err := d.copies()
		if err != nil {
			m.logger.Error("cannot read the backup directory; trying again later", "err", err)
			failed = time.Now()
		}
		if now := time.Now(); newest.After(now) {
			// A clock that was ahead, or a copy from elsewhere, must not stop backups.
			m.logger.Warn("the newest backup is dated in the future; taking the next one as if it were taken now", "taken", newest)
			newest = now
		}
		timer := time.NewTimer(time.Until(nextBackup(newest, failed, m.BackupEvery, retry)))
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
			retry = min(backupRetry, m.BackupEvery)
			if errors.As(err, new(*unverifiedError)) {
				retry = m.BackupEvery
			}
		}
	}
}

// nextBackup returns when to take the next backup: every after the newest copy, or
// retry after the last failure if that is later.
func nextBackup(newest, failed time.Time, every, retry time.Duration) time.Time {
	next := newest.Add(every)
	if r := failed.Add(retry); r.After(next) {
		return r
	}
	return next
}

// backup takes one copy of store into d, checks its log with keys (those loaded
// now: a key added since the start signs too), and reports the outcome to the log,
// the metrics and the tests.
func (m *Main) backup(ctx context.Context, d backupDir, store *bolt.Store, keys *proof.Keyring) error {
	start := time.Now()
	write := func(w io.Writer) (int64, error) { return store.WriteBackup(ctx, w) }
	path, size, err := d.save(ctx, start, write, func(path string) error {
		verifier, err := keys.LogVerifier(store.Origin())
		if err == nil {
			_, err = verifyCopy(ctx, path, verifier)
		}
		return err
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

// verifyCopy checks the log of the store copy at path with verifier, of the log
// the copy must hold. A copy that verifies not, or not with these keys, gives its
// verification and an error wrapping errBroken or errMissingKey with the problem
// found.
func verifyCopy(ctx context.Context, path string, verifier *translog.Verifier) (*consent.Verification, error) {
	v, err := bolt.VerifyFile(ctx, path, verifier)
	switch {
	case err != nil:
		return nil, fmt.Errorf("the copy does not open as a store (cut short?): %w", err)
	case !v.OK && !onlyKeyMissing(v):
		return v, fmt.Errorf("%w: %s", errBroken, v.Problem)
	case !v.OK:
		return v, fmt.Errorf("%w: %s", errMissingKey, v.Problem)
	}
	return v, nil
}
