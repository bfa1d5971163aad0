// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's binaries, a
// cluster in a new temporary directory that listens on a private Unix socket only,
// one fresh database per test, and nothing left behind when the tests end.
//
// Tests that need it fail when PostgreSQL is not installed, saying how to install it,
// unless the person running them opted out with CONSENTD_SKIP_POSTGRES=1.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// SkipVariable opts out of the tests that need PostgreSQL.
const SkipVariable = "CONSENTD_SKIP_POSTGRES"

// port names the socket file; the socket directory is the cluster's own, so any
// port will do.
const port = 5432

// Durability is whether a cluster syncs what it commits to disk.
type Durability bool

const (
	// Volatile skips fsync: a test cluster, removed with its data, need not survive
	// a crash of the machine.
	Volatile Durability = false
	// Durable syncs every commit, as a production server does: for benchmarks.
	Durable Durability = true
)

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	dir        string // the cluster's data directory and its socket directory, beside each other
	bin        string // where initdb, pg_ctl and postgres are
	asPostgres bool   // run them as the postgres user: they refuse to run as root
	databases  atomic.Int64
}

// Main runs the tests of a package with a cluster for them (see Get), and removes the
// cluster afterwards: call it from TestMain. Without PostgreSQL, or when the cluster
// does not start, it exits at once with the reason, unless SkipVariable is set.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

var shared *Cluster

// Run is Main for a TestMain that has more to do after the tests: it returns the
// exit code instead of exiting.
func Run(m *testing.M) int {
	if os.Getenv(SkipVariable) != "" {
		return m.Run()
	}
	c, err := Start(Volatile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	shared = c
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	return code
}

// NewDatabase returns the URL of a new, empty database on the cluster that Main
// started, for tb alone. It skips tb when SkipVariable is set.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	if os.Getenv(SkipVariable) != "" {
		tb.Skipf("%s is set: the tests that need PostgreSQL do not run", SkipVariable)
	}
	if shared == nil {
		tb.Fatal("pgtest: no cluster: call pgtest.Main from the package's TestMain")
	}
	url, err := shared.NewDatabase(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return url
}

// NewCluster starts a cluster of tb's own, which tb may kill, and stops it when tb
// ends. It skips tb when SkipVariable is set.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if os.Getenv(SkipVariable) != "" {
		tb.Skipf("%s is set: the tests that need PostgreSQL do not run", SkipVariable)
	}
	c, err := Start(Volatile)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Stop() })
	return c
}

// FailoverURL returns the URL of database name on whichever of clusters takes writes,
// as a client that follows a failover has it: every server, and
// target_session_attrs=read-write.
func FailoverURL(name string, clusters ...*Cluster) string {
	hosts, ports := make([]string, len(clusters)), make([]string, len(clusters))
	for i, c := range clusters {
		hosts[i], ports[i] = c.sockets(), strconv.Itoa(port)
	}
	return fmt.Sprintf("postgres://consentd@/%s?host=%s&port=%s&target_session_attrs=read-write", name, strings.Join(hosts, ","), strings.Join(ports, ","))
}

// MustQueryRow runs query on the database at url, on a connection of its own, and
// scans its one row into dest, failing tb if it cannot.
func MustQueryRow(tb testing.TB, url, query string, dest ...any) {
	tb.Helper()
	mustRun(tb, url, query, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, query).Scan(dest...)
	})
}

// MustExec runs query with args on the database at url, on a connection of its own,
// failing tb if it cannot.
func MustExec(tb testing.TB, url, query string, args ...any) {
	tb.Helper()
	mustRun(tb, url, query, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, query, args...)
		return err
	})
}

