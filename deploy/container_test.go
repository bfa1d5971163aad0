package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/deploytest"
	"github.com/mixvoip/consentd/internal/wait"
)

// No container engine runs on the test machines (the docker client is there, no
// daemon), so the image is never built here. What it would run is run instead: the
// binary built with the Dockerfile's build line, as the image's user, with exactly its
// environment, on a root file system that holds only what the image and compose.yaml
// put there, read-only but for the volume. bubblewrap (bwrap) sets that up without a
// daemon, in a user namespace of its own.

// instruction is one instruction of a Dockerfile, its continuation lines joined.
type instruction struct {
	keyword string // upper case
	args    string
}

// dockerfile is what the tests need of the Dockerfile: its build stage's go build
// line and its final stage, as the image runs.
type dockerfile struct {
	build       buildLine
	from        string
	user        string
	env         []string // KEY=VALUE, in order
	volume      string
	expose      []string
	copies      []copyInstruction
	healthcheck []string
	entrypoint  []string
	cmd         []string
}

// buildLine is the build stage's go build: the environment it sets and go's
// arguments, args[out] being the binary it writes.
type buildLine struct {
	env  []string
	args []string
	out  int
}

type copyInstruction struct {
	from, chown, src, dst string
}

// imageVersion is the VERSION build argument of the test's image.
const imageVersion = "v0.0.0-image-test"

// mustReadDockerfile reads the repository's Dockerfile. It knows the forms that file
// uses and fails on others, rather than read them wrong.
func mustReadDockerfile(tb testing.TB) *dockerfile {
	tb.Helper()
	var stages [][]instruction
	for _, in := range mustInstructions(tb, "../Dockerfile") {
		if in.keyword == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			tb.Fatalf("Dockerfile: %s before FROM", in.keyword)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		tb.Fatalf("Dockerfile: %d stages, want a build stage and the image's", len(stages))
	}
	d := &dockerfile{build: mustBuildLine(tb, stages[len(stages)-2])}
	for _, in := range stages[len(stages)-1] {
		var err error
		switch in.keyword {
		case "FROM":
			d.from = in.args
		case "USER":
			d.user = in.args
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				if !strings.Contains(kv, "=") || strings.ContainsAny(kv, `"'$`) {
					tb.Fatalf("Dockerfile: ENV %q: the test reads unquoted KEY=VALUE pairs only", kv)
				}
				d.env = append(d.env, kv)
			}
		case "VOLUME":
			d.volume = in.args
		case "EXPOSE":
			d.expose = strings.Fields(in.args)
		case "COPY":
			d.copies = append(d.copies, mustCopy(tb, in.args))
		case "HEALTHCHECK":
			_, command, ok := strings.Cut(in.args, " CMD ")
			if !ok {
				tb.Fatalf("Dockerfile: HEALTHCHECK %s: want options, then CMD", in.args)
			}
			err = json.Unmarshal([]byte(command), &d.healthcheck)
		case "ENTRYPOINT":
			err = json.Unmarshal([]byte(in.args), &d.entrypoint)
		case "CMD":
			err = json.Unmarshal([]byte(in.args), &d.cmd)
		default:
			tb.Fatalf("Dockerfile: the final stage's %s is not one the test knows", in.keyword)
		}
		if err != nil {
			// The image has no shell: only the exec (JSON) form runs in it.
			tb.Fatalf("Dockerfile: %s %s: not the exec form: %v", in.keyword, in.args, err)
		}
	}
	return d
}

