package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/chromium"
	"github.com/mixvoip/consentd/metrics"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/scan"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/translog"
)

// serve is `consentd serve`: it starts, serves until ctx is done (SIGINT or
// SIGTERM), then stops in order; a server that fails stops it too, with its error.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := NewMain(stdout, stderr)
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	if err := m.Run(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		m.logger.Info("shutting down")
		return m.Close()
	case err := <-m.Failed():
		m.Close() // the failure is what to report
		return err
	}
}

// Main is `consentd serve`: the wiring of configuration, store and HTTP server, in a
// form tests can drive (ParseFlags, Run, Close).
type Main struct {
	Addr           string
	AdminAddr      string // serves /metrics (and with DPOOnAdmin the DPO API) instead of Addr
	DPOOnAdmin     bool
	ConfigPath     string
	DBPath         string        // a bbolt file, or a postgres:// URL
	DBFile         string        // a file holding the postgres:// URL, password and all
	Migrate        bool          // migrate a PostgreSQL database's schema before opening it
	Lease          time.Duration // the sequencer's lease on a PostgreSQL store
	KeysDir        string
	Origin         string // the name of the store's log: required to create it, else the stored one
	TokensPath     string
	NewStore       bool // start a new store although the key directory holds keys
	Demo           bool
	TrustedProxies []netip.Prefix
	ConsentLimit   server.Limit
	AuthFailures   server.Limit
	LimitClients   int
	MinFreeDisk    uint64
	AuditRetention time.Duration
	ReloadEvery    time.Duration
	PurgeEvery     time.Duration
	BackupDir      string // scheduled backups: none without
	BackupEvery    time.Duration
	BackupKeep     int
	ScanDir        string        // scan reports the console shows: none without
	ScanEvery      time.Duration // scan the sites this often, into ScanDir; 0 for never
	Scan           scanFlags
	LogFormat      string // json or text; "" for text on a terminal, json otherwise

	stdout, stderr io.Writer
	logger         *slog.Logger
	// reloaded, if set, hears of every attempt to reload a watched file: its path, its
	// modification time when read, and why it was not reloaded (nil if it was), so
	// that tests can wait for a reload instead of guessing how long one takes.
	reloaded func(path string, modTime time.Time, err error)
	// backedUp, if set, hears of every scheduled backup: the copy's path and why it
	// failed (nil if it did not).
	backedUp func(path string, err error)
	// scanned, if set, hears of every scan of --scan-every: the report's name and
	// why the scan failed (nil if it did not).
	scanned func(name string, err error)
	// scanReports are those of ScanDir; nil without.
	scanReports *scan.Dir
	// metrics are those of the last Run, which the server, the store and the
	// watched files report to.
	metrics *metrics.Metrics

	// What Run started, which Close stops.
	listeners      []net.Listener // opened, not yet served: the servers close theirs
	addrs          []net.Addr     // where it serves: the public address, then the admin one
	db             database
	store          servedStore
	srv            *server.Server
	httpServers    []*http.Server
	failed         chan error         // a server's error, if one stops serving
	stopBackground context.CancelFunc // stops the reloads, the purge and the backups
	background     sync.WaitGroup     // those, until they stopped
}

// NewMain returns a Main with the defaults.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{
		stdout:      stdout,
		stderr:      stderr,
		logger:      slog.New(slog.NewTextHandler(stderr, nil)),
		ReloadEvery: 2 * time.Second,
		Lease:       postgres.DefaultLease,
		PurgeEvery:  purgeEvery,
		BackupEvery: 24 * time.Hour,
		BackupKeep:  14,
	}
}

