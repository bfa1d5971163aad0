// Package durable makes a file's name survive a crash: the name goes into its
// directory's entries, which are synced like the file's bytes.
package durable

import (
	"os"
	"path/filepath"
)

// SyncDir makes the entries of dir durable: a file renamed or linked into dir is
// there after a crash only once its directory is synced.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Link gives the file tmp, synced already, the name path too, and makes the name
// durable. Unlike a rename, it fails if path exists meanwhile: nothing there is
// ever replaced.
func Link(tmp, path string) error {
	if err := os.Link(tmp, path); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}
