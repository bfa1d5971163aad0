// Package deploytest holds what the deployment tests share (deploy/, and the reverse
// proxy's in e2e/): the programs from Debian's packages they run (bubblewrap,
// systemd-analyze, caddy), and free ports of loopback for what they start there.
//
// Such a test fails on a machine without those programs, saying how to install them,
// unless CONSENTD_SKIP_DEPLOY=1 skips it: a test that skipped itself quietly would pass
// on every machine that lacks the tool.
package deploytest

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// SkipEnv names the variable that skips the deployment tests.
const SkipEnv = "CONSENTD_SKIP_DEPLOY"

// MustProgram returns the path of program, which Debian's package pkg installs, or
// fails tb with the command that installs it. It skips tb if SkipEnv is 1.
func MustProgram(tb testing.TB, program, pkg string) string {
	tb.Helper()
	if os.Getenv(SkipEnv) == "1" {
		tb.Skipf("%s=1: %s not run, nothing of the deployment was checked", SkipEnv, program)
	}
	path, err := exec.LookPath(program)
	if err != nil {
		tb.Fatalf("%s is missing: apt-get install -y %s (or %s=1 to skip the deployment tests)", program, pkg, SkipEnv)
	}
	return path
}

// MustFreePort returns a port of 127.0.0.1 that nothing listens on just now, for a
// program that takes its port from its configuration rather than choosing one.
func MustFreePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	return port
}
