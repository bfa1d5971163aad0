// Package durability_test proves that consentd keeps every decision it acknowledged:
// it runs the consentd binary under concurrent POSTs, kills it with SIGKILL at random
// moments, start-up included, restarts it, and checks that every record answered 201
// is in the store, under a checkpoint that the final log extends, and that the log
// verifies. `make test` runs a short form; `make bench` a long one (-cycles).
package durability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/translog"
)

var cycles = flag.Int("cycles", 12, "kill and restart consentd this many times")

// binary is the consentd built for the test.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "consentd-durability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "consentd")
	build := exec.Command("go", "build", "-o", binary, "../cmd/consentd")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	code := 1
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "durability: build consentd:", err)
	} else {
		code = pgtest.Run(m)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// acked is a decision consentd answered 201, as the visitor got it.
type acked struct {
	RecordID  string           `json:"record_id"`
	ConsentID string           `json:"consent_id"`
	Receipt   *consent.Receipt `json:"receipt"`
}

// env is one installation of consentd: its files, and what its visitors post.
type env struct {
	dir, db, keys string
	site          string
	origin        string // the site's page origin
	fingerprint   string
	choices       consent.Choices
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	site := cfg.SiteKeys()[0]
	dir := tb.TempDir()
	return &env{
		dir: dir, db: filepath.Join(dir, "consent.db"), keys: filepath.Join(dir, "keys"),
		site: site, origin: cfg.Sites[site].Origins[0], fingerprint: banner.Fingerprint(cfg.Sites[site]),
		choices: cfg.Sites[site].AllChoices(false),
	}
}

// logOrigin is the name of the tests' logs.
const logOrigin = "durability.test/log"

// run is one consentd process.
type run struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed once the process exited
}

