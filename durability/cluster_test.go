package durability_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/postgres"
)

// lease is the sequencer's lease in the cluster tests: short, so that a failover
// takes about a second.
const lease = time.Second

// TestSequencerFailover runs three consentd processes on one PostgreSQL database,
// with decisions posted to all three, and takes the sequencer (the instance holding
// the lease) out in three ways: killed with SIGKILL, paused with SIGSTOP until
// another instance took over and then resumed, and its database connections
// dropped. After each, another instance (or the same one, reconnected) integrates
// again. At the end every decision acknowledged is in the log once, its receipt
// verifies, and the final log extends the checkpoint of every receipt; no two
// checkpoints given out of the same size differ; the log verifies.
func TestSequencerFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("the failover test runs three consentd processes: not with -short")
	}
	e := newEnv(t)
	db := pgtest.NewDatabase(t)
	c := &cluster{env: e, db: db}
	c.start(t, 0, "--migrate") // the first installation: makes the keys and the store
	c.runs[0].mustReady(t)
	for i := 1; i < 3; i++ {
		c.start(t, i)
	}
	for _, r := range c.runs {
		r.mustReady(t)
	}
	l := c.load()
	defer l.stop()

	killed := -1
	t.Run("SIGKILL", func(t *testing.T) {
		l.mustAck(t, 100)
		i, before := c.sequencer(t)
		took := c.mustFailOver(t, before, func() { c.runs[i].kill() })
		t.Logf("instance %d killed; the next sequencer integrated after %s", i, took.Round(time.Millisecond))
		killed = i
	})
	if killed < 0 {
		t.FailNow()
	}
	// Started again by the test, not the subtest, which would stop it at its end.
	c.start(t, killed)
	c.runs[killed].mustReady(t)
	l.mustAckFrom(t, killed, 20)
	t.Run("SIGSTOP", func(t *testing.T) {
		l.mustAck(t, 100)
		i, before := c.sequencer(t)
		paused := c.runs[i]
		// Resumed whatever happens, or the test's end would wait for it forever.
		defer paused.cmd.Process.Signal(syscall.SIGCONT)
		took := c.mustFailOver(t, before, func() {
			if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("instance %d paused; the next sequencer integrated after %s", i, took.Round(time.Millisecond))
		if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		// Resumed, it believes it still holds the lease until its next integration
		// or renewal says otherwise; decisions posted to it must be acknowledged
		// again, integrated by the new sequencer.
		l.mustAckFrom(t, i, 20)
	})
	t.Run("connection dropped", func(t *testing.T) {
		l.mustAck(t, 100)
		i, _ := c.sequencer(t)
		conn := mustConnect(t, db)
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, instanceName(i)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatalf("instance %d, the sequencer, has no connection to drop", i)
		}
		t.Logf("dropped the %d connections of instance %d, the sequencer", n, i)
		l.mustAck(t, 100)
		l.mustAckFrom(t, i, 20)
	})
	acks := l.stop()
	for _, r := range c.runs {
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-r.done
	}
	keys, err := proof.LoadKeyring(e.keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(context.Background(), db, postgres.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustKeepAll(t, s, keys, acks)
	var pending int
	pgtest.MustQueryRow(t, db, "SELECT count(*) FROM pending", &pending)
	t.Logf("%d decisions acknowledged over three failovers; %d written and never integrated", len(acks), pending)
}

// TestDatabaseFailover: two consentd processes on a PostgreSQL primary with a
// synchronous standby, decisions posted to both; the primary is killed and the
// standby promoted, and consentd reconnects to it by itself (its URL names both
// servers, and only the one that takes writes is used). Nothing acknowledged is
// lost, and the log is not forked: every receipt given out before the failover
// verifies against the log on the promoted standby.
func TestDatabaseFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("the failover test runs two PostgreSQL servers: not with -short")
	}
	ctx := context.Background()
	primary := pgtest.NewCluster(t)
	name, err := primary.NewDatabaseName(ctx)
	if err != nil {
		t.Fatal(err)
	}
	standby, err := pgtest.StartStandby(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Stop()
	wait.MustUntil(t, "the standby replicates synchronously", func() (bool, string) {
		ok, err := primary.Synchronous(ctx)
		return ok, fmt.Sprint(err)
	})
	both := pgtest.FailoverURL(name, primary, standby)
	c := &cluster{env: newEnv(t), db: both}
	c.start(t, 0, "--migrate")
	c.runs[0].mustReady(t)
	c.start(t, 1)
	c.runs[1].mustReady(t)
	l := c.load()
	defer l.stop()
	l.mustAck(t, 200)

	if err := primary.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := standby.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	l.mustAck(t, 200)
	t.Logf("primary killed; standby promoted after %s; the first decision posted after the kill was acknowledged after %s",
		promoted.Sub(killed).Round(time.Millisecond), l.firstAckAfter(killed).Sub(killed).Round(time.Millisecond))
	acks := l.stop()
	for _, r := range c.runs {
		if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-r.done
	}
	keys, err := proof.LoadKeyring(c.env.keys)
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, both, postgres.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustKeepAll(t, s, keys, acks)
	t.Logf("%d decisions acknowledged across the failover", len(acks))
}

// cluster is consentd processes on one database, instance i named instanceName(i)
// in the database's sessions.
type cluster struct {
	env  *env
	db   string
	mu   sync.Mutex
	runs []*run
}

func instanceName(i int) string { return "consentd-" + strconv.Itoa(i) }

// start starts instance i, in place of the one before if any.
func (c *cluster) start(tb testing.TB, i int, extra ...string) {
	tb.Helper()
	u, err := url.Parse(c.db)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", instanceName(i))
	u.RawQuery = q.Encode()
	r := c.env.start(tb, u.String(), append([]string{"--lease", lease.String()}, extra...)...)
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.runs) <= i {
		c.runs = append(c.runs, nil)
	}
	c.runs[i] = r
}