// ParseFlags reads flags, each with an environment variable as its default.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("consentd serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.Addr, "addr", ":8080", "listen address ($CONSENTD_ADDR)")
	fs.StringVar(&m.ConfigPath, "config", "sites.yaml", "sites configuration ($CONSENTD_CONFIG)")
	fs.StringVar(&m.DBPath, "db", "data/consent.db", "the store: a bbolt database file, or a PostgreSQL database as postgres://user@host/db, its password in PGPASSFILE or PGPASSWORD, never here ($CONSENTD_DB)")
	fs.StringVar(&m.DBFile, "db-file", "", "a file holding the store's postgres:// URL, password included, instead of --db ($CONSENTD_DB_FILE)")
	fs.BoolVar(&m.Migrate, "migrate", false, "bring a PostgreSQL store's schema up to date before opening it, as consentd migrate does ($CONSENTD_MIGRATE=1)")
	fs.DurationVar(&m.Lease, "lease", m.Lease, "with a PostgreSQL store that several consentd share: how long the sequencer's lease lasts unless renewed, about how long records wait when the sequencer's instance dies ($CONSENTD_LEASE)")
	fs.StringVar(&m.TokensPath, "tokens", defaultTokensFile, "the DPO API's token file, for a bbolt store; a PostgreSQL store keeps them in its database ($CONSENTD_TOKENS)")
	fs.StringVar(&m.KeysDir, "keys", defaultKeysDir, "directory of the ed25519 signing keys ($CONSENTD_KEYS)")
	fs.StringVar(&m.Origin, "origin", "", "the name of the store's transparency log, such as consent.example.com/log: required to create a store, which keeps it for good; a store opened with another is refused ($CONSENTD_ORIGIN)")
	fs.BoolVar(&m.NewStore, "new-store", false, "start a new, empty store where --db is missing but --keys holds keys: only after moving the old store away on purpose (a first installation needs no flag; refused while --db exists)")
	fs.BoolVar(&m.Demo, "demo", false, "serve /demo/{site} pages and accept consents from the server's own origin ($CONSENTD_DEMO=1); never in production")
	proxies := fs.String("trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is trusted, and only those ($CONSENTD_TRUSTED_PROXIES)")
	fs.StringVar(&m.AdminAddr, "admin-addr", "", "a second listen address, such as 127.0.0.1:9090, for /metrics (and with --dpo-on-admin the DPO API), which the public one then does not serve ($CONSENTD_ADMIN_ADDR)")
	fs.BoolVar(&m.DPOOnAdmin, "dpo-on-admin", false, "serve the DPO API and console on --admin-addr only ($CONSENTD_DPO_ON_ADMIN=1)")
	m.ConsentLimit, m.AuthFailures = server.DefaultConsentLimit, server.DefaultAuthFailureLimit
	m.LimitClients, m.MinFreeDisk, m.AuditRetention = server.DefaultMaxClients, defaultMinFreeDisk, defaultAuditRetention
	fs.Var(rateFlag{&m.ConsentLimit.Rate}, "consent-limit", "decisions each client (IPv4 /24, IPv6 /48) may post, such as 2/s or 100/m; 0 for no limit ($CONSENTD_CONSENT_LIMIT)")
	fs.IntVar(&m.ConsentLimit.Burst, "consent-burst", m.ConsentLimit.Burst, "decisions a client may post at once, beyond --consent-limit ($CONSENTD_CONSENT_BURST)")
	fs.Var(rateFlag{&m.AuthFailures.Rate}, "auth-failure-limit", "DPO calls with a missing or wrong token each client may make, such as 10/m; 0 for no limit ($CONSENTD_AUTH_FAILURE_LIMIT)")
	fs.IntVar(&m.AuthFailures.Burst, "auth-failure-burst", m.AuthFailures.Burst, "such calls a client may make at once, beyond --auth-failure-limit ($CONSENTD_AUTH_FAILURE_BURST)")
	fs.IntVar(&m.LimitClients, "rate-limit-clients", m.LimitClients, "clients whose limits are kept in memory, about 40 bytes each ($CONSENTD_RATE_LIMIT_CLIENTS)")
	fs.Var(sizeFlag{&m.MinFreeDisk}, "min-free-disk", "below this much free space where --db lives, such as 512MiB, new records are refused (503) and /readyz fails; 0 for no check ($CONSENTD_MIN_FREE_DISK)")
	fs.StringVar(&m.LogFormat, "log-format", "", "json or text (default: text when stderr is a terminal, json otherwise) ($CONSENTD_LOG_FORMAT)")
	retentionDays := int(m.AuditRetention / (24 * time.Hour))
	fs.IntVar(&retentionDays, "audit-retention-days", retentionDays, "days the DPO API's audit log keeps an entry ($CONSENTD_AUDIT_RETENTION_DAYS)")
	fs.StringVar(&m.BackupDir, "backup-dir", "", "take verified copies of the store into this directory, named consent-<UTC time>.db; none without ($CONSENTD_BACKUP_DIR)")
	fs.DurationVar(&m.BackupEvery, "backup-every", m.BackupEvery, "with --backup-dir: the time between two copies, at least 1m ($CONSENTD_BACKUP_EVERY)")
	fs.IntVar(&m.BackupKeep, "backup-keep", m.BackupKeep, "with --backup-dir: the newest copies to keep ($CONSENTD_BACKUP_KEEP)")
	fs.StringVar(&m.ScanDir, "scan-dir", "", "the reports of consentd scan that the DPO console shows at /dpo/scans, and where --scan-every keeps its own ($CONSENTD_SCAN_DIR)")
	fs.DurationVar(&m.ScanEvery, "scan-every", 0, "with --scan-dir: scan the sites in headless Chromium this often, such as 24h, as consentd scan does; 0 for never ($CONSENTD_SCAN_EVERY)")
	m.Scan.register(fs, "scan-")
	if err := setFromEnvironment(fs, "new-store"); err != nil {
		return err
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	switch {
	case retentionDays < 1 || retentionDays > maxAuditRetentionDays:
		return fmt.Errorf("--audit-retention-days: %d, want 1 to %d", retentionDays, maxAuditRetentionDays)
	case m.ConsentLimit.Burst < 1 || m.AuthFailures.Burst < 1:
		return errors.New("--consent-burst and --auth-failure-burst: at least 1")
	case m.LimitClients < 1:
		return errors.New("--rate-limit-clients: at least 1")
	case m.Lease < 300*time.Millisecond:
		return errors.New("--lease: at least 300ms")
	case m.BackupEvery < time.Minute:
		return errors.New("--backup-every: at least 1m")
	case m.BackupKeep < 1:
		return errors.New("--backup-keep: at least 1")
	case m.DPOOnAdmin && m.AdminAddr == "":
		return errors.New("--dpo-on-admin needs --admin-addr: the DPO API would be served nowhere")
	case m.ScanEvery != 0 && m.ScanDir == "":
		return errors.New("--scan-every needs --scan-dir: where to keep the reports")
	case m.ScanEvery < 0 || m.ScanEvery > 0 && m.ScanEvery < time.Hour:
		return fmt.Errorf("--scan-every %s: at least 1h (a scan loads every page of every site three times), or 0 for never", m.ScanEvery)
	}
	if err := m.Scan.check("scan-"); err != nil {
		return err
	}
	if m.ScanEvery > 0 {
		if _, err := chromium.Find(); err != nil {
			return fmt.Errorf("--scan-every: %w", err)
		}
	}
	if m.ScanDir != "" {
		m.scanReports = scan.NewDir(m.ScanDir)
	}
	if err := checkOrigin(m.Origin); err != nil {
		return err
	}
	var err error
	if m.db, err = databaseOf(fs, m.DBPath, m.DBFile); err != nil {
		return err
	}
	if m.BackupDir != "" && m.db.url != "" {
		return errors.New("--backup-dir copies a bbolt store: back up a PostgreSQL store with the database's own tools (pg_basebackup, pg_dump)")
	}
	if m.logger, err = newLogger(m.stderr, m.LogFormat); err != nil {
		return err
	}
	m.AuditRetention = time.Duration(retentionDays) * 24 * time.Hour
	for _, s := range strings.Split(*proxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("--trusted-proxies: %q is not a CIDR such as 10.0.0.0/8", s)
		}
		m.TrustedProxies = append(m.TrustedProxies, p)
	}
	return nil
}

