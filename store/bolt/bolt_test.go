package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(tb testing.TB) func() consent.Store {
		// A directory that does not exist yet: Open creates it.
		path := filepath.Join(tb.TempDir(), "data", "consent.db")
		return func() consent.Store {
			tb.Helper()
			s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
			if err != nil {
				tb.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}

func TestAppendInvalid(t *testing.T) {
	t.Parallel()
	s := MustOpen(t, filepath.Join(t.TempDir(), "consent.db"))
	tests := []struct {
		name   string
		record func(tb testing.TB) *consent.Record
	}{
		{"NilRecord", func(testing.TB) *consent.Record { return nil }},
		{"EmptyID", func(tb testing.TB) *consent.Record {
			r := storetest.NewRecord(tb, storetest.MustNewID(tb), storetest.Now())
			r.ID = ""
			return r
		}},
		{"IDNotUUID", func(tb testing.TB) *consent.Record {
			r := storetest.NewRecord(tb, storetest.MustNewID(tb), storetest.Now())
			r.ID = "rec-1"
			return r
		}},
		{"ConsentIDNotUUID", func(tb testing.TB) *consent.Record {
			return storetest.NewRecord(tb, "visitor-1", storetest.Now())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := s.Append(context.Background(), tt.record(t))
			if code := consent.ErrorCode(err); code != consent.EInvalid {
				t.Fatalf("got %v (code %q), want code %q", err, code, consent.EInvalid)
			}
		})
	}
}

func TestAppendQueueFull(t *testing.T) {
	t.Parallel()
	w := newWriterHold()
	s := MustOpen(t, filepath.Join(t.TempDir(), "consent.db"), QueueSize(1), w.option())
	consentID := storetest.MustNewID(t)

	inCommit := appendAsync(t, s, context.Background(), storetest.NewRecord(t, consentID, storetest.Now()))
	w.mustHold(t)
	queued := appendAsync(t, s, context.Background(), storetest.NewRecord(t, consentID, storetest.Now()))
	mustQueueLen(t, s, 1)

	rejected := storetest.NewRecord(t, consentID, storetest.Now())
	start := time.Now()
	_, err := s.Append(context.Background(), rejected)
	if !errors.Is(err, consent.ErrUnavailable) {
		t.Fatalf("Append on a full queue: got %v, want an error wrapping consent.ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Append on a full queue took %v, want an immediate answer", d)
	}

	w.release()
	for _, res := range []<-chan error{inCommit, queued} {
		if err := <-res; err != nil {
			t.Fatalf("queued Append: %v", err)
		}
	}
	for _, r := range storetest.MustRecordsByConsent(t, s, consentID) {
		if r.ID == rejected.ID {
			t.Fatalf("rejected record %s was stored", r.ID)
		}
	}
	if n := len(storetest.MustRecordsByConsent(t, s, consentID)); n != 2 {
		t.Fatalf("got %d records, want the 2 accepted", n)
	}
}

func TestAppendContextDoneWhileQueued(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "consent.db")
	w := newWriterHold()
	s := MustOpen(t, path, w.option())
	consentID := storetest.MustNewID(t)

	inCommit := appendAsync(t, s, context.Background(), storetest.NewRecord(t, consentID, storetest.Now()))
	w.mustHold(t)
	ctx, cancel := context.WithCancel(context.Background())
	queued := appendAsync(t, s, ctx, storetest.NewRecord(t, consentID, storetest.Now()))
	mustQueueLen(t, s, 1)
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("Append whose context ends while queued: got %v, want context.Canceled", err)
	}

	w.release()
	if err := <-inCommit; err != nil {
		t.Fatalf("Append: %v", err)
	}
	// Documented behaviour: a record already queued is still committed.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = MustOpen(t, path)
	if n := len(storetest.MustRecordsByConsent(t, s, consentID)); n != 2 {
		t.Fatalf("got %d records, want 2", n)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	t.Parallel()
	const queued = 10
	path := filepath.Join(t.TempDir(), "consent.db")
	w := newWriterHold()
	s := MustOpen(t, path, w.option())
	consentID := storetest.MustNewID(t)

	results := []<-chan error{appendAsync(t, s, context.Background(), storetest.NewRecord(t, consentID, storetest.Now()))}
	w.mustHold(t)
	for range queued {
		results = append(results, appendAsync(t, s, context.Background(), storetest.NewRecord(t, consentID, storetest.Now())))
	}
	mustQueueLen(t, s, queued)

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	wait.MustUntil(t, "store closed to appends", func() (bool, string) {
		return s.writer.Closed(), "the store still takes appends"
	})
	late := storetest.NewRecord(t, consentID, storetest.Now())
	if _, err := s.Append(context.Background(), late); !errors.Is(err, consent.ErrUnavailable) {
		t.Fatalf("Append while closing: got %v, want an error wrapping consent.ErrUnavailable", err)
	}

	w.release()
	for i, res := range results {
		if err := <-res; err != nil {
			t.Errorf("Append %d queued before Close: %v", i, err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = MustOpen(t, path)
	if n := len(storetest.MustRecordsByConsent(t, s, consentID)); n != len(results) {
		t.Fatalf("after reopen: got %d records, want %d", n, len(results))
	}
}

func TestOpenLocked(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "consent.db")
	MustOpen(t, path)

	start := time.Now()
	s, err := Open(path, Log(storetest.Origin, storetest.Keys())) // the default lock timeout, 1 s
	elapsed := time.Since(start)
	if err == nil {
		_ = s.Close()
		t.Fatal("second Open of a locked file: got nil error")
	}
	if !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("second Open: got %v, want an error wrapping bbolt's ErrTimeout", err)
	}
	if elapsed > DefaultLockTimeout+2*time.Second {
		t.Errorf("second Open took %v, want about %v", elapsed, DefaultLockTimeout)
	}
}

func TestOpenInvalidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  Option
	}{
		{"QueueSizeZero", QueueSize(0)},
		{"MaxBatchZero", MaxBatch(0)},
		{"LockTimeoutZero", LockTimeout(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := Open(filepath.Join(t.TempDir(), "consent.db"), tt.opt)
			if err == nil {
				_ = s.Close()
				t.Fatal("got nil error")
			}
		})
	}
}

