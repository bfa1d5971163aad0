// Package postgres is the consent store on PostgreSQL, for operators who run it
// already and want its backups and replicas: consent.Store over pgx v5's pool, with
// the schema in migrations/ (Migrate). It passes the same conformance suite as
// store/bolt.
//
// Bytes that were hashed or signed (snapshots, and a record's leaf and parts) are
// stored as bytea, exactly as hashed; jsonb would reorder keys and rewrite numbers.
package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/internal/groupcommit"
	"github.com/mixvoip/consentd/store/internal/snapshots"
	"github.com/mixvoip/consentd/translog"
)

// Store is the consent store in one PostgreSQL database, which several instances of
// consentd may share: each writes its records as pending, and the one holding the
// sequencer's lease integrates them into the log (sequencer.go). It is safe for
// concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	origin string
	keys   *proof.Keyring
	writer *groupcommit.Writer[*request]

	sequencer          sequencer
	waiting            *waiters
	integrationTimeout time.Duration

	// head is the newest checkpoint this instance saw: every head read later must
	// extend it.
	head atomic.Pointer[consent.Checkpoint]
	// failed holds why the store takes no more appends: its log in the database is
	// not one that extends the checkpoints it saw (see readHead).
	failed atomic.Pointer[error]

	snapshots  snapshots.Cache
	stop       context.CancelFunc // stops the sequencer and the poller
	background sync.WaitGroup
	closeOnce  sync.Once

	onCommit   func(records int, took time.Duration)
	loseAnswer atomic.Pointer[func() bool] // for tests: whether to lose the answer to this integration
}

var (
	_ consent.Store         = (*Store)(nil)
	_ consent.ReadyReporter = (*Store)(nil)
)

// Options configure Open.
type Options struct {
	// Origin names the store's log: required to create it, and then the stored one.
	Origin string
	// Keys sign the log, and verify its latest checkpoint when the store opens. They
	// are published in the database, and learn there the keys that other instances
	// sign with (PublishKeys, LearnKeys).
	Keys *proof.Keyring
	// QueueSize and MaxBatch size the write queue (groupcommit's defaults if 0);
	// MaxBatch is also the most records one integration takes.
	QueueSize, MaxBatch int
	// Instance names this instance in the sequencer's lease; a unique name is made if
	// empty.
	Instance string
	// Lease is how long the sequencer's lease lasts unless renewed (DefaultLease if
	// 0).
	Lease time.Duration
	// IntegrationTimeout is how long Append waits for its record to be integrated
	// (10 s if 0).
	IntegrationTimeout time.Duration
	// OnCommit, if set, hears of every integration: how many records, and how long
	// it took.
	OnCommit func(records int, took time.Duration)
	// OnAnswered, if set, hears of every append answered: how long it took from its
	// write as pending to its answer, the integration included. It is called with a
	// lock held and must be quick.
	OnAnswered func(took time.Duration)
}

// Open connects to the database at url (postgres://...; the password from
// PGPASSFILE or PGPASSWORD rather than the URL, which shows in ps), checks that its
// schema is the one this consentd writes (Migrate makes it so), and opens its log,
// creating it under opts.Origin in a database without one.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{
		pool: pool, origin: opts.Origin, keys: opts.Keys, onCommit: opts.OnCommit,
		waiting:            newWaiters(opts.OnAnswered),
		integrationTimeout: orDefault(opts.IntegrationTimeout, 10*time.Second),
		sequencer: sequencer{
			holder: cmp.Or(opts.Instance, instanceName()),
			lease:  orDefault(opts.Lease, DefaultLease),
			batch:  orDefault(opts.MaxBatch, groupcommit.DefaultMaxBatch),
			wake:   make(chan struct{}, 1),
		},
	}
	if err := s.open(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s.writer = groupcommit.Start(orDefault(opts.QueueSize, groupcommit.DefaultQueueSize), s.sequencer.batch, s.commit)
	s.takeLease(ctx) // now, so that a store opened alone leads from the start
	var background context.Context
	background, s.stop = context.WithCancel(context.Background())
	s.background.Go(func() { s.sequence(background) })
	s.background.Go(func() { s.poll(background) })
	return s, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// instanceName names this process in the sequencer's lease: its host and process
// id, and a random part, as a process id is used again.
func instanceName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8])
}

