package translog_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mixvoip/consentd/translog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testKey is a fixed key: ed25519 signatures are deterministic, so a checkpoint
// signed with it is the same bytes every time.
var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

const testOrigin = "consent.example.com/log"

// testRoot is the root of a tree of three leaves, as tlog hashes it.
func testRoot(tb testing.TB) tlog.Hash {
	tb.Helper()
	var hashes []tlog.Hash
	read := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, leaf := range []string{"a", "b", "c"} {
		stored, err := tlog.StoredHashes(int64(i), []byte(leaf), read)
		if err != nil {
			tb.Fatal(err)
		}
		hashes = append(hashes, stored...)
	}
	root, err := tlog.TreeHash(3, read)
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

// TestCheckpointGolden: the signed checkpoint is C2SP's text (origin, size, base64
// root) with one note signature by the origin, byte for byte as in testdata.
func TestCheckpointGolden(t *testing.T) {
	s, err := translog.NewSigner(testOrigin, testKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := s.SignTree(3, testRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	signed := cp.Signed
	golden(t, "checkpoint.golden", signed)
	if !strings.HasPrefix(string(signed), testOrigin+"\n3\n") || !strings.Contains(string(signed), "\n\n— "+testOrigin+" ") {
		t.Errorf("not a C2SP checkpoint by %s:\n%s", testOrigin, signed)
	}
}

func TestOpenCheckpoint(t *testing.T) {
	golden, err := os.ReadFile(filepath.Join("testdata", "checkpoint.golden"))
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := translog.VerifierKey(testOrigin, testKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	open := func(signed []byte, vkey string) (*translog.Checkpoint, error) {
		v, err := note.NewVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		key, err := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
		if err != nil {
			t.Fatal(err)
		}
		tv, err := translog.NewVerifier(v.Name(), ed25519.PublicKey(key[1:]))
		if err != nil {
			t.Fatal(err)
		}
		return tv.Open(signed)
	}
	cp, err := open(golden, vkey)
	root := testRoot(t)
	if err != nil || cp.Origin != testOrigin || cp.Size != 3 || cp.Root != root || !bytes.Equal(cp.Signed, golden) {
		t.Fatalf("Open = %+v, %v; want size 3 and the root", cp, err)
	}

	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize))
	otherKey, _ := translog.VerifierKey(testOrigin, other.Public().(ed25519.PublicKey))
	otherOrigin, _ := translog.VerifierKey("another.example/log", testKey.Public().(ed25519.PublicKey))
	tests := []struct {
		name   string
		signed []byte
		vkey   string
	}{
		{"another size", bytes.Replace(golden, []byte("\n3\n"), []byte("\n4\n"), 1), vkey},
		{"another root", bytes.Replace(golden, []byte(root.String()[:4]), []byte("AAAA"), 1), vkey},
		{"another key", golden, otherKey},
		{"another origin", golden, otherOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.signed, golden) && tt.vkey == vkey {
				t.Fatal("the case changes nothing")
			}
			if cp, err := open(tt.signed, tt.vkey); err == nil {
				t.Errorf("Open accepted %+v", cp)
			}
		})
	}
}

func TestNewSignerRefusesBadOrigins(t *testing.T) {
	for _, origin := range []string{"", "two words", "a+b"} {
		if _, err := translog.NewSigner(origin, testKey); err == nil {
			t.Errorf("NewSigner(%q): no error", origin)
		}
	}
}

func TestVerifierKeyRefusesBadOrigins(t *testing.T) {
	for _, origin := range []string{"", "two words", "a+b", "tab\there", "new\nline"} {
		if _, err := translog.VerifierKey(origin, testKey.Public().(ed25519.PublicKey)); err == nil {
			t.Errorf("VerifierKey(%q): no error", origin)
		}
	}
}