// Run starts `consentd serve` and returns once it serves; Close stops it. What Run
// starts in the background (the reloads, the purge, the backups) stops as soon as ctx
// is done, before Close finishes the requests in flight.
//
// A start that fails, on a port in use say, leaves nothing new behind: Run reads the
// configuration and the keys, listens, and only then opens the store (creating it on
// a first installation) and writes the first key it made; on failure it closes what
// it opened and removes what it created.
func (m *Main) Run(ctx context.Context) (err error) {
	var created []string
	defer func() {
		if err != nil {
			m.Close()
			for _, path := range created {
				os.Remove(path)
			}
		}
	}()
	m.metrics = metrics.New(version())
	files, err := m.readFiles()
	if err != nil {
		return err
	}
	if err := m.listen(); err != nil {
		return err
	}
	if created, err = m.openStore(files.keys, files.first, files.noStore); err != nil {
		return err
	}
	if shared, ok := m.store.(sharedTokens); ok {
		files.tokens, files.tokensErr = shared.Tokens(ctx)
		m.warnTokenFileUnread()
	}
	if files.first != nil {
		files.keysTime = modTime(m.KeysDir) // the key just written is no change to reload
	}
	if err := m.newServer(files); err != nil {
		return err
	}
	m.startServers(files.cfg)
	ctx, m.stopBackground = context.WithCancel(ctx)
	var sites atomic.Pointer[map[string]*consent.Site]
	sites.Store(&files.cfg.Sites)
	m.startJobs(ctx, files.keys, &sites)
	m.watchFiles(ctx, files, &sites)
	return nil
}

