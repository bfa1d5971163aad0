package bolt

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Backup returns a consistent copy of the store, taken while appends go on, as an
// open file positioned at its start; the caller reads it and closes it. The copy is a
// store file of its own, which `consentd verify` checks and `consentd serve --db`
// opens as it is.
//
// It is written in one read transaction to a file beside the store, on the same
// disk: a read transaction held while a remote client downloads would keep the file
// from being remapped to grow, stalling appends, and hold up shutdown. The file is
// removed from its directory at once, so nothing is left behind however the caller
// ends; it holds personal data, so it is readable by its owner only.
func (s *Store) Backup(ctx context.Context) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(s.db.Path()), ".consent-backup-*")
	if err != nil {
		return nil, fmt.Errorf("bolt: backup: %w", err)
	}
	os.Remove(f.Name())
	_, err = s.WriteBackup(ctx, f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: backup: %w", err)
	}
	return f, nil
}

// WriteBackup writes a consistent copy of the store to w, in one read transaction,
// and returns its size. Appends go on meanwhile, but the file cannot grow until it
// returns: w should be a local file, not a slow client (see Backup).
func (s *Store) WriteBackup(ctx context.Context, w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) (err error) {
		n, err = tx.WriteTo(ctxWriter{ctx, w})
		return err
	})
	if err != nil {
		return n, fmt.Errorf("bolt: backup: %w", err)
	}
	return n, nil
}

// ctxWriter stops a copy once its context is done.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (cw ctxWriter) Write(p []byte) (int, error) {
	if err := cw.ctx.Err(); err != nil {
		return 0, err
	}
	return cw.w.Write(p)
}
