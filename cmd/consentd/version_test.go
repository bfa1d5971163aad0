package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersion: `consentd --version` is understood as `consentd version`, and a plain
// `go build` names the commit it was built from rather than "dev".
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-v"} {
		out, _, err := runConsentd(arg)
		if err != nil || !strings.HasPrefix(out, "consentd ") {
			t.Errorf("consentd %s: %q, %v", arg, out, err)
		}
	}

	// -buildvcs=true: a GOFLAGS of the machine's (-buildvcs=false) must not decide
	// what a user gets. Whether go build could stamp a revision depends on the
	// checkout (not in a git worktree, say): the binary must say the one go
	// version -m finds in it, and "dev" without one.
	bin := filepath.Join(t.TempDir(), "consentd")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "consentd dev"
	if _, rest, ok := strings.Cut(string(info), "vcs.revision="); ok && len(rest) >= 12 {
		want = rest[:12]
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("a plain go build says %q, want it to name %q", out, want)
	}
}

// TestMakeRunIsLocal: `make run` serves the demo pages, which accept consents from
// the server's own origin, on loopback unless told otherwise: never on every
// interface of a machine by default.
func TestMakeRunIsLocal(t *testing.T) {
	makefile := MustRead(t, "../../Makefile")
	if !strings.Contains(makefile, "\nADDR     ?= 127.0.0.1:8080\n") || !strings.Contains(makefile, "serve --demo --addr $(ADDR)") {
		t.Errorf("make run does not default to 127.0.0.1:8080")
	}
}