// start starts consentd on a free port, on the store db, with the flags extra
// besides, and returns at once.
func (e *env) start(tb testing.TB, db string, extra ...string) *run {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(binary, "serve", "--addr", addr, "--config", "../sites.yaml", "--db", db, "--keys", e.keys,
		"--tokens", filepath.Join(e.dir, "tokens.json"), "--origin", logOrigin,
		"--consent-limit", "0", "--min-free-disk", "0", "--trusted-proxies", "127.0.0.0/8", "--log-format", "text")
	cmd.Args = append(cmd.Args, extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	r := &run{cmd: cmd, url: "http://" + addr, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(r.done)
	}()
	tb.Cleanup(func() {
		r.kill()
		if tb.Failed() {
			tb.Logf("consentd's log:\n%s", stderr.String())
		}
	})
	return r
}

func (r *run) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// mustRunFor fails tb if r exits within d: consentd never stops on its own.
func (r *run) mustRunFor(tb testing.TB, d time.Duration) {
	tb.Helper()
	select {
	case <-r.done:
		tb.Fatalf("consentd exited by itself: %v", r.cmd.ProcessState)
	case <-time.After(d):
	}
}

// mustReady waits until r answers /readyz, failing tb if it exits first.
func (r *run) mustReady(tb testing.TB) {
	tb.Helper()
	wait.MustUntil(tb, "consentd is ready", func() (bool, string) {
		select {
		case <-r.done:
			tb.Fatalf("consentd exited before it was ready: %v", r.cmd.ProcessState)
		default:
		}
		resp, err := http.Get(r.url + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
}

// post posts one decision of a new visitor and returns it if consentd answered 201.
// Any other outcome (refused, reset, killed) is not an acknowledgement.
func (e *env) post(ctx context.Context, url string) *acked {
	body, _ := json.Marshal(map[string]any{
		"site": e.site, "consent_id": uuid.NewString(), "action": "reject_all", "fingerprint": e.fingerprint,
		"choices": e.choices, "language": "en", "url": e.origin + "/", "surface": "banner", "gpc": false,
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/consents", bytes.NewReader(body))
	if err != nil {
		return nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", e.origin)
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", rand.IntN(256), rand.IntN(256)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var a acked
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&a) != nil {
		return nil
	}
	return &a
}

// TestCrash kills consentd with SIGKILL under concurrent POSTs, cycles times: in half
// of the cycles at a random moment from its start (during start-up, or soon after),
// in the other half a random moment after its first acknowledgement. Then every
// decision answered 201 must be in the store, its receipt valid and its checkpoint
// extended by the final log, and the log must verify.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs consentd many times: not with -short")
	}
	e := newEnv(t)
	// The first run makes the keys and the store, and stops cleanly: a kill between
	// the two would leave keys without a store, which consentd rightly refuses to
	// take for a first installation.
	first := e.start(t, e.db)
	first.mustReady(t)
	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-first.done

	const posters = 16
	var mu sync.Mutex
	var acks []*acked
	startupKills := 0
	for cycle := range *cycles {
		r := e.start(t, e.db)
		ctx, stop := context.WithCancel(context.Background())
		firstAck := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		for range posters {
			wg.Go(func() {
				for ctx.Err() == nil {
					a := e.post(ctx, r.url)
					if a == nil {
						// Not up yet, or gone: try again soon, as a banner would, until
						// the cycle ends.
						select {
						case <-ctx.Done():
						case <-time.After(time.Millisecond):
						}
						continue
					}
					mu.Lock()
					acks = append(acks, a)
					mu.Unlock()
					once.Do(func() { close(firstAck) })
				}
			})
		}
		// A random moment to kill, the point of the test; consentd must not have
		// exited by itself before it.
		if cycle%2 == 0 {
			r.mustRunFor(t, time.Duration(rand.IntN(800))*time.Millisecond)
			select {
			case <-firstAck:
			default:
				startupKills++
			}
		} else {
			select {
			case <-firstAck:
			case <-r.done:
				t.Fatalf("cycle %d: consentd exited before acknowledging anything", cycle)
			case <-wait.Timeout(t):
				t.Fatalf("cycle %d: no decision acknowledged", cycle)
			}
			r.mustRunFor(t, time.Duration(rand.IntN(300))*time.Millisecond)
		}
		r.kill()
		stop()
		wg.Wait()
	}
	t.Logf("%d cycles, %d of them killed before the first acknowledgement; %d decisions acknowledged", *cycles, startupKills, len(acks))
	if len(acks) == 0 {
		t.Fatal("no decision was acknowledged")
	}
	mustAllKept(t, e, acks)
}

// mustAllKept opens the store the last run left and checks every acknowledged
// decision against it.
func mustAllKept(t *testing.T, e *env, acks []*acked) {
	keys, err := proof.LoadKeyring(e.keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(e.db, bolt.Log("", keys))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustKeepAll(t, s, keys, acks)
}

// keptStore is what mustKeepAll reads of a store.
type keptStore interface {
	consent.Store
	Origin() string
}

// mustKeepAll checks every acknowledged decision against s: its record is there,
// once, its receipt verifies, and the log extends its receipt's checkpoint. No two
// receipts hold different checkpoints of one size, and the log verifies.
func mustKeepAll(t *testing.T, s keptStore, keys *proof.Keyring, acks []*acked) {
	ctx := context.Background()
	if v, err := s.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("the log does not verify: %+v, %v", v, err)
	}
	verifier, err := keys.LogVerifier(s.Origin())
	if err != nil {
		t.Fatal(err)
	}
	head, err := s.LastCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hashes := translog.Hashes(ctx, s)
	lost := 0
	roots := map[int64][32]byte{} // checkpoints given out, by size
	for _, a := range acks {
		records, err := s.RecordsByConsent(ctx, a.ConsentID)
		if err != nil {
			t.Fatal(err)
		}
		if len(records) != 1 || records[0].ID != a.RecordID {
			lost++
			t.Errorf("record %s was acknowledged; the store holds %d records of its consent", a.RecordID, len(records))
			continue
		}
		verified, err := verifier.VerifyReceipt(a.Receipt)
		if err != nil {
			t.Errorf("record %s: its receipt: %v", a.RecordID, err)
			continue
		}
		cp := verified.Checkpoint
		if root, ok := roots[cp.Size]; ok && root != cp.Root {
			t.Errorf("two checkpoints of %d leaves with different roots were given out: the log forked", cp.Size)
		}
		roots[cp.Size] = cp.Root
		p, err := translog.ProveConsistency(hashes, cp.Size, head.Size)
		if err == nil {
			err = translog.VerifyConsistency(p, cp, head)
		}
		if err != nil {
			t.Errorf("record %s: the final log does not extend the checkpoint of its receipt (size %d): %v", a.RecordID, cp.Size, err)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged decisions lost", lost, len(acks))
	}
}