// Failed receives the error, as serve: ..., of a server that stopped serving on its
// own; Close must still be called, to stop the rest.
func (m *Main) Failed() <-chan error { return m.failed }

// Close stops what Run started, in order: it stops taking requests and finishes
// those in flight, their writes included; stops the reloads, the purge and the
// backups between two of their steps; has the server write what it still holds for
// the store (the refused DPO calls of the audit log); and closes the store. It is
// safe after a Run that failed, and twice.
func (m *Main) Close() error {
	if m.stopBackground != nil {
		m.stopBackground() // now: they stop while the requests in flight finish
	}
	errShutdown := m.shutdownServers()
	for _, ln := range m.listeners {
		ln.Close()
	}
	m.listeners = nil
	m.background.Wait()
	if m.srv != nil {
		if err := m.srv.Close(); err != nil {
			m.logger.Error("the last refused DPO calls were not written to the audit log", "err", err)
		}
		m.srv = nil
	}
	if m.store != nil {
		err := m.store.Close()
		m.store = nil
		if err != nil {
			return err
		}
	}
	if errShutdown != nil {
		return fmt.Errorf("shutdown: %w", errShutdown)
	}
	return nil
}

// startFiles are the files Run serves, as read before it listens. Each time is the
// file's modification time taken before its read: a change made while reading is
// reloaded afterwards.
type startFiles struct {
	cfg                           *config.Config
	tokens                        *auth.Tokens
	tokensErr                     error // the token file did not load: the rest serves nonetheless
	keys                          *proof.Keyring
	first                         *proof.Key // made for a first installation, written once the store is open
	noStore                       bool
	cfgTime, tokensTime, keysTime time.Time
}

// readFiles reads the configuration, the token file and the keys, and checks that
// the store exists or can be created.
func (m *Main) readFiles() (*startFiles, error) {
	f := &startFiles{cfgTime: modTime(m.ConfigPath)}
	var err error
	if f.cfg, err = config.Load(m.ConfigPath); err != nil {
		return nil, err
	}
	if m.db.url == "" {
		f.tokensTime = modTime(m.TokensPath)
		// A token file that does not load stops the DPO API, not the banners and the
		// consents of four websites: the server answers DPO calls 503 until it loads.
		f.tokens, f.tokensErr = auth.Load(m.TokensPath)
	}
	exists, err := m.db.exists(context.Background())
	if err != nil {
		return nil, err
	}
	f.noStore = !exists
	f.keysTime = modTime(m.KeysDir)
	if f.keys, f.first, err = m.loadKeys(f.noStore); err != nil {
		return nil, err
	}
	if f.noStore && m.Origin == "" {
		return nil, fmt.Errorf("--origin is required to create the store %s: it names the store's log for good, such as consent.example.com/log ($CONSENTD_ORIGIN)", m.db)
	}
	return f, nil
}

// newServer makes the server of the store, with the files read, and loads the
// configuration into it.
func (m *Main) newServer(f *startFiles) error {
	m.metrics.WatchStore(m.store)
	m.srv = server.New(m.store, server.Options{
		Demo: m.Demo, TrustedProxies: m.TrustedProxies, Keys: f.keys, Origin: m.store.Origin(), Logger: m.logger,
		Admin: m.AdminAddr != "", DPOOnAdmin: m.DPOOnAdmin,
		ConsentLimit: m.ConsentLimit, AuthFailureLimit: m.AuthFailures, MaxClients: m.LimitClients,
		LimitDelay: server.DefaultLimitDelay,
		Disk:       m.diskGuard(),
		Metrics:    m.metrics,
		Scans:      m.scanReports,
	})
	if f.tokensErr != nil {
		m.logger.Error("the DPO API's tokens did not load: it answers 503 until they do", "file", m.TokensPath, "err", f.tokensErr)
		m.srv.TokensFailed(f.tokensErr)
	} else {
		m.srv.SetTokens(f.tokens)
	}
	if err := m.srv.Load(f.cfg); err != nil {
		return err
	}
	m.logWarnings(f.cfg)
	started := time.Now()
	m.metrics.Reloaded(metrics.FileConfig, started, nil)
	m.metrics.Reloaded(metrics.FileTokens, started, f.tokensErr)
	m.metrics.Reloaded(metrics.FileKeys, started, nil)
	return nil
}

