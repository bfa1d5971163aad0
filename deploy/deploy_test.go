// Package deploy_test checks the files that deploy consentd (the container image,
// compose.yaml, the systemd units) with the real tools from Debian's packages; the
// Caddyfile is tested end to end, in e2e/proxy_test.go.
// CONSENTD_SKIP_DEPLOY=1 skips these tests where the tools cannot be installed
// (internal/deploytest).
package deploy_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mustBuildConsentd builds consentd into dir with the environment assignments and go
// arguments of the Dockerfile's build line, its -o replaced, and returns the binary.
func mustBuildConsentd(tb testing.TB, dir string, build buildLine) string {
	tb.Helper()
	bin := filepath.Join(dir, "consentd")
	args := append([]string(nil), build.args...)
	args[build.out] = bin
	cmd := exec.Command("go", args...)
	cmd.Dir = ".." // the Dockerfile's COPY . . into its WORKDIR
	cmd.Env = append(os.Environ(), build.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// fact is something a deployment file says, and what it should say.
type fact struct {
	what      string
	got, want any
}

// mustFacts checks each fact in a subtest of its own, comparing values as printed: a
// nil and an empty list are the same there.
func mustFacts(t *testing.T, facts []fact) {
	t.Helper()
	for _, f := range facts {
		t.Run(f.what, func(t *testing.T) {
			if fmt.Sprint(f.got) != fmt.Sprint(f.want) {
				t.Errorf("got %v, want %v", f.got, f.want)
			}
		})
	}
}
