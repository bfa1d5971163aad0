// Command dpo measures the DPO side at scale: it fills a store with -records records
// (default one million) through the group-commit writer, then times the proof lookup
// by consent id (each record with its inclusion proof), a full export over loopback
// HTTP as NDJSON and as CSV, the log's verification (the tree rebuilt), a backup
// while appends go on and its verification, and the store's open from a cold cache,
// with the heap it takes. Run it from the repository's root with `make bench`.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sys/unix"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/move"
	"github.com/mixvoip/consentd/store/postgres"
)

func main() {
	n := flag.Int("records", 1_000_000, "records to fill the store with")
	kind := flag.String("store", "bolt", "the store: bolt (a file), or postgres (a throwaway cluster of Debian's postgresql, fsync on)")
	fresh := flag.String("fresh", "", "(for the benchmark itself) open this bbolt file in this new process, with the keys of -keys, and report")
	keysDir := flag.String("keys", "", "with -fresh: the keys' directory")
	flag.Parse()
	if *fresh != "" {
		if err := openFresh(*fresh, *keysDir); err != nil {
			fmt.Fprintln(os.Stderr, "dpo: fresh process:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *kind); err != nil {
		fmt.Fprintln(os.Stderr, "dpo:", err)
		os.Exit(1)
	}
}

// benchStore is a store the benchmark measures.
type benchStore interface {
	consent.Store
	FileSize() (int64, error)
}

func run(n int, kind string) error {
	dir, err := os.MkdirTemp("", "consentd-bench-dpo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// In a directory, for the fresh process that opens the store after the fill.
	keysDir := filepath.Join(dir, "keys")
	if _, err := proof.Generate(keysDir, time.Now(), false); err != nil {
		return err
	}
	keys, err := proof.LoadKeyring(keysDir)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var open func(origin string) (benchStore, error)
	var moved func() error // the copy of the store to the other backend and back
	settle := func() error { return nil }
	switch kind {
	case "bolt":
		path := filepath.Join(dir, "consent.db")
		open = func(origin string) (benchStore, error) {
			return bolt.Open(path, bolt.Log(origin, keys), bolt.QueueSize(1<<16))
		}
	case "postgres":
		cluster, err := pgtest.Start(pgtest.Durable)
		if err != nil {
			return err
		}
		defer cluster.Stop()
		url, err := cluster.NewDatabase(ctx)
		if err != nil {
			return err
		}
		if _, err := postgres.Migrate(ctx, url); err != nil {
			return err
		}
		open = func(origin string) (benchStore, error) {
			return postgres.Open(ctx, url, postgres.Options{Origin: origin, Keys: keys, QueueSize: 1 << 16})
		}
		moved = func() error { return copyBothWays(ctx, cluster, url, filepath.Join(dir, "copy.db"), keys) }
		// What autovacuum does minutes after a bulk load, and pg_restore's own
		// documentation asks for after a restore: without statistics, the planner
		// guesses badly for tables filled in one go.
		settle = func() error {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, "ANALYZE")
			return err
		}
	default:
		return fmt.Errorf("bad -store %q: bolt or postgres", kind)
	}
	store, err := open(origin)
	if err != nil {
		return err
	}
	snap := &consent.Snapshot{Site: benchSite.Key, Fingerprint: benchFingerprint, CreatedAt: time.Now().UTC(),
		Controller: benchSite.Controller, Policy: benchSite.Policy}
	if err := store.PutSnapshot(ctx, snap); err != nil {
		return err
	}
	ids, took, err := fill(ctx, store, n)
	if err != nil {
		return err
	}
	fmt.Printf("filled %d records in %s (%.0f records/s, 64 writers)\n", n, took.Round(time.Millisecond), float64(n)/took.Seconds())

	if err := lookUp(ctx, store, ids, "right after the fill"); err != nil {
		return err
	}

	if err := exportOverHTTP(store, keys); err != nil {
		return err
	}

	t0 := time.Now()
	v, err := store.Verify(ctx)
	if err != nil || !v.OK {
		return fmt.Errorf("verify: %+v, %v", v, err)
	}
	fmt.Printf("log verification: %d leaves, %d records in %s\n", v.Leaves, v.Records, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	counted, err := store.RebuildStats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("statistics rebuilt: %d records counted in %s (%.0f records/s)\n", counted, time.Since(t0).Round(time.Millisecond), float64(counted)/time.Since(t0).Seconds())
	if b, ok := store.(*bolt.Store); ok {
		if err := backup(ctx, b, keys, filepath.Join(dir, "backup.db")); err != nil {
			return err
		}
	}
	if err := store.Close(); err != nil {
		return err
	}
	if err := evict(filepath.Join(dir, "consent.db")); err != nil {
		return err
	}
	heap := heapInUse()
	t0 = time.Now()
	if store, err = open(""); err != nil {
		return err
	}
	fmt.Printf("open (bbolt: from a cold cache; PostgreSQL: the log's head checked): %s, heap %+.1f MiB\n",
		time.Since(t0).Round(time.Millisecond), float64(heapInUse()-heap)/(1<<20))
	if kind == "bolt" {
		if err := store.Close(); err != nil {
			return err
		}
		if err := evict(filepath.Join(dir, "consent.db")); err != nil {
			return err
		}
		// A process that has never seen the store, as consentd after a restart.
		cmd := exec.Command(os.Args[0], "-fresh", filepath.Join(dir, "consent.db"), "-keys", keysDir)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return err
		}
		if store, err = open(""); err != nil {
			return err
		}
	}
	size, err := store.FileSize()
	if err != nil {
		return err
	}
	fmt.Printf("store (%s): %d MiB, %d bytes per record\n", kind, size>>20, size/int64(n))
	if err := settle(); err != nil {
		return err
	}
	if err := lookUp(ctx, store, ids, "settled (PostgreSQL: once analyzed)"); err != nil {
		return err
	}
	if err := store.Close(); err != nil || moved == nil {
		return err
	}
	return moved()
}

// openFresh opens the bbolt file at path in this process, which has done nothing
// else, and reports how long it took and the process's resident memory then and
// after statistics of every day and a thousand proof lookups.
func openFresh(path, keysDir string) error {
	keys, err := proof.LoadKeyring(keysDir)
	if err != nil {
		return err
	}
	before := residentMiB()
	t0 := time.Now()
	store, err := bolt.Open(path, bolt.Log("", keys))
	if err != nil {
		return err
	}
	defer store.Close()
	took := time.Since(t0)
	opened := residentMiB()
	ctx := context.Background()
	if _, err := store.Stats(ctx, nil, "", ""); err != nil {
		return err
	}
	for range 1000 {
		if _, err := store.RecordsByConsent(ctx, uuid.NewString()); err != nil {
			return err
		}
	}
	fmt.Printf("a fresh process opens the store from a cold cache in %s: resident memory %.0f MiB before, %.0f MiB open, %.0f MiB after statistics of every day and 1,000 lookups\n",
		took.Round(time.Millisecond), before, opened, residentMiB())
	return nil
}

// residentMiB returns this process's resident memory (VmRSS), in MiB.
func residentMiB() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// evict drops the file at path, if there is one, from the page cache, so that the
// next open reads it from the disk, as after a reboot: posix_fadvise, which needs no
// root, for pages that are clean (the store is closed, hence synced).
func evict(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// heapInUse returns the bytes of the heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// copyBothWays times consentd copy of the PostgreSQL store at url into a new bbolt
// file at path, and of that file into a new database of cluster, each followed by
// the copy's verification.
func copyBothWays(ctx context.Context, cluster *pgtest.Cluster, url, path string, keys *proof.Keyring) error {
	to, err := cluster.NewDatabase(ctx)
	if err == nil {
		_, err = postgres.Migrate(ctx, to)
	}
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name     string
		from     func(copy func(move.Source) error) error
		fill     func(fill func(move.Destination) error) error
		openCopy func() (benchStore, error)
	}{
		{"PostgreSQL to bbolt",
			func(copy func(move.Source) error) error { return postgres.Move(ctx, url, path, copy) },
			func(fill func(move.Destination) error) error { return bolt.Fill(path, url, fill) },
			func() (benchStore, error) {
				if err := bolt.Complete(path, url); err != nil {
					return nil, err
				}
				return bolt.Open(path, bolt.Log("", keys))
			}},
		{"bbolt to PostgreSQL",
			func(copy func(move.Source) error) error { return bolt.Move(path, to, copy) },
			func(fill func(move.Destination) error) error { return postgres.Fill(ctx, to, path, fill) },
			func() (benchStore, error) {
				if err := postgres.Complete(ctx, to, path); err != nil {
					return nil, err
				}
				return postgres.Open(ctx, to, postgres.Options{Keys: keys})
			}},
	} {
		t0 := time.Now()
		copied, err := move.Move(ctx, c.from, c.fill, keys, func(*move.Copied) error { return nil })
		if err != nil {
			return fmt.Errorf("copy %s: %w", c.name, err)
		}
		took := time.Since(t0)
		s, err := c.openCopy()
		if err != nil {
			return err
		}
		t0 = time.Now()
		v, err := s.Verify(ctx, copied.Checkpoint)
		verified := time.Since(t0)
		size, sizeErr := s.FileSize()
		if closeErr := s.Close(); err == nil {
			err = errors.Join(sizeErr, closeErr)
		}
		if err != nil || !v.OK {
			return fmt.Errorf("verify the copy %s: %+v, %v", c.name, v, err)
		}
		fmt.Printf("consentd copy %s: %d records in %s (%.0f records/s), the copy verified in %s, %d bytes per record\n",
			c.name, copied.Records, took.Round(time.Millisecond), float64(copied.Records)/took.Seconds(), verified.Round(time.Millisecond), size/int64(max(copied.Records, 1)))
	}
	return nil
}

// lookUp times 1,000 proof lookups by consent id, as GET /v1/consents/{id} makes
// them: the records of one consent, each with its inclusion proof.
func lookUp(ctx context.Context, store consent.RecordStore, ids []string, when string) error {
	var took []time.Duration
	for i := range 1000 {
		t0 := time.Now()
		recs, err := store.RecordsByConsent(ctx, ids[(i*7919)%len(ids)])
		if err != nil || len(recs) != 1 {
			return fmt.Errorf("lookup: %d records, %v", len(recs), err)
		}
		took = append(took, time.Since(t0))
	}
	slices.Sort(took)
	fmt.Printf("proof lookup by consent id, %s: p50 %s, p99 %s (1,000 lookups)\n", when, took[500].Round(time.Microsecond), took[990].Round(time.Microsecond))
	return nil
}

// backup times what consentd serve --backup-dir does: a copy of the store written
// while appends go on, then the copy's verification.
func backup(ctx context.Context, store *bolt.Store, keys *proof.Keyring, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	appendCtx, stop := context.WithCancel(ctx)
	var appended atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for appendCtx.Err() == nil {
			r, err := newRecord(uuid.NewString(), 0, 0)
			if err == nil {
				_, err = store.Append(ctx, r)
			}
			if err != nil {
				return
			}
			appended.Add(1)
		}
	}()
	t0 := time.Now()
	n, err := store.WriteBackup(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	took := time.Since(t0)
	stop()
	<-done
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	verifier, err := keys.LogVerifier(origin)
	if err != nil {
		return err
	}
	t0 = time.Now()
	v, err := bolt.VerifyFile(ctx, path, verifier)
	if err != nil || !v.OK {
		return fmt.Errorf("verify the backup: %+v, %v", v, err)
	}
	fmt.Printf("backup: %d MiB written and synced in %s (%d records appended meanwhile by one writer), verified in %s\n",
		n>>20, took.Round(time.Millisecond), appended.Load(), time.Since(t0).Round(time.Millisecond))
	return nil
}

// fill appends n records with 64 writers and returns their consent ids.
func fill(ctx context.Context, store consent.RecordStore, n int) ([]string, time.Duration, error) {
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	t0 := time.Now()
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 64 {
				ids[i] = uuid.NewString()
				// Oldest first, as they would have come: a commit counts one day.
				r, err := newRecord(ids[i], i, benchDays-1-i*benchDays/n)
				if err == nil {
					_, err = store.Append(ctx, r)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return ids, time.Since(t0), <-errs
}

// origin names the benchmark's log.
const origin = "localhost/consentd-bench"

// benchFingerprint is the fingerprint of the banner the records answer.
const benchFingerprint = "421ff2071a8b7fd2"

// benchSite is the site of the records, as the server stores its snapshot before
// serving the banner.
var benchSite = &consent.Site{
	Key: "mixvoip.com", Controller: consent.Controller{Name: "MIXVOIP S.A.", Address: "70, rue des Prés, L-7333 Steinsel, Luxembourg", Email: "dpo@mixvoip.com", Jurisdiction: "LU"},
	Policy: consent.Policy{URL: "https://www.mixvoip.com/privacy-policy", Version: "2021-09-13"},
	Cookie: consent.CookieSettings{ConsentLifetime: 182 * 24 * time.Hour, RefusalLifetime: 182 * 24 * time.Hour},
}

// benchDays and benchLanguages spread the records as five years of a site in four
// languages would: the counters of statistics then hold a key per day and language.
const benchDays = 5 * 365

var benchLanguages = []string{"en", "fr", "de", "lb"}

// newRecord returns a realistic record of about the size the server stores, the
// i-th of the fill, days ago, in one of benchLanguages.
func newRecord(consentID string, i, days int) (*consent.Record, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	d := &consent.Decision{
		Site: benchSite.Key, ConsentID: consentID, Action: consent.ActionRejectAll,
		Choices: consent.Choices{
			Categories: map[string]bool{"technical": true, "advertising": false},
			Partners:   map[string]bool{"google-ads": false, "meta-pixel": false, "linkedin-insight": false},
		},
		Fingerprint: benchFingerprint, Language: benchLanguages[i%len(benchLanguages)], Surface: consent.SurfaceBanner,
		URL: "https://www.mixvoip.com/pricing",
	}
	r := d.Record(benchSite, consent.Arrival{
		RecordID:  id.String(),
		At:        time.Now().UTC().Truncate(time.Millisecond).Add(-time.Duration(days) * 24 * time.Hour),
		Client:    netip.MustParseAddr("203.0.113.9"),
		UserAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36",
	})
	return r, nil
}

// statsOverHTTP times GET /v1/dpo/stats of the whole store, every day of five
// years, as the DPO's overview asks for it, and reports the median and the 99th
// percentile of 200 calls.
func statsOverHTTP(url, token string) error {
	took := make([]time.Duration, 200)
	var days int
	for i := range took {
		t0 := time.Now()
		resp, err := getDPO(url+"/v1/dpo/stats", token)
		if err != nil {
			return err
		}
		var doc struct{ Days []json.RawMessage }
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		took[i] = time.Since(t0)
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("stats: status %d, %v", resp.StatusCode, err)
		}
		days = len(doc.Days)
	}
	slices.Sort(took)
	fmt.Printf("stats over HTTP, %d days of counters: p50 %s, p99 %s\n", days, took[len(took)/2].Round(10*time.Microsecond), took[len(took)*99/100].Round(10*time.Microsecond))
	return nil
}

// getDPO sends a GET of the DPO API at url with token.
func getDPO(url, token string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return http.DefaultClient.Do(req)
}

// exportOverHTTP downloads every record through GET /v1/dpo/export, as the DPO's
// `consentd export` does, once per format, and reports the rate and the heap in use
// while it runs.
func exportOverHTTP(store consent.Store, keys *proof.Keyring) error {
	cfg, err := config.Load("sites.yaml")
	if err != nil {
		return err
	}
	srv := server.New(store, server.Options{Keys: keys, Origin: origin, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.Load(cfg); err != nil {
		return err
	}
	tokens := &auth.Tokens{}
	token, err := tokens.Add("bench", nil, time.Now())
	if err != nil {
		return err
	}
	srv.SetTokens(tokens)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	if err := statsOverHTTP(ts.URL, token); err != nil {
		return err
	}

	for _, format := range []string{"ndjson", "csv"} {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
		t0 := time.Now()
		resp, err := getDPO(ts.URL+"/v1/dpo/export?format="+format, token)
		if err != nil {
			return err
		}
		lines, size := 0, 0
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines++
			size += len(sc.Bytes()) + 1
		}
		resp.Body.Close()
		took := time.Since(t0)
		close(stop)
		<-sampled
		if err := sc.Err(); err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("export %s: status %d, %v", format, resp.StatusCode, err)
		}
		if format == "csv" {
			lines-- // the header
		}
		fmt.Printf("export over HTTP, %s: %d records, %d MiB in %s (%.0f records/s), heap in use at most %d MiB (%d MiB before)\n",
			format, lines, size>>20, took.Round(time.Millisecond), float64(lines)/took.Seconds(), peak.Load()>>20, before.HeapInuse>>20)
	}
	return nil
}
