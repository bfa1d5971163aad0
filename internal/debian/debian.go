// Package debian finds the programs from Debian's packages that the deployment tests
// run (bubblewrap, systemd-analyze, caddy): such a test fails on a machine without
// them, saying how to install them, unless CONSENTD_SKIP_DEPLOY=1 skips it. A test that
// skipped itself quietly would pass on every machine that lacks the tool.
package debian

import (
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
