//go:build unix

package bolt

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
)

// TestGuardFault: reading a memory map past the end of its file, as bbolt does in a
// file cut off, is a fault (SIGBUS) that guard turns into an error, where it would
// otherwise kill the process.
func TestGuardFault(t *testing.T) {
	page := os.Getpagesize()
	f, err := os.Create(filepath.Join(t.TempDir(), "short"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(page)); err != nil {
		t.Fatal(err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 2*page, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)

	var read byte
	err = guard(func() error {
		read = m[page] // the second page: past the end of the file
		return nil
	})
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "a page reaches past the end of the file") {
		t.Errorf("guard = %v (read %d); want ErrDamaged for a page past the end of the file", err, read)
	}
	if debug.SetPanicOnFault(false) {
		t.Error("guard left the goroutine with SetPanicOnFault on")
	}
	if err := guard(func() error { return errors.New("plain") }); err == nil || errors.Is(err, ErrDamaged) {
		t.Errorf("guard of an error = %v; want the error as it is", err)
	}
}
