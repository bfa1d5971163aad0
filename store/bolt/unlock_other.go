//go:build !unix

package bolt

import "os"

// unlock leaves bbolt's lock on f to f's closing: outside unix, bbolt does not lock
// with flock.
func unlock(*os.File) {}