// startServers serves the public listener with the server, and the admin one with
// its admin handler, then says where it serves cfg.
func (m *Main) startServers(cfg *config.Config) {
	handlers := []http.Handler{m.srv, m.srv.AdminHandler()}
	failed := make(chan error, len(m.listeners))
	m.failed, m.addrs = failed, nil
	for i, ln := range m.listeners {
		hs := &http.Server{
			Handler:           handlers[i],
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			// In the log's format; the request log's middleware keeps panics, whose
			// lines would name the client's address, from reaching it.
			ErrorLog: slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
		}
		m.httpServers = append(m.httpServers, hs)
		m.addrs = append(m.addrs, ln.Addr())
		go func() {
			if err := hs.Serve(server.Listener(ln)); !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("serve: %w", err)
			}
		}()
	}
	m.listeners = nil // the servers close them
	m.logger.Info("consentd serving", "addr", m.addrs[0].String(), "admin", m.AdminAddr, "config", m.ConfigPath, "db", m.db.String(), "origin", m.store.Origin(), "sites", len(cfg.Sites), "demo", m.Demo, "version", version())
	m.printWhereToLook(m.addrs[0], cfg, m.store.Origin())
}

// shutdownServers stops the servers taking requests and waits, 15 seconds at most,
// for those in flight to finish.
func (m *Main) shutdownServers() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var errs error
	for _, hs := range m.httpServers {
		if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = errors.Join(errs, err)
		}
	}
	m.httpServers = nil
	return errs
}

// startJobs starts the purge under the sites loaded at the time, and the backups
// with BackupDir, until ctx is done.
func (m *Main) startJobs(ctx context.Context, keys *proof.Keyring, sites *atomic.Pointer[map[string]*consent.Site]) {
	store := m.store
	m.background.Go(func() { m.purge(ctx, store, func() map[string]*consent.Site { return *sites.Load() }) })
	if b, ok := store.(*bolt.Store); ok && m.BackupDir != "" {
		m.background.Go(func() { m.backups(ctx, b, keys) })
	}
	if m.ScanEvery > 0 {
		m.background.Go(func() { m.scans(ctx, func() map[string]*consent.Site { return *sites.Load() }) })
	}
}

// watchFiles reloads the configuration, the token file and the keys as they change,
// until ctx is done; the sites of a configuration reloaded go to sites, for the
// purge.
func (m *Main) watchFiles(ctx context.Context, f *startFiles, sites *atomic.Pointer[map[string]*consent.Site]) {
	srv := m.srv
	files := []*watched{
		{name: metrics.FileConfig, path: m.ConfigPath, last: f.cfgTime, reload: func() error {
			cfg, err := config.Load(m.ConfigPath)
			if err != nil {
				return err
			}
			if err := srv.Load(cfg); err != nil {
				return err
			}
			sites.Store(&cfg.Sites)
			m.logWarnings(cfg)
			return nil
		}},
		{name: metrics.FileKeys, path: m.KeysDir, last: f.keysTime, reload: func() error { return m.reloadKeys(f.keys) }},
	}
	if shared, ok := m.store.(sharedKeys); ok {
		m.background.Go(func() { m.learnKeys(ctx, shared) })
	}
	if shared, ok := m.store.(sharedTokens); ok {
		m.background.Go(func() { m.watchTokens(ctx, shared, f.tokens) })
	} else {
		files = append(files, &watched{name: metrics.FileTokens, path: m.TokensPath, last: f.tokensTime, reload: func() error {
			tokens, err := auth.Load(m.TokensPath)
			if err != nil {
				srv.TokensFailed(err)
				return err
			}
			srv.SetTokens(tokens)
			return nil
		}})
	}
	m.background.Go(func() { m.watch(ctx, files...) })
}

