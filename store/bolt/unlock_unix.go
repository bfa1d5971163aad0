//go:build unix

package bolt

import (
	"os"
	"syscall"
)

// unlock releases the lock bbolt took on f, as bbolt's own Close does.
func unlock(f *os.File) { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