// mustRun calls run with a connection of its own to the database at url, closed
// after it, failing tb with query if it fails.
func mustRun(tb testing.TB, url, query string, run func(context.Context, *pgx.Conn) error) {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := run(ctx, conn); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

// Start makes and starts a cluster in a new temporary directory. It first stops and
// removes the clusters of processes that ended without removing theirs (a test
// binary killed at its timeout, a benchmark interrupted).
func Start(d Durability) (*Cluster, error) {
	return start(d, func(c *Cluster, data string) error {
		return c.command("initdb", "-D", data, "-A", "trust", "-U", "consentd", "-E", "UTF8", "--no-sync")
	})
}

// start makes a cluster in a new temporary directory, fills its data directory with
// fill, and starts it.
func start(d Durability, fill func(c *Cluster, data string) error) (*Cluster, error) {
	bin, err := binaries()
	if err != nil {
		return nil, err
	}
	removeAbandoned(bin)
	dir, err := os.MkdirTemp("", dirPattern)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, asPostgres: os.Geteuid() == 0}
	if err := c.start(d, fill); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(d Durability, fill func(c *Cluster, data string) error) error {
	data, sockets := c.data(), c.sockets()
	for _, d := range []string{data, sockets} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	if c.asPostgres {
		if err := chownToPostgres(c.dir, data, sockets); err != nil {
			return err
		}
	}
	if err := fill(c, data); err != nil {
		return err
	}
	// -w waits until the server takes connections: an event, not a guess.
	options := fmt.Sprintf("-p %d -k %s -c listen_addresses=''", port, sockets)
	if d == Volatile {
		options += " -c fsync=off"
	}
	return c.command("pg_ctl", "start", "-w", "-t", "600", "-D", data, "-l", filepath.Join(c.dir, "server.log"), "-o", options)
}

func (c *Cluster) data() string    { return filepath.Join(c.dir, "data") }
func (c *Cluster) sockets() string { return filepath.Join(c.dir, "run") }

// StartStandby makes and starts a standby of primary, a copy streaming its WAL, and
// makes it primary's synchronous standby: from then on a commit on primary returns
// only once the standby has it. Kill primary and Promote the standby to fail over.
func StartStandby(ctx context.Context, primary *Cluster) (*Cluster, error) {
	standby, err := start(Volatile, func(c *Cluster, data string) error {
		// -R writes the settings that make the copy a standby of primary; -c fast
		// starts at once, not after a checkpoint spread over minutes.
		return c.command("pg_basebackup", "-D", data, "-h", primary.sockets(), "-p", strconv.Itoa(port), "-U", "consentd",
			"-X", "stream", "-R", "--no-sync", "-c", "fast", "-d", "application_name=standby")
	})
	if err != nil {
		return nil, fmt.Errorf("pgtest: standby: %w", err)
	}
	conn, err := pgx.Connect(ctx, primary.URL("postgres"))
	if err != nil {
		standby.Stop()
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ALTER SYSTEM SET synchronous_standby_names = 'standby'")
	if err == nil {
		_, err = conn.Exec(ctx, "SELECT pg_reload_conf()")
	}
	if err != nil {
		standby.Stop()
		return nil, fmt.Errorf("pgtest: synchronous standby: %w", err)
	}
	return standby, nil
}

// Synchronous reports whether the cluster has a synchronous standby streaming its
// WAL now.
func (c *Cluster) Synchronous(ctx context.Context) (bool, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return false, fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'").Scan(&n)
	return n > 0, err
}

// Kill stops the server at once, as a crash would: no checkpoint, no goodbye to its
// clients or standbys. Its directory stays until Stop.
func (c *Cluster) Kill() error {
	return c.command("pg_ctl", "stop", "-m", "immediate", "-D", c.data())
}

// Promote makes a standby a primary that takes writes, and returns once it does.
func (c *Cluster) Promote() error {
	return c.command("pg_ctl", "promote", "-w", "-t", "600", "-D", c.data())
}

// dirPattern names the clusters' directories, and ownerFile the file in each that
// holds the process id of the process that made it.
const (
	dirPattern = "consentd-pg-"
	ownerFile  = "owner.pid"
)

// removeAbandoned stops and removes the clusters that this user made whose owner
// process is gone.
func removeAbandoned(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPattern+"*"))
	for _, dir := range dirs {
		owner := filepath.Join(dir, ownerFile)
		fi, err := os.Stat(owner)
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
			continue // another user's
		}
		data, err := os.ReadFile(owner)
		pid, _ := strconv.Atoi(string(data))
		if err != nil || pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // its owner still runs
		}
		c := &Cluster{dir: dir, bin: bin, asPostgres: os.Geteuid() == 0}
		c.Stop()
	}
}

// Stop stops the server at once and removes the cluster.
func (c *Cluster) Stop() error {
	var err error
	if _, statErr := os.Stat(filepath.Join(c.data(), "postmaster.pid")); statErr == nil {
		err = c.command("pg_ctl", "stop", "-m", "immediate", "-D", c.data())
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}

// Dir returns the cluster's directory.
func (c *Cluster) Dir() string { return c.dir }

// URL returns the URL of database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://consentd@/%s?host=%s&port=%d", name, c.sockets(), port)
}

// NewDatabase creates a new, empty database and returns its URL.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	name, err := c.NewDatabaseName(ctx)
	if err != nil {
		return "", err
	}
	return c.URL(name), nil
}

// NewDatabaseName creates a new, empty database and returns its name.
func (c *Cluster) NewDatabaseName(ctx context.Context) (string, error) {
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(ctx)
	name := "test" + strconv.FormatInt(c.databases.Add(1), 10)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return name, nil
}

// command runs one of the cluster's binaries, as the postgres user if need be.
func (c *Cluster) command(name string, args ...string) error {
	path := filepath.Join(c.bin, name)
	if c.asPostgres {
		args = append([]string{"-u", "postgres", "--", path}, args...)
		path = "runuser"
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		return fmt.Errorf("%s: %w\n%s%s", name, err, out, log)
	}
	return nil
}

// binaries returns the directory of the newest installed PostgreSQL's binaries:
// Debian keeps them under /usr/lib/postgresql/VERSION/bin, not on PATH.
func binaries() (string, error) {
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if path, err := exec.LookPath("initdb"); err == nil {
		found = append(found, path)
	}
	if len(found) == 0 {
		return "", fmt.Errorf("PostgreSQL is not installed (no initdb under /usr/lib/postgresql or on PATH): apt-get install postgresql, or set %s=1 to skip the tests that need it", SkipVariable)
	}
	slices.SortFunc(found, func(a, b string) int { return version(b) - version(a) })
	return filepath.Dir(found[0]), nil
}

// version returns the major version in a path /usr/lib/postgresql/VERSION/bin/initdb,
// 0 for another path.
func version(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

func chownToPostgres(paths ...string) error {
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root, the cluster runs as the user postgres, which does not exist: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