// BenchmarkAppend measures durable appends with a fixed number of concurrent writers,
// each with its own consent id, as visitors on many pages. It starts the writers
// itself because RunParallel starts a multiple of GOMAXPROCS goroutines, which cannot
// express a single writer.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := MustOpen(b, filepath.Join(b.TempDir(), "consent.db"))
			templates := make([]*consent.Record, writers)
			for i := range templates {
				templates[i] = storetest.NewRecord(b, storetest.MustNewID(b), storetest.Now())
			}
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for _, template := range templates {
				wg.Go(func() {
					for n.Add(1) <= int64(b.N) {
						r := *template
						r.ID = uuid.Must(uuid.NewV7()).String()
						if _, err := s.Append(context.Background(), &r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// MustOpen opens the store at path, its log named and signed as storetest's, and
// closes it when tb ends.
func MustOpen(tb testing.TB, path string, opts ...Option) *Store {
	tb.Helper()
	s, err := Open(path, append([]Option{Log(storetest.Origin, storetest.Keys())}, opts...)...)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// writerHold stops the writer before its next commit until released, so tests can
// fill the queue deterministically.
type writerHold struct {
	entered  chan int
	released chan struct{}
	once     sync.Once
}

func newWriterHold() *writerHold {
	return &writerHold{entered: make(chan int, 1), released: make(chan struct{})}
}

func (w *writerHold) option() Option {
	return func(c *options) {
		c.beforeCommit = func(n int) {
			select {
			case w.entered <- n:
			default:
			}
			<-w.released
		}
	}
}

// mustHold waits until the writer is held with one request taken off the queue.
func (w *writerHold) mustHold(tb testing.TB) {
	tb.Helper()
	// Cleanups run last registered first: registered after MustOpen's, this release
	// runs before Close, which would otherwise wait forever for the held writer when
	// a test fails early.
	tb.Cleanup(w.release)
	select {
	case n := <-w.entered:
		if n != 1 {
			tb.Fatalf("writer holds %d requests, want 1", n)
		}
	case <-wait.Timeout(tb):
		tb.Fatal("writer never started a commit")
	}
}

func (w *writerHold) release() { w.once.Do(func() { close(w.released) }) }

// appendAsync appends r in a new goroutine and returns where its result arrives.
func appendAsync(tb testing.TB, s *Store, ctx context.Context, r *consent.Record) <-chan error {
	tb.Helper()
	res := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, r)
		res <- err
	}()
	return res
}

func mustQueueLen(tb testing.TB, s *Store, n int) {
	tb.Helper()
	wait.MustUntil(tb, fmt.Sprintf("%d requests queued", n), func() (bool, string) {
		depth := s.QueueDepth()
		return depth == n, fmt.Sprintf("%d queued", depth)
	})
}

// TestOpenAnotherLog: a store opens only under the name its log was created with, or
// none, and only with keys that verify its latest checkpoint; a new store needs a
// valid name.
func TestOpenAnotherLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consent.db")
	s := MustOpen(t, path)
	storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	other, err := proof.NewEphemeralKeyring()
	if err != nil {
		t.Fatal(err)
	}
	for name, opt := range map[string]Option{
		"another origin": Log("other.example/log", storetest.Keys()),
		"another key":    Log(storetest.Origin, other),
	} {
		t.Run(name, func(t *testing.T) {
			if s, err := Open(path, opt); err == nil {
				s.Close()
				t.Error("opened")
			}
		})
	}
	reopened := MustOpen(t, path, Log("", storetest.Keys()))
	if reopened.Origin() != storetest.Origin {
		t.Errorf("opened without an origin, the store's log is %q, want the stored %q", reopened.Origin(), storetest.Origin)
	}
	for _, origin := range []string{"two words", ""} {
		if s, err := Open(filepath.Join(t.TempDir(), "new.db"), Log(origin, storetest.Keys())); err == nil {
			s.Close()
			t.Errorf("created a log named %q", origin)
		}
	}
}

// TestOpenStoreBeforeTheLog: a store of the first format (a hash chain, no log) is
// refused with a message that says so, and left as it was.
func TestOpenStoreBeforeTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consent.db")
	MustTamper(t, path, func(tx *bolt.Tx) error {
		for _, name := range []string{"records", "chain", "checkpoints", "meta"} {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Log(storetest.Origin, storetest.Keys()))
	if err == nil {
		s.Close()
		t.Fatal("opened")
	}
	if !strings.Contains(err.Error(), "before the transparency log") {
		t.Errorf("Open: %v; want it to say the store is of the format before the log", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the refused store was changed")
	}
}

// MustTamper changes the file directly, as someone with access to the disk could.
func MustTamper(tb testing.TB, path string, f func(tx *bolt.Tx) error) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(f); err != nil {
		tb.Fatal(err)
	}
}

// TestReady: an open store is ready; a closed one is not.
func TestReady(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "consent.db"))
	if err := s.Ready(); err != nil {
		t.Fatalf("an open store: %v", err)
	}
	s.Close()
	if err := s.Ready(); consent.ErrorCode(err) != consent.EUnavailable {
		t.Errorf("a closed store: %v, want unavailable", err)
	}
}

// TestObserve: what the metrics read of a store. OnCommit hears every transaction
// before its appends are answered, the queue's depth and capacity are those of the
// writer's queue.
func TestObserve(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var batches []int
	w := newWriterHold()
	path := filepath.Join(t.TempDir(), "consent.db")
	s := MustOpen(t, path, QueueSize(8), w.option(), OnCommit(func(records int, took time.Duration) {
		if took <= 0 {
			t.Errorf("a commit took %v", took)
		}
		mu.Lock()
		defer mu.Unlock()
		batches = append(batches, records)
	}))
	if got := s.QueueCapacity(); got != 8 {
		t.Errorf("QueueCapacity = %d, want 8", got)
	}
	consentID := storetest.MustNewID(t)
	results := []<-chan error{appendAsync(t, s, context.Background(), storetest.NewRecord(t, consentID, storetest.Now()))}
	w.mustHold(t)
	for range 3 {
		results = append(results, appendAsync(t, s, context.Background(), storetest.NewRecord(t, consentID, storetest.Now())))
	}
	mustQueueLen(t, s, 3)
	w.release()
	for _, res := range results {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if !slices.Equal(batches, []int{1, 3}) {
		t.Errorf("OnCommit heard batches of %v records once all were answered, want [1 3]", batches)
	}
	mu.Unlock()
	if got := s.QueueDepth(); got != 0 {
		t.Errorf("QueueDepth after the commits = %d", got)
	}

	size, err := s.FileSize()
	if fi, statErr := os.Stat(path); err != nil || statErr != nil || size != fi.Size() || size == 0 {
		t.Errorf("FileSize = %d, %v; the file has %v", size, err, fi)
	}
}

// TestFailedCommitStops: after a transaction of appends fails, the store answers
// that batch with the error and takes no more appends, and says so in Ready; opened
// again, it takes appends and its log verifies.
func TestFailedCommitStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "consent.db")
	var fail, hold atomic.Bool
	inCommit, release := make(chan struct{}), make(chan struct{})
	s := MustOpen(t, path, func(c *options) {
		c.beforeCommit = func(int) {
			if hold.CompareAndSwap(true, false) {
				close(inCommit)
				<-release
			}
		}
		c.failCommit = func() error {
			if fail.Swap(false) {
				return errors.New("disk failed")
			}
			return nil
		}
	})
	storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))

	// One commit fails while another append waits in the queue.
	fail.Store(true)
	hold.Store(true)
	failed := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
		failed <- err
	}()
	<-inCommit
	queued := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
		queued <- err
	}()
	for s.QueueDepth() == 0 {
		runtime.Gosched()
	}
	close(release)
	if err := <-failed; err == nil || !strings.Contains(err.Error(), "disk failed") {
		t.Fatalf("an append in a failed transaction: %v, want the disk's error", err)
	}
	// Its transaction would succeed, but on what bbolt holds in memory.
	if err := <-queued; !errors.Is(err, consent.ErrUnavailable) {
		t.Errorf("an append queued while a commit failed: %v, want it refused", err)
	}
	_, err := s.Append(context.Background(), storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	if !errors.Is(err, consent.ErrUnavailable) || !strings.Contains(err.Error(), "until consentd restarts") {
		t.Errorf("an append after a failed commit: %v, want it refused", err)
	}
	if err := s.Ready(); !errors.Is(err, consent.ErrUnavailable) {
		t.Errorf("Ready after a failed commit: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = MustOpen(t, path)
	storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	if v, err := s.Verify(context.Background()); err != nil || !v.OK || v.Leaves != 2 {
		t.Errorf("reopened: %+v, %v", v, err)
	}
}
