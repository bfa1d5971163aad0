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
	err = s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(ctxWriter{ctx, f})
		return err
	})
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("bolt: backup: %w", err)
	}
	return f, nil
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