// mustInstructions reads a Dockerfile's instructions: comments and blank lines
// dropped, lines ending in a backslash joined to the next.
func mustInstructions(tb testing.TB, path string) []instruction {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []instruction
	var line string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") || text == "" && line == "" {
			continue
		}
		if rest, ok := strings.CutSuffix(text, `\`); ok {
			line += rest + " "
			continue
		}
		line += text
		keyword, args, _ := strings.Cut(line, " ")
		out = append(out, instruction{strings.ToUpper(keyword), strings.Join(strings.Fields(args), " ")})
		line = ""
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// mustBuildLine finds the RUN of the build stage that runs go build, with
// ${VERSION} as the test's image would have it.
func mustBuildLine(tb testing.TB, stage []instruction) buildLine {
	tb.Helper()
	for _, in := range stage {
		if in.keyword != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		words := mustShellWords(tb, strings.ReplaceAll(in.args, "${VERSION}", imageVersion))
		var b buildLine
		for len(words) > 0 && strings.Contains(words[0], "=") {
			b.env, words = append(b.env, words[0]), words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			tb.Fatalf("Dockerfile: RUN %s: want [VAR=value ...] go build ...", in.args)
		}
		b.args = words[1:]
		b.out = slices.Index(b.args, "-o") + 1
		if b.out == 0 || b.out == len(b.args) {
			tb.Fatalf("Dockerfile: RUN %s: no -o FILE", in.args)
		}
		return b
	}
	tb.Fatal("Dockerfile: the build stage runs no go build")
	return buildLine{}
}

// mustShellWords splits s into words as a shell would, for the quoting a go build
// line uses: double quotes, no escapes, no expansion.
func mustShellWords(tb testing.TB, s string) []string {
	tb.Helper()
	var words []string
	var word strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, word.String())
			}
			word.Reset()
			inWord = false
		case r == '\\' || r == '\'' || r == '$' || r == '&' || r == ';' || r == '|':
			tb.Fatalf("Dockerfile: %s: %q is more shell than the test reads", s, r)
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		tb.Fatalf("Dockerfile: %s: unbalanced quotes", s)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

func mustCopy(tb testing.TB, args string) copyInstruction {
	tb.Helper()
	var c copyInstruction
	words := strings.Fields(args)
	for len(words) > 0 && strings.HasPrefix(words[0], "--") {
		name, value, _ := strings.Cut(strings.TrimPrefix(words[0], "--"), "=")
		switch name {
		case "from":
			c.from = value
		case "chown":
			c.chown = value
		default:
			tb.Fatalf("Dockerfile: COPY %s: option --%s unknown to the test", args, name)
		}
		words = words[1:]
	}
	if len(words) != 2 {
		tb.Fatalf("Dockerfile: COPY %s: want one source and one destination", args)
	}
	c.src, c.dst = words[0], words[1]
	return c
}

// envValue returns the value of key in env (KEY=VALUE entries).
func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

// mustPort returns the port of a listen address such as :8080.
func mustPort(tb testing.TB, addr string) string {
	tb.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		tb.Fatalf("listen address %q: %v", addr, err)
	}
	return port
}

// TestDockerfile: the image runs consentd serve as a numeric non-root user, with its
// data in the one volume that user owns, listeners where EXPOSE says, and a
// HEALTHCHECK that needs no shell.
func TestDockerfile(t *testing.T) {
	d := mustReadDockerfile(t)
	binary := d.entrypoint[0]
	mustFacts(t, []fact{
		{"base", d.from, "gcr.io/distroless/static-debian12:nonroot"},
		{"user", d.user, "65532:65532"},
		{"cgo off: a static binary for a base without libc", envValue(d.build.env, "CGO_ENABLED"), "0"},
		{"-trimpath", slices.Contains(d.build.args, "-trimpath"), true},
		{"VERSION in -ldflags", slices.ContainsFunc(d.build.args, func(a string) bool { return strings.Contains(a, "-X main.Version="+imageVersion) }), true},
		{"entrypoint and command", append(slices.Clone(d.entrypoint), d.cmd...), []string{binary, "serve"}},
		{"the binary copied from the build stage", slices.Contains(d.copies, copyInstruction{from: "build", src: d.build.args[d.build.out], dst: binary}), true},
		{"the volume owned by the user", slices.ContainsFunc(d.copies, func(c copyInstruction) bool { return c.chown == d.user && c.dst == d.volume }), true},
		{"the database in the volume", filepath.Dir(envValue(d.env, "CONSENTD_DB")), d.volume},
		{"the keys in the volume", filepath.Dir(envValue(d.env, "CONSENTD_KEYS")), d.volume},
		{"the tokens in the volume", filepath.Dir(envValue(d.env, "CONSENTD_TOKENS")), d.volume},
		{"exposed ports", d.expose, []string{mustPort(t, envValue(d.env, "CONSENTD_ADDR")), mustPort(t, envValue(d.env, "CONSENTD_ADMIN_ADDR"))}},
		{"the DPO commands' URL, the public listener", envValue(d.env, "CONSENTD_URL"), "http://127.0.0.1:" + mustPort(t, envValue(d.env, "CONSENTD_ADDR"))},
		{"healthcheck", d.healthcheck, []string{binary, "health"}},
	})
}

// TestDockerignore: a build context carries the sources only; above all not data/,
// where make run keeps records, which COPY . . would put in the build stage.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for _, want := range []string{"data", ".git", "node_modules", "bin"} {
		if !slices.Contains(lines, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
}

// container runs commands as the image would: a fresh sandbox per command over the
// same files, as docker exec runs one in a running container.
type container struct {
	bwrap    string
	d        *dockerfile
	bin      string // the binary, mounted where the image has it
	sites    string // mounted read-only at CONSENTD_CONFIG, as compose.yaml does
	data     string // the volume
	env      []string
	uid, gid int
}

// command returns argv in the sandbox. The image's user is the sandbox's: bwrap
// maps it to the user running the test. A test running as root starts bwrap as
// that user too (bwrap then needs no privilege), so that the files in the volume
// belong to it outside the sandbox as well, as in a container's volume.
func (c *container) command(ctx context.Context, extra []*os.File, argv ...string) *exec.Cmd {
	args := []string{
		"--unshare-user", "--uid", strconv.Itoa(c.uid), "--gid", strconv.Itoa(c.gid),
		// consentd is PID 1 and gets SIGTERM to stop, as in a container.
		"--unshare-pid", "--as-pid-1", "--die-with-parent",
		"--proc", "/proc", "--dev", "/dev",
		"--ro-bind", c.bin, c.d.entrypoint[0],
		"--ro-bind", c.sites, envValue(c.d.env, "CONSENTD_CONFIG"),
		"--bind", c.data, c.d.volume,
		"--remount-ro", "/",
	}
	if len(extra) > 0 {
		args = append(args, "--info-fd", "3")
	}
	cmd := exec.CommandContext(ctx, c.bwrap, append(append(args, "--"), argv...)...)
	cmd.Env = c.env
	cmd.ExtraFiles = extra
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.gid), Groups: []uint32{}}}
	}
	return cmd
}

// run runs argv in the sandbox to its end.
func (c *container) run(tb testing.TB, argv ...string) (stdout, stderr string, err error) {
	tb.Helper()
	var out, errOut bytes.Buffer
	cmd := c.command(context.Background(), nil, argv...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// ownerUID is whom the volume's files belong to outside the sandbox: the image's
// user if the test runs as root, else the user running it (see command).
func (c *container) ownerUID() int {
	if os.Geteuid() == 0 {
		return c.uid
	}
	return os.Getuid()
}

// mustContainer sets up the image's files for a first start: the binary, an empty
// volume (owned by the image's user if the test runs as root), and the shipped
// sites.yaml.
func mustContainer(tb testing.TB, d *dockerfile) *container {
	tb.Helper()
	c := &container{bwrap: deploytest.MustProgram(tb, "bwrap", "bubblewrap"), d: d}
	uid, gid, ok := strings.Cut(d.user, ":")
	var errUID, errGID error
	c.uid, errUID = strconv.Atoi(uid)
	c.gid, errGID = strconv.Atoi(gid)
	if !ok || errUID != nil || errGID != nil {
		tb.Fatalf("Dockerfile: USER %s: want numeric uid:gid, which needs no /etc/passwd", d.user)
	}
	// Not t.TempDir, whose directories only their owner may enter: bwrap, as the
	// image's user, opens the files it mounts.
	dir, err := os.MkdirTemp("", "consentd-image-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	c.data = filepath.Join(dir, "data")
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.Mkdir(c.data, 0o700); err != nil {
		tb.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(c.data, c.uid, c.gid); err != nil {
			tb.Fatal(err)
		}
	}
	c.bin = mustBuildConsentd(tb, dir, d.build)
	sites, err := os.ReadFile("../sites.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	c.sites = filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(c.sites, sites, 0o644); err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestImage runs what the image runs: consentd serve starts on an empty volume and
// makes the store and the first key there, the HEALTHCHECK passes once it is ready,
// it serves a banner and records a consent, stops on SIGTERM, and writes nowhere but
// in the volume.
func TestImage(t *testing.T) {
	d := mustReadDockerfile(t)
	c := mustContainer(t, d)
	// The listeners on free ports of loopback instead of the image's :8080 and :9090,
	// as docker run -p would publish them: the test machine may use those. The DPO
	// commands' CONSENTD_URL names one of them, now at its new port.
	public, admin := "127.0.0.1:"+deploytest.MustFreePort(t), "127.0.0.1:"+deploytest.MustFreePort(t)
	published := map[string]string{
		mustPort(t, envValue(d.env, "CONSENTD_ADDR")):       public,
		mustPort(t, envValue(d.env, "CONSENTD_ADMIN_ADDR")): admin,
	}
	dpoURL, err := url.Parse(envValue(d.env, "CONSENTD_URL"))
	if err != nil || published[dpoURL.Port()] == "" {
		t.Fatalf("Dockerfile: CONSENTD_URL %s names neither listener", envValue(d.env, "CONSENTD_URL"))
	}
	// compose.yaml names the log after the host; a first start needs a name.
	c.env = append(slices.Clone(d.env), "CONSENTD_ADDR="+public, "CONSENTD_ADMIN_ADDR="+admin, "CONSENTD_URL=http://"+published[dpoURL.Port()],
		"CONSENTD_ORIGIN=consent.test/log")

	if out, stderr, err := c.run(t, d.entrypoint[0], "version"); err != nil || out != "consentd "+imageVersion+"\n" {
		t.Errorf("consentd version: %q %s %v, want the VERSION build argument", out, stderr, err)
	}
	// The sandbox must refuse what the image would: a write outside the volume.
	if _, stderr, err := c.run(t, d.entrypoint[0], "keygen", "--keys", "/keys"); err == nil || !strings.Contains(stderr, "read-only file system") {
		t.Errorf("consentd keygen outside the volume: %v, %s; want a read-only file system", err, stderr)
	}

	info, infoW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// A file, which the test may read while consentd writes to it.
	log, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	serveLog := func() string {
		data, _ := os.ReadFile(log.Name())
		return string(data)
	}
	serve := c.command(ctx, []*os.File{infoW}, append(slices.Clone(d.entrypoint), d.cmd...)...)
	serve.Stdout, serve.Stderr = log, log
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	infoW.Close()
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	var sandbox struct {
		ChildPID int `json:"child-pid"`
	}
	if err := json.NewDecoder(info).Decode(&sandbox); err != nil {
		t.Fatalf("bwrap --info-fd: %v", err)
	}

	wait.MustUntil(t, "the HEALTHCHECK passes", func() (bool, string) {
		select {
		case err := <-exited:
			t.Fatalf("consentd serve exited: %v\n%s", err, serveLog())
		default:
		}
		_, stderr, err := c.run(t, d.healthcheck...)
		return err == nil, stderr
	})

	cfg, err := config.Load(c.sites)
	if err != nil {
		t.Fatal(err)
	}
	site := cfg.Sites[cfg.SiteKeys()[0]]
	t.Run("banner", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+public+"/v1/banner/"+site.Key+".js", nil)
		req.Header.Set("Accept-Encoding", "br")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "br" || len(body) == 0 {
			t.Errorf("banner: %s, %q, %d bytes; want 200 in brotli", resp.Status, resp.Header.Get("Content-Encoding"), len(body))
		}
	})
	t.Run("consent", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{
			"site": site.Key, "consent_id": uuid.NewString(), "action": consent.ActionRejectAll,
			"fingerprint": banner.Fingerprint(site), "choices": site.AllChoices(false),
			"language": site.Languages[0], "url": site.Origins[0] + "/", "surface": "banner",
		})
		req, _ := http.NewRequest(http.MethodPost, "http://"+public+"/v1/consents", bytes.NewReader(body))
		req.Header.Set("Origin", site.Origins[0])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("POST /v1/consents: %s %s, want 201", resp.Status, answer)
		}
	})
	t.Run("listeners", func(t *testing.T) {
		for _, tt := range []struct {
			url  string
			want int
		}{
			{"http://" + admin + "/metrics", http.StatusOK},
			{"http://" + public + "/metrics", http.StatusNotFound},
			{"http://" + public + "/v1/dpo/verify", http.StatusUnauthorized},
		} {
			resp, err := http.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s: %d, want %d", tt.url, resp.StatusCode, tt.want)
			}
		}
	})

	t.Run("backup", func(t *testing.T) {
		// As an operator would: docker compose exec consentd /consentd token add, then
		// backup, which finds the DPO API and the keys it verifies with at CONSENTD_URL.
		token, stderr, err := c.run(t, d.entrypoint[0], "token", "add", "backup")
		if err != nil {
			t.Fatalf("consentd token add: %v\n%s", err, stderr)
		}
		dpo := *c
		dpo.env = append(slices.Clone(c.env), "CONSENTD_TOKEN="+strings.TrimSpace(token))
		wait.MustUntil(t, "consentd loads the token", func() (bool, string) {
			out, stderr, err := dpo.run(t, d.entrypoint[0], "stats")
			return err == nil, out + stderr
		})
		if out, stderr, err := dpo.run(t, d.entrypoint[0], "backup", "--out", d.volume+"/backup.db"); err != nil || !strings.Contains(out, "OK, ") {
			t.Errorf("consentd backup: %v\n%s%s", err, out, stderr)
		}
	})

	// docker stop: SIGTERM to PID 1.
	if err := syscall.Kill(sandbox.ChildPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("consentd serve after SIGTERM: %v\n%s", err, serveLog())
		}
	case <-wait.Timeout(t):
		t.Fatalf("consentd serve did not stop on SIGTERM\n%s", serveLog())
	}
	if _, stderr, err := c.run(t, d.healthcheck...); err == nil || !strings.Contains(stderr, "connection refused") {
		t.Errorf("the HEALTHCHECK with consentd stopped: %v, %q; want a failure, connection refused", err, stderr)
	}
	if out, stderr, err := c.run(t, d.entrypoint[0], "verify"); err != nil || !strings.Contains(out, "OK, ") {
		t.Errorf("consentd verify of the volume: %v\n%s%s", err, out, stderr)
	}
	mustVolume(t, c)
}

// mustVolume checks what TestImage leaves in the volume: the store, the key directory
// with one key, the token file and the backup, each for the image's user alone, and
// nothing else.
func mustVolume(tb testing.TB, c *container) {
	tb.Helper()
	want := map[string]os.FileMode{
		filepath.Base(envValue(c.env, "CONSENTD_DB")):     0o600,
		filepath.Base(envValue(c.env, "CONSENTD_KEYS")):   os.ModeDir | 0o700,
		filepath.Base(envValue(c.env, "CONSENTD_TOKENS")): 0o600,
		"backup.db": 0o600,
	}
	var keys int
	err := filepath.WalkDir(c.data, func(path string, e os.DirEntry, err error) error {
		if err != nil || path == c.data {
			return err
		}
		rel, _ := filepath.Rel(c.data, path)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		mode, ok := want[rel]
		if filepath.Dir(rel) == filepath.Base(envValue(c.env, "CONSENTD_KEYS")) {
			mode, ok = 0o600, true
			keys++
		}
		switch {
		case !ok:
			tb.Errorf("the volume holds %s, which a first start does not make", rel)
		case fi.Mode() != mode:
			tb.Errorf("%s: mode %v, want %v", rel, fi.Mode(), mode)
		case int(fi.Sys().(*syscall.Stat_t).Uid) != c.ownerUID():
			tb.Errorf("%s belongs to uid %d, want %d", rel, fi.Sys().(*syscall.Stat_t).Uid, c.ownerUID())
		}
		delete(want, rel)
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if len(want) > 0 || keys != 1 {
		tb.Errorf("the volume lacks %v, and holds %d keys; want one", want, keys)
	}
}
