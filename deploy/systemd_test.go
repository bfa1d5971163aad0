package deploy_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mixvoip/consentd/internal/deploytest"
)

// units are the systemd units deploy/ ships.
var units = []string{
	"consentd.service",
	"consentd-backup.service", "consentd-backup.timer",
	"consentd-monitor.service", "consentd-monitor.timer",
	"consentd-scan.service", "consentd-scan.timer",
}

// installedBinary is where the units expect consentd.
const installedBinary = "/usr/local/bin/consentd"

// maxExposure is the highest `systemd-analyze security` exposure a service may have
// (0 to 10, where systemd calls below 2 "OK"); the units have 1.1, the scan's 1.2
// (hardeningChanges).
const maxExposure = 1.5

// hardeningChanges are where a service's hardening departs from consentd.service's:
// a line it leaves out (-) or adds (+), in the order of the files. Each is needed (the
// scan's were tried under systemd 252 with Chromium), and explained in a comment of the
// unit that names the option left out or the system call allowed.
var hardeningChanges = map[string][]string{
	"consentd-scan.service": {
		"-ProcSubset=pid",             // /usr/bin/chromium reads /proc/cpuinfo
		"-MemoryDenyWriteExecute=yes", // Chromium's JavaScript engine runs code it writes
		"+SystemCallFilter=capset",    // Chromium's zygote drops capabilities, or aborts
	},
}

// mustUnitsWithBinary copies the units into a directory of their own with ExecStart's
// consentd replaced by a real one. systemd-analyze verify fails a unit whose binary
// does not exist, and consentd is not installed on the test machine; its --root
// would look for every unit it loads (sysinit.target, ...) under that root as well,
// so only the binary's path changes, and the test checks that the units name it.
func mustUnitsWithBinary(tb testing.TB) (dir string) {
	tb.Helper()
	dir = tb.TempDir()
	bin := mustBuildConsentd(tb, dir, mustReadDockerfile(tb).build)
	for _, name := range units {
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		if strings.HasSuffix(name, ".service") && !bytes.Contains(data, []byte("\nExecStart="+installedBinary+" ")) {
			tb.Fatalf("%s: ExecStart does not run %s", name, installedBinary)
		}
		data = bytes.ReplaceAll(data, []byte(installedBinary), []byte(bin))
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// TestSystemdUnits: systemd-analyze verify finds nothing to say about the units. It
// exits 0 on some warnings (an unknown key, say, which systemd ignores), so any line
// it prints about them fails the test.
func TestSystemdUnits(t *testing.T) {
	analyze := deploytest.MustProgram(t, "systemd-analyze", "systemd")
	dir := mustUnitsWithBinary(t)
	var paths []string
	for _, name := range units {
		paths = append(paths, filepath.Join(dir, name))
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		about := strings.Contains(line, dir)
		for _, name := range units {
			about = about || strings.Contains(line, name)
		}
		if about {
			t.Errorf("systemd-analyze verify: %s", line)
		} else {
			t.Logf("systemd-analyze verify, about another unit: %s", line)
		}
	}
}

// exposure is systemd-analyze security's verdict on a unit: "→ Overall exposure
// level for consentd.service: 1.1 OK".
var exposure = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestSystemdSecurity: the services are sandboxed as tightly as consentd allows,
// by systemd-analyze security's measure (offline: on the unit files, no systemd
// running needed).
func TestSystemdSecurity(t *testing.T) {
	analyze := deploytest.MustProgram(t, "systemd-analyze", "systemd")
	dir := mustUnitsWithBinary(t)
	for _, name := range units {
		if !strings.HasSuffix(name, ".service") {
			continue
		}
		t.Run(name, func(t *testing.T) {
			out, err := exec.Command(analyze, "security", "--offline=yes", filepath.Join(dir, name)).CombinedOutput()
			m := exposure.FindSubmatch(out)
			if err != nil || m == nil {
				t.Fatalf("systemd-analyze security: %v\n%s", err, out)
			}
			if level, _ := strconv.ParseFloat(string(m[1]), 64); level > maxExposure {
				t.Errorf("exposure %s, want at most %.1f:\n%s", m[1], maxExposure, out)
			}
		})
	}
}

// TestUnitEnvironment: every CONSENTD_ variable the units and consentd.env set is one
// consentd reads (a misspelt one is ignored without a word), and the files consentd
// writes are in the state directory, which ProtectSystem=strict leaves it.
func TestUnitEnvironment(t *testing.T) {
	dir := t.TempDir()
	bin := mustBuildConsentd(t, dir, mustReadDockerfile(t).build)
	serveHelp, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	help, _ := exec.Command(bin, "help").CombinedOutput()
	known := map[string]bool{}
	variable := regexp.MustCompile(`\bCONSENTD_[A-Z_]+`)
	for _, v := range regexp.MustCompile(`\$CONSENTD_[A-Z_]+`).FindAll(append(serveHelp, help...), -1) {
		known[string(v[1:])] = true
	}
	for _, name := range append(units, "consentd.env") {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range variable.FindAllString(string(data), -1) {
			if !known[v] {
				t.Errorf("%s: %s is no variable consentd reads", name, v)
			}
		}
	}
	service, err := os.ReadFile("consentd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"CONSENTD_DB", "CONSENTD_KEYS", "CONSENTD_TOKENS"} {
		if !bytes.Contains(service, []byte("\nEnvironment="+v+"=/var/lib/consentd/")) || !bytes.Contains(service, []byte("\nStateDirectory=consentd\n")) {
			t.Errorf("consentd.service: %s is not in StateDirectory=consentd", v)
		}
	}
}

// hardening returns the lines of a service's hardening (from NoNewPrivileges= to the
// end of its section) and the text of all its comments.
func hardening(tb testing.TB, name string) (lines []string, comments string) {
	tb.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "#"):
			comments += line + "\n"
		case strings.HasPrefix(line, "NoNewPrivileges="):
			in = true
		case strings.HasPrefix(line, "["):
			in = false
		}
		if in && line != "" && !strings.HasPrefix(line, "#") {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		tb.Fatalf("%s: no hardening (NoNewPrivileges= and what follows)", name)
	}
	return lines, comments
}

// TestUnitHardening: every service is hardened as consentd.service is, line for
// line, but for the changes in hardeningChanges, which its comments explain.
func TestUnitHardening(t *testing.T) {
	want, _ := hardening(t, "consentd.service")
	for _, name := range units {
		if !strings.HasSuffix(name, ".service") || name == "consentd.service" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			got, comments := hardening(t, name)
			var changes []string
			for _, line := range want {
				if !slices.Contains(got, line) {
					changes = append(changes, "-"+line)
				}
			}
			for _, line := range got {
				if !slices.Contains(want, line) {
					changes = append(changes, "+"+line)
				}
			}
			if !slices.Equal(changes, hardeningChanges[name]) {
				t.Errorf("hardening changed from consentd.service's by %q, want %q", changes, hardeningChanges[name])
			}
			for _, c := range hardeningChanges[name] {
				key, value, _ := strings.Cut(c[1:], "=")
				if c[0] == '+' {
					key = value
				}
				if !strings.Contains(comments, key) {
					t.Errorf("%s: no comment says why (none names %s)", c, key)
				}
			}
		})
	}
}