// urls returns where the instances serve, by index.
func (c *cluster) urls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.runs))
	for i, r := range c.runs {
		out[i] = r.url
	}
	return out
}

// sequencer returns the instance that holds the lease, and the lease's epoch.
func (c *cluster) sequencer(tb testing.TB) (int, int64) {
	tb.Helper()
	var holder string
	var epoch int64
	pgtest.MustQueryRow(tb, c.db, "SELECT holder, epoch FROM sequencer_lease", &holder, &epoch)
	// The holder is host/pid/random.
	parts := strings.Split(holder, "/")
	pid, err := strconv.Atoi(parts[len(parts)-2])
	if err != nil {
		tb.Fatalf("lease holder %q names no process", holder)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, r := range c.runs {
		if r.cmd.Process.Pid == pid {
			return i, epoch
		}
	}
	tb.Fatalf("lease holder %q is none of the instances", holder)
	return 0, 0
}

// mustFailOver takes the sequencer out with do, then waits until another instance
// integrated records under a later epoch than before, and returns how long that
// took.
func (c *cluster) mustFailOver(tb testing.TB, before int64, do func()) time.Duration {
	tb.Helper()
	start := time.Now()
	do()
	wait.MustUntil(tb, "another sequencer integrates", func() (bool, string) {
		var epoch int64
		pgtest.MustQueryRow(tb, c.db, "SELECT epoch FROM log_head", &epoch)
		return epoch > before, fmt.Sprintf("the last integration's epoch is %d", epoch)
	})
	return time.Since(start)
}

// load posts decisions to the instances of a cluster, each poster to each instance
// in turn, until stopped.
type load struct {
	stopped chan struct{}
	posters sync.WaitGroup
	mu      sync.Mutex
	acks    []*acked
	sentAt  []time.Time // when each of acks was posted
	ackedAt []time.Time // and when its answer came
	byRun   map[int]int // acknowledgements by instance
}

// posters is how many posters a load runs.
const posters = 12

func (c *cluster) load() *load {
	l := &load{stopped: make(chan struct{}), byRun: map[int]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-l.stopped; cancel() }()
	for p := range posters {
		l.posters.Go(func() {
			for n := p; ctx.Err() == nil; n++ {
				urls := c.urls()
				i := n % len(urls)
				sent := time.Now()
				a := c.env.post(ctx, urls[i])
				if a == nil {
					continue // refused, reset, or a paused instance: the next one
				}
				l.mu.Lock()
				l.acks, l.sentAt, l.ackedAt = append(l.acks, a), append(l.sentAt, sent), append(l.ackedAt, time.Now())
				l.byRun[i]++
				l.mu.Unlock()
			}
		})
	}
	return l
}

// mustAck waits until n more decisions are acknowledged.
func (l *load) mustAck(tb testing.TB, n int) {
	tb.Helper()
	l.mu.Lock()
	want := len(l.acks) + n
	l.mu.Unlock()
	wait.MustUntil(tb, fmt.Sprintf("%d more decisions acknowledged", n), func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.acks) >= want, fmt.Sprintf("%d of %d", len(l.acks), want)
	})
}

// mustAckFrom waits until instance i acknowledged n more decisions.
func (l *load) mustAckFrom(tb testing.TB, i, n int) {
	tb.Helper()
	l.mu.Lock()
	want := l.byRun[i] + n
	l.mu.Unlock()
	wait.MustUntil(tb, fmt.Sprintf("instance %d acknowledges %d more decisions", i, n), func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.byRun[i] >= want, fmt.Sprintf("%d of %d", l.byRun[i], want)
	})
}

// firstAckAfter returns when the first decision posted after t was acknowledged.
func (l *load) firstAckAfter(t time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for i, sent := range l.sentAt {
		if sent.After(t) && (first.IsZero() || l.ackedAt[i].Before(first)) {
			first = l.ackedAt[i]
		}
	}
	return first
}

// stop stops the posters and returns every decision acknowledged. It is safe to call
// more than once.
func (l *load) stop() []*acked {
	select {
	case <-l.stopped:
	default:
		close(l.stopped)
	}
	l.posters.Wait()
	return l.acks
}

func mustConnect(tb testing.TB, db string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), db)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