// setFromEnvironment sets each flag of fs but those named in except to the value of
// its environment variable, CONSENTD_ and the flag's name in upper case with _ for
// -, where one is set: the environment gives the defaults that the command line
// overrides. A bad value there is as much an error as on the command line.
func setFromEnvironment(fs *flag.FlagSet, except ...string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		variable := "CONSENTD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := os.Getenv(variable); v != "" && err == nil && !slices.Contains(except, f.Name) {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("$%s: %w", variable, e)
			}
		}
	})
	return err
}

// listen opens the public listener and, with AdminAddr, the admin one, in that
// order; a start that fails closes those it opened.
func (m *Main) listen() error {
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.listeners = append(m.listeners, ln)
	if m.AdminAddr == "" {
		return nil
	}
	if ln, err = net.Listen("tcp", m.AdminAddr); err != nil {
		return fmt.Errorf("listen on --admin-addr: %w", err)
	}
	m.listeners = append(m.listeners, ln)
	return nil
}

// logWarnings logs what sites.yaml holds that is valid but likely a mistake, such
// as an ad account id still a placeholder.
func (m *Main) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		m.logger.Warn(w.Message, "file", w.File, "line", w.Line)
	}
}

// loadKeys reads the signing keys; a key that others may read stops the start, as a
// leaked key forges proofs. On a first installation, with neither a store nor keys,
// it makes the first key, which openStore writes once the store is open. It refuses
// a store missing where keys exist, unless --new-store: the store was moved or
// deleted, and a new one would replace it unnoticed. For a store without keys it
// returns none: openStore says which keys the store needs.
func (m *Main) loadKeys(noStore bool) (keys *proof.Keyring, first *proof.Key, err error) {
	keys, err = proof.LoadKeyring(m.KeysDir)
	noKeys := errors.Is(err, proof.ErrNoKeys)
	switch {
	case err != nil && !noKeys:
		return nil, nil, err
	case !noStore && m.NewStore:
		return nil, nil, fmt.Errorf("--new-store, but %s exists: consentd never replaces a store; move it away first to start a new one", m.db)
	case noStore && !noKeys && !m.NewStore:
		return nil, nil, fmt.Errorf("%s does not exist, but %s holds signing keys: the store was moved or deleted. Restore it from a backup, or start a new, empty store with --new-store", m.db, m.KeysDir)
	case noStore && noKeys:
		first, err = proof.NewKey(time.Now())
		if err != nil {
			return nil, nil, err
		}
		return proof.NewKeyring(first), first, nil
	case noKeys:
		return nil, nil, nil
	}
	return keys, nil, nil
}

// openStore opens the store, keys signing its log, or creates it if noStore, then
// writes first, the key made for a first installation. A store whose latest
// checkpoint none of keys signed is refused (by the store's Open). It returns the files it
// created, even when it fails, for a start that fails to remove.
func (m *Main) openStore(keys *proof.Keyring, first *proof.Key, noStore bool) (created []string, err error) {
	if keys == nil {
		return nil, fmt.Errorf("%s holds no signing keys, but %s exists: restore the key directory from a backup, as the store's log is signed by its keys (for a store that never recorded anything, consentd keygen --keys %s makes one)", m.KeysDir, m.db, m.KeysDir)
	}
	if noStore && m.db.path != "" {
		// Even if the open fails: whatever it made of a store it did not create.
		created = append(created, m.db.path)
	}
	if m.Migrate {
		applied, err := m.db.migrate(context.Background())
		if err != nil {
			return created, err
		}
		for _, name := range applied {
			m.logger.Info("migrated the store's schema", "migration", name)
		}
	}
	store, err := m.db.open(context.Background(), m.Origin, keys, m.Lease, m.metrics.Committed)
	if err != nil {
		if errors.Is(err, translog.ErrUnknownKey) {
			err = fmt.Errorf("%w: restore %s from a backup (a new key would leave what the old one signed unverifiable)", err, m.KeysDir)
		}
		return created, err
	}
	m.store = store
	if first != nil {
		path, err := proof.WriteKey(m.KeysDir, first)
		if err != nil {
			return created, err
		}
		created = append(created, path)
		m.logger.Info("generated the first signing key", "kid", first.ID, "dir", m.KeysDir)
	}
	if noStore {
		m.logger.Info("created the store", "db", m.db.String(), "origin", store.Origin())
	}
	return created, nil
}

