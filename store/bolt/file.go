package bolt

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"runtime/debug"
	"syscall"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// ErrDamaged is wrapped by the errors of Open and VerifyFile for a file that bbolt
// cannot make sense of: cut off, overwritten in part, or no bbolt file at all.
var ErrDamaged = errors.New("the file is damaged")

// damaged returns an error wrapping ErrDamaged that says why, and what to do.
func damaged(cause any) error {
	if _, ok := cause.(interface{ Addr() uintptr }); ok {
		// A memory fault: the runtime's words for it ("invalid memory address or nil
		// pointer dereference") would send the reader looking for a bug.
		cause = "a page reaches past the end of the file"
	}
	return fmt.Errorf("%w (%v): restore it from a backup (consentd backup makes them) and keep the damaged file for analysis", ErrDamaged, cause)
}

// guard runs fn, and turns a panic in it into an error wrapping ErrDamaged. bbolt
// panics on a page it cannot make sense of, and reads its memory map of the file
// directly: a page past the end of a cut-off file is a fault (SIGBUS) that kills the
// process, goroutine dump and all, unless the goroutine asked for a panic instead.
// fn must touch the store's pages only in the calling goroutine.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damaged(r)
		}
	}()
	return fn()
}

// checkFile refuses a store file that bbolt would open but consentd must not.
func checkFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // a new store
	case err != nil:
		return err
	case fi.Size() == 0:
		return errors.New("the file is empty, so it holds no store (cut off?): restore the store from a backup (consentd backup makes them), or remove the file to start a new one")
	case fi.Mode().Perm()&0o066 != 0:
		return fmt.Errorf("others than its owner may read or write it (mode %v), and its records hold personal data: run chmod 600 %s", fi.Mode().Perm(), path)
	}
	return nil
}

// view runs fn in a read transaction of the store under guard: a page bbolt cannot
// make sense of, anywhere in the file, gives an error, never a crash.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	return guard(func() error { return s.db.View(fn) })
}

// update runs fn in a write transaction of the store under guard (see view); bbolt
// rolls back a transaction that panics.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	return guard(func() error { return s.db.Update(fn) })
}

// openDB opens the bbolt file at path with options. A file bbolt cannot make sense
// of gives an error wrapping ErrDamaged, never a panic or a crash.
func openDB(path string, options bolt.Options) (*bolt.DB, error) {
	if _, err := os.Stat(path); err == nil {
		// First, with nothing read but the meta pages, that the file holds every page
		// they count: bbolt reads its free list as it opens, and in a file cut off it
		// would read whatever memory follows its map of the file.
		db, err := openBolt(path, bolt.Options{ReadOnly: true, Timeout: options.Timeout})
		if err != nil {
			return nil, err
		}
		err = guard(func() error { return db.View(checkSize) })
		db.Close()
		if err != nil {
			return nil, err
		}
	}
	return openBolt(path, options)
}

// openBolt is bbolt's Open under guard.
func openBolt(path string, options bolt.Options) (*bolt.DB, error) {
	var file *os.File
	options.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &options)
		return err
	})
	var pathErr *fs.PathError
	var errno syscall.Errno
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, ErrDamaged):
		// bbolt panicked before it could close the file: close it here. Its memory
		// map, out of reach, keeps the file open underneath, lock and all: unlock
		// it first.
		if file != nil {
			unlock(file)
			file.Close()
		}
		return nil, err
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("another process has the file open (a consentd serving it?): stop it first (%w)", err)
	case errors.As(err, &pathErr), errors.As(err, &errno):
		return nil, err // the system's trouble, not the file's
	}
	// What is left is bbolt's refusal of the file's contents: no valid meta page
	// (ErrInvalid, ErrChecksum, ErrVersionMismatch), or fewer bytes than two pages.
	return nil, damaged(err)
}

// readPages reads every page of the buckets in tx but skip, so that a page bbolt
// cannot make sense of shows in a goroutine under guard, and not later in the writer
// or a purge, where it would crash the process. It reads each key and value to its
// last byte: a value whose length runs past the end of the file faults here, not
// later; a checksum, so that every byte is read.
func readPages(tx *bolt.Tx, skip []byte) error {
	var sum uint32
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		if skip != nil && string(name) == string(skip) {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			sum = crc32.Update(crc32.Update(sum, crc32.IEEETable, k), crc32.IEEETable, v)
			return nil
		})
	})
}

// checkPages runs bbolt's own check of tx's pages: that each is in one place of the
// tree or free, never both, which no walk of the keys can tell. Its goroutine is not
// under guard: call it only once readPages went through every page.
func checkPages(tx *bolt.Tx) error {
	var first error
	for err := range tx.Check() { // drained: the check's goroutine waits on each send
		if first == nil {
			first = err
		}
	}
	if first != nil {
		return damaged(first)
	}
	return nil
}

// checkSize reports a file shorter than the pages its meta page counts: cut off, or
// copied while it grew.
func checkSize(tx *bolt.Tx) error {
	fi, err := os.Stat(tx.DB().Path())
	if err != nil {
		return err
	}
	if fi.Size() < tx.Size() {
		return damaged(fmt.Sprintf("%d bytes, but its pages take %d: it was cut off", fi.Size(), tx.Size()))
	}
	return nil
}