func (s *Store) open(ctx context.Context) error {
	if err := checkVersion(ctx, s.pool); err != nil {
		return err
	}
	if s.keys == nil {
		return errors.New("no keys to sign and verify the log with")
	}
	var stored string
	err := s.pool.QueryRow(ctx, "SELECT origin FROM log_head WHERE id = 1").Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows) && s.origin == "":
		return errors.New("a new store needs the name of its log (its origin), such as consent.example.com/log")
	case errors.Is(err, pgx.ErrNoRows):
		if err := translog.CheckOrigin(s.origin); err != nil {
			return err
		}
		if _, err := s.pool.Exec(ctx, "INSERT INTO log_head (id, origin) VALUES (1, $1) ON CONFLICT (id) DO NOTHING", s.origin); err != nil {
			return err
		}
		return s.open(ctx)
	case err != nil:
		return err
	case s.origin == "":
		s.origin = stored
	case stored != s.origin:
		return fmt.Errorf("the store's log is %q, but the configuration names %q: a log's name never changes", stored, s.origin)
	}
	switch m, err := readMarks(ctx, s.pool, false); {
	case err != nil:
		return err
	case m.refusal() != nil:
		return m.refusal()
	}
	if err := s.PublishKeys(ctx, s.keys); err != nil {
		return err
	}
	if _, _, err := s.LearnKeys(ctx); err != nil {
		return err
	}
	if err := s.openLog(ctx); err != nil {
		return err
	}
	var counted bool
	if err := s.pool.QueryRow(ctx, "SELECT stats_counted FROM log_head WHERE id = 1").Scan(&counted); err != nil || counted {
		return err
	}
	_, err = s.RebuildStats(ctx)
	return err
}

// Close answers the appends already queued, integrating them if this instance is the
// sequencer, then gives up the lease and releases the store's connections; later
// appends get consent.ErrUnavailable. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writer.Close()
		s.stop()
		s.background.Wait()
		s.pool.Close()
	})
	return nil
}

// Origin returns the name of the store's log.
func (s *Store) Origin() string { return s.origin }

// connect opens one connection, outside any pool, for work that holds one for its
// whole length (Migrate).
func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return conn, nil
}

// connectStore opens one connection, outside any pool, to a database whose schema
// is this consentd's, for a command that holds it for its whole length.
func connectStore(ctx context.Context, url string) (*pgx.Conn, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(ctx, conn); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}

// querier is what both a pool and a transaction query through.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// fail stops the store taking appends, for err, and refuses those waiting.
func (s *Store) fail(err error) {
	s.failed.CompareAndSwap(nil, &err)
	s.waiting.refuseAll(fmt.Errorf("postgres: append: %w", s.failure()))
}

// failure returns why the store takes no more appends, nil if it takes them.
func (s *Store) failure() error {
	if err := s.failed.Load(); err != nil {
		return fmt.Errorf("the store takes no more records until consentd restarts: %v: %w", *err, consent.ErrUnavailable)
	}
	return nil
}

// Ready returns an error while the store takes no appends: it is closed, or its log
// in the database is not the one it signed.
func (s *Store) Ready() error {
	if s.writer.Closed() {
		return fmt.Errorf("postgres: store closed: %w", consent.ErrUnavailable)
	}
	if err := s.failure(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// LogSize returns how many leaves the newest checkpoint this instance saw signs.
func (s *Store) LogSize() int64 { return s.head.Load().Size }

// QueueDepth returns how many appends wait for the writer now.
func (s *Store) QueueDepth() int { return s.writer.Depth() }

// QueueCapacity returns how many appends may wait before Append refuses more.
func (s *Store) QueueCapacity() int { return s.writer.Capacity() }

// FileSize returns the size of the database on disk, indexes and WAL aside.
func (s *Store) FileSize() (int64, error) {
	var n int64
	if err := s.pool.QueryRow(context.Background(), "SELECT pg_database_size(current_database())").Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: size: %w", err)
	}
	return n, nil
}

// HasLog reports whether the database at url holds a store's log already: a
// database that does not is where a new store is made.
func HasLog(ctx context.Context, url string) (bool, error) {
	conn, err := connect(ctx, url)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var found bool
	err = conn.QueryRow(ctx, "SELECT to_regclass('log_head') IS NOT NULL").Scan(&found)
	if err != nil || !found {
		return false, err
	}
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM log_head)").Scan(&found)
	return found, err
}
