package bolt

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/storetest"
)

// Damages are what a disk, a crash or an unlucky copy does to a store file. Each
// returns the file's new bytes, from the intact ones and the size of the pages in
// use.
var damages = []struct {
	name   string
	damage func(tb testing.TB, data []byte, used int) []byte
}{
	{"cut to 100 bytes", func(_ testing.TB, data []byte, _ int) []byte { return data[:100] }},
	{"cut to one page", func(_ testing.TB, data []byte, _ int) []byte { return data[:os.Getpagesize()] }},
	{"cut to half", func(tb testing.TB, data []byte, used int) []byte {
		if len(data)/2 >= used {
			tb.Fatalf("fixture: half the file (%d bytes) holds every page in use (%d bytes)", len(data)/2, used)
		}
		return data[:len(data)/2]
	}},
	{"cut short of its last pages", func(_ testing.TB, data []byte, used int) []byte {
		// The pages bbolt wrote last, its free list among them, are past the end of
		// the file, but not of its memory map, which is larger: reading them is a
		// fault (SIGBUS), not a panic.
		return data[:used-2*os.Getpagesize()]
	}},
	{"random bytes", func(_ testing.TB, data []byte, _ int) []byte {
		out := make([]byte, len(data))
		random(out)
		return out
	}},
	{"pages in the middle overwritten", func(_ testing.TB, data []byte, used int) []byte {
		page := os.Getpagesize()
		from, to := used/3/page*page, 2*used/3/page*page
		random(data[from:to])
		return data
	}},
}

// random fills b with the same bytes in every run: a test that fails, fails again.
func random(b []byte) {
	r := rand.New(rand.NewPCG(8, 13))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// MustDamagedFile returns the path of a store file of n records, damaged by damage.
func MustDamagedFile(tb testing.TB, n int, damage func(tb testing.TB, data []byte, used int) []byte) string {
	tb.Helper()
	path, _ := MustLoggedFile(tb, n)
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	var used int
	err = db.View(func(tx *bolt.Tx) error { used = int(tx.Size()); return nil })
	db.Close()
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, damage(tb, data, used), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// TestOpenDamaged: a damaged file gives an error that says so and what to do, never
// a panic or a crash; the file is left as it was, for analysis, and unlocked.
func TestOpenDamaged(t *testing.T) {
	for _, tt := range damages {
		t.Run(tt.name, func(t *testing.T) {
			path := MustDamagedFile(t, 200, tt.damage)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Twice: a file left locked would make the second a lock timeout.
			for range 2 {
				s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
				if err == nil {
					s.Close()
					t.Fatal("Open of a damaged file: no error")
				}
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "restore it from a backup") {
					t.Fatalf("Open = %v; want ErrDamaged, the path and what to do", err)
				}
			}
			if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, before) {
				t.Errorf("Open changed the damaged file (%v)", err)
			}
			if debug.SetPanicOnFault(false) {
				t.Error("Open left the goroutine with SetPanicOnFault on")
			}
		})
	}
}

// TestVerifyFileDamaged: verification of a damaged file is an error that says so,
// not a report of a broken chain, and never a panic or a crash.
func TestVerifyFileDamaged(t *testing.T) {
	for _, tt := range damages {
		t.Run(tt.name, func(t *testing.T) {
			path := MustDamagedFile(t, 200, tt.damage)
			v, err := VerifyFile(context.Background(), path, testVerifier(t))
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "restore it from a backup") {
				t.Fatalf("VerifyFile = %+v, %v; want ErrDamaged, the path and what to do", v, err)
			}
			if debug.SetPanicOnFault(false) {
				t.Error("VerifyFile left the goroutine with SetPanicOnFault on")
			}
		})
	}
}

// TestOpenEmptyFile: bbolt makes an empty file a new store; a store file that was
// cut to nothing must not pass for one.
func TestOpenEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consent.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
	if err == nil {
		s.Close()
		t.Fatal("Open of an empty file: no error")
	}
	if !strings.Contains(err.Error(), "the file is empty") || !strings.Contains(err.Error(), "restore the store from a backup") {
		t.Errorf("Open = %v; want a refusal that says the file is empty and what to do", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Errorf("the empty file after Open: %v, %v; want it left empty", fi, err)
	}
}

// TestVerifyFileNotAStore: a missing or empty file is not a store that verifies with
// nothing in it.
func TestVerifyFileNotAStore(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{empty, filepath.Join(dir, "missing.db")} {
		v, err := VerifyFile(context.Background(), path, testVerifier(t))
		if err == nil || !strings.Contains(err.Error(), path+": not a consentd store") {
			t.Errorf("VerifyFile(%s) = %+v, %v; want not a consentd store", filepath.Base(path), v, err)
		}
	}
	if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
		t.Errorf("the empty file after VerifyFile: %v, %v; want it left empty", fi, err)
	}
}

// TestOpenFileMode: records hold personal data; a store file that others may read or
// write is refused, with the command that fixes it.
func TestOpenFileMode(t *testing.T) {
	path, _ := MustLoggedFile(t, 2)
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o700, true},
		{0o640, false},
		{0o620, false},
		{0o604, false},
		{0o602, false},
		{0o666, false},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
			if err == nil {
				s.Close()
			}
			if tt.ok != (err == nil) {
				t.Fatalf("Open with mode %v: %v; want ok %t", tt.mode, err, tt.ok)
			}
			if !tt.ok && !strings.Contains(err.Error(), "run chmod 600 "+path) {
				t.Errorf("Open with mode %v: %v; want it to say chmod 600", tt.mode, err)
			}
		})
	}
}

// TestDamagedPageFoundWhenRead: a store opens without reading its records, so a
// damaged page among them is found where it is read: the lookup, the listing and
// the verification that reach it say the file is damaged and what to do, and none
// panics or crashes.
func TestDamagedPageFoundWhenRead(t *testing.T) {
	path, ids := MustLoggedFile(t, 1000)
	target := ids[len(ids)/2]
	var stored []byte
	MustTamper(t, path, func(tx *bolt.Tx) error {
		stored = append(recordKey(target), tx.Bucket(bucketRecords).Get(recordKey(target))[:offsetIndex]...)
		return nil
	})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, stored)
	if at < 0 {
		t.Fatal("fixture: the record's key and header are not in the file")
	}
	page := os.Getpagesize()
	random(data[at/page*page : at/page*page+page])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	s := MustOpen(t, path)
	ctx := context.Background()
	visitor := uuid.UUID(stored[len(recordKey(target))+1:]).String()
	reads := map[string]func() error{
		"the lookup of the visitor's records": func() error {
			_, err := s.RecordsByConsent(ctx, visitor)
			return err
		},
		"the listing of every record": func() error {
			for after := ""; ; {
				page, err := s.Records(ctx, consent.Filter{}, after, 100)
				if err != nil || len(page) < 100 {
					return err
				}
				after = page[len(page)-1].ID
			}
		},
		"the verification": func() error {
			_, err := s.Verify(ctx)
			return err
		},
	}
	for name, read := range reads {
		err := read()
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "restore it from a backup") {
			t.Errorf("%s: %v; want ErrDamaged and what to do", name, err)
		}
	}
	if debug.SetPanicOnFault(false) {
		t.Error("a read left the goroutine with SetPanicOnFault on")
	}
}
