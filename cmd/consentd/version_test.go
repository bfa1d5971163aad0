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

	// A git checkout: the binary names its commit. -buildvcs=true because a
	// GOFLAGS of the machine's (-buildvcs=false) must not decide what a user gets.
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	want, flag := "consentd dev", "-buildvcs=false"
	if err == nil {
		want, flag = string(rev[:12]), "-buildvcs=true"
	}
	bin := filepath.Join(t.TempDir(), "consentd")
	if out, err := exec.Command("go", "build", flag, "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
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