// checkOrigin refuses an --origin that cannot name a log (the key name of its
// signed notes), before anything is created; "" is no origin.
func checkOrigin(origin string) error {
	if origin == "" {
		return nil
	}
	if _, err := translog.NewVerifier(origin, make(ed25519.PublicKey, ed25519.PublicKeySize)); err != nil {
		return fmt.Errorf("--origin %q is not a log's name: it must be non-empty, without spaces or +, such as consent.example.com/log", origin)
	}
	return nil
}

// reloadKeys gives keys, which the server and the store sign with, the keys in the
// key directory now. It refuses a directory that lost a key loaded before: that key
// signed the log's checkpoints, which visitors' receipts hold, or signs now; GET
// /v1/keys would stop publishing it, and the next start would refuse the store.
func (m *Main) reloadKeys(keys *proof.Keyring) error {
	next, err := proof.LoadKeyring(m.KeysDir)
	if err != nil {
		return err
	}
	if lost := keys.Lost(next); len(lost) > 0 {
		return fmt.Errorf("%s no longer holds %s, which signed in %s or signs now: put the key files back", m.KeysDir, strings.Join(lost, ", "), m.db)
	}
	if shared, ok := m.store.(sharedKeys); ok {
		// Before it signs: the other instances verify what it signs once they read it.
		if err := shared.PublishKeys(context.Background(), next); err != nil {
			return err
		}
	}
	if kid := next.Signer().ID; kid != keys.Signer().ID {
		m.logger.Info("signing with a new key", "kid", kid)
	}
	keys.Replace(next)
	return nil
}

func (m *Main) printWhereToLook(addr net.Addr, cfg *config.Config, origin string) {
	port := addr.(*net.TCPAddr).Port
	fmt.Fprintf(m.stdout, "\nconsentd is running on port %d.\n", port)
	for _, key := range cfg.SiteKeys() {
		if m.Demo {
			fmt.Fprintf(m.stdout, "  demo page:  http://localhost:%d/demo/%s\n", port, key)
		}
	}
	fmt.Fprintf(m.stdout, "  banner:     http://localhost:%d/v1/banner/%s.js\n", port, cfg.SiteKeys()[0])
	fmt.Fprintf(m.stdout, "  records:    %s, log %s\n", m.db, origin)
	fmt.Fprintf(m.stdout, "  log:        http://localhost:%d/v1/log/checkpoint\n", port)
	if !m.DPOOnAdmin {
		fmt.Fprintf(m.stdout, "  console:    http://localhost:%d/dpo/ (the DPO's; sign in with a token: consentd token add NAME --tokens %s)\n", port, m.TokensPath)
	}
	fmt.Fprintln(m.stdout)
}

// watched is a file that consentd reloads when it changes.
type watched struct {
	name   string // as the metrics name it: metrics.FileConfig, FileTokens, FileKeys
	path   string
	last   time.Time // modification time when it was last loaded
	reload func() error
}

// watch reloads each file when its modification time moves, and all of them on
// SIGHUP. A file that does not load is logged and ignored: what was loaded before
// keeps serving.
func (m *Main) watch(ctx context.Context, files ...*watched) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ticker := time.NewTicker(m.ReloadEvery)
	defer ticker.Stop()
	for {
		all := false
		select {
		case <-ctx.Done():
			return
		case <-hup:
			all = true
		case <-ticker.C:
		}
		for _, f := range files {
			t := modTime(f.path)
			if !all && t.Equal(f.last) {
				continue
			}
			f.last = t
			err := f.reload()
			m.metrics.Reloaded(f.name, time.Now(), err)
			if err != nil {
				m.logger.Error("not reloaded; the previous version keeps serving", "file", f.path, "err", err)
			} else {
				m.logger.Info("reloaded", "file", f.path)
			}
			if m.reloaded != nil {
				m.reloaded(f.path, t, err)
			}
		}
	}
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// diskGuard watches the disk of a bbolt store; a PostgreSQL store's disk is the
// database server's, which watches its own.
func (m *Main) diskGuard() server.DiskGuard {
	if m.db.path == "" {
		return server.DiskGuard{}
	}
	return server.DiskGuard{Dir: filepath.Dir(m.db.path), MinFree: m.MinFreeDisk}
}
