package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
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
	"github.com/mixvoip/consentd/metrics"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/translog"
)

// Main is `consentd serve`: the wiring of configuration, store and HTTP server, in a
// form tests can drive (ParseFlags, Run).
type Main struct {
	Addr           string
	AdminAddr      string // serves /metrics (and with DPOOnAdmin the DPO API) instead of Addr
	DPOOnAdmin     bool
	ConfigPath     string
	DBPath         string
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
	LogFormat      string // json or text; "" for text on a terminal, json otherwise

	stdout, stderr io.Writer
	logger         *slog.Logger
	listening      chan net.Addr // receives the bound address once serving
	// reloaded, if set, hears of every attempt to reload a watched file: its path, its
	// modification time when read, and why it was not reloaded (nil if it was), so
	// that tests can wait for a reload instead of guessing how long one takes.
	reloaded func(path string, modTime time.Time, err error)
	// backedUp, if set, hears of every scheduled backup: the copy's path and why it
	// failed (nil if it did not).
	backedUp func(path string, err error)
	// metrics are those of the last Run, which the server, the store and the
	// watched files report to.
	metrics *metrics.Metrics
}

// NewMain returns a Main with the defaults.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{
		stdout:      stdout,
		stderr:      stderr,
		logger:      slog.New(slog.NewTextHandler(stderr, nil)),
		ReloadEvery: 2 * time.Second,
		PurgeEvery:  purgeEvery,
		BackupEvery: 24 * time.Hour,
		BackupKeep:  14,
		listening:   make(chan net.Addr, 2),
	}
}

// ParseFlags reads flags, each with an environment variable as its default.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("consentd serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.Addr, "addr", ":8080", "listen address ($CONSENTD_ADDR)")
	fs.StringVar(&m.ConfigPath, "config", "sites.yaml", "sites configuration ($CONSENTD_CONFIG)")
	fs.StringVar(&m.DBPath, "db", "data/consent.db", "bbolt database file ($CONSENTD_DB)")
	fs.StringVar(&m.TokensPath, "tokens", defaultTokensFile, "the DPO API's token file ($CONSENTD_TOKENS)")
	fs.StringVar(&m.KeysDir, "keys", defaultKeysDir, "directory of the ed25519 signing keys ($CONSENTD_KEYS)")
	fs.StringVar(&m.Origin, "origin", "", "the name of the store's transparency log, such as consent.example.com/log: required to create a store, which keeps it for good; a store opened with another is refused ($CONSENTD_ORIGIN)")
	fs.BoolVar(&m.NewStore, "new-store", false, "start a new, empty store where --db is missing but --keys holds keys: only after moving the old store away on purpose (a first installation needs no flag; refused while --db exists)")
	fs.BoolVar(&m.Demo, "demo", false, "serve /demo/{site} pages and accept consents from the server's own origin ($CONSENTD_DEMO=1); never in production")
	proxies := fs.String("trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is trusted, and only those ($CONSENTD_TRUSTED_PROXIES)")
	fs.StringVar(&m.AdminAddr, "admin-addr", "", "a second listen address, such as 127.0.0.1:9090, for /metrics (and with --dpo-on-admin the DPO API), which the public one then does not serve ($CONSENTD_ADMIN_ADDR)")
	fs.BoolVar(&m.DPOOnAdmin, "dpo-on-admin", false, "serve the DPO API on --admin-addr only ($CONSENTD_DPO_ON_ADMIN=1)")
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
	case m.BackupEvery < time.Minute:
		return errors.New("--backup-every: at least 1m")
	case m.BackupKeep < 1:
		return errors.New("--backup-keep: at least 1")
	case m.DPOOnAdmin && m.AdminAddr == "":
		return errors.New("--dpo-on-admin needs --admin-addr: the DPO API would be served nowhere")
	}
	if err := checkOrigin(m.Origin); err != nil {
		return err
	}
	var err error
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

// Run serves until ctx is done, then shuts down in order: stop taking requests,
// finish those in flight (their writes included), close the store.
//
// A start that fails, on a port in use say, leaves nothing new behind: Run reads the
// configuration and the keys, listens, and only then opens the store (creating it on
// a first installation) and writes the first key it made.
func (m *Main) Run(ctx context.Context) error {
	m.metrics = metrics.New(version())
	// Taken before the load: a change made while loading is reloaded afterwards.
	loaded := modTime(m.ConfigPath)
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	tokensLoaded := modTime(m.TokensPath)
	// A token file that does not load stops the DPO API, not the banners and the
	// consents of four websites: the server answers DPO calls 503 until it loads.
	tokens, tokensErr := auth.Load(m.TokensPath)
	_, err = os.Stat(m.DBPath)
	noStore := errors.Is(err, fs.ErrNotExist)
	if err != nil && !noStore {
		return err
	}
	keysLoaded := modTime(m.KeysDir)
	keys, first, err := m.loadKeys(noStore)
	if err != nil {
		return err
	}
	if noStore && m.Origin == "" {
		return fmt.Errorf("--origin is required to create the store %s: it names the store's log for good, such as consent.example.com/log ($CONSENTD_ORIGIN)", m.DBPath)
	}
	listeners, err := m.listen()
	if err != nil {
		return err
	}
	closeListeners := func() {
		for _, ln := range listeners {
			ln.Close()
		}
	}
	store, undo, err := m.openStore(keys, first, noStore)
	if err != nil {
		closeListeners()
		return err
	}
	if first != nil {
		keysLoaded = modTime(m.KeysDir)
	}
	m.metrics.WatchStore(store)
	srv := server.New(store, server.Options{
		Demo: m.Demo, TrustedProxies: m.TrustedProxies, Keys: keys, Origin: store.Origin(), Logger: m.logger,
		Admin: m.AdminAddr != "", DPOOnAdmin: m.DPOOnAdmin,
		ConsentLimit: m.ConsentLimit, AuthFailureLimit: m.AuthFailures, MaxClients: m.LimitClients,
		LimitDelay: server.DefaultLimitDelay,
		Disk:       server.DiskGuard{Dir: filepath.Dir(m.DBPath), MinFree: m.MinFreeDisk},
		Metrics:    m.metrics,
	})
	if tokensErr != nil {
		m.logger.Error("the token file did not load: the DPO API answers 503 until it does", "file", m.TokensPath, "err", tokensErr)
		srv.TokensFailed(tokensErr)
	} else {
		srv.SetTokens(tokens)
	}
	if err := srv.Load(cfg); err != nil {
		closeListeners()
		store.Close()
		undo()
		return err
	}
	m.logWarnings(cfg)
	started := time.Now()
	m.metrics.Reloaded(metrics.FileConfig, started, nil)
	m.metrics.Reloaded(metrics.FileTokens, started, tokensErr)
	m.metrics.Reloaded(metrics.FileKeys, started, nil)
	handlers := []http.Handler{srv, srv.AdminHandler()}
	var httpServers []*http.Server
	served := make(chan error, len(listeners))
	for i, ln := range listeners {
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
		httpServers = append(httpServers, hs)
		go func() { served <- hs.Serve(server.Listener(ln)) }()
	}
	addr := listeners[0].Addr()
	m.logger.Info("consentd serving", "addr", addr.String(), "admin", m.AdminAddr, "config", m.ConfigPath, "db", m.DBPath, "origin", store.Origin(), "sites", len(cfg.Sites), "demo", m.Demo, "version", version())
	m.printWhereToLook(addr, cfg, store.Origin())
	for _, ln := range listeners {
		m.listening <- ln.Addr()
	}

	var sites atomic.Pointer[map[string]*consent.Site]
	sites.Store(&cfg.Sites)
	background, stopBackground := context.WithCancel(ctx)
	var jobs sync.WaitGroup
	jobs.Go(func() { m.purge(background, store, func() map[string]*consent.Site { return *sites.Load() }) })
	if m.BackupDir != "" {
		jobs.Go(func() { m.backups(background, store, keys) })
	}
	// The store closes only once the purge and the backups have stopped between two
	// of their steps, and the server has written what it still holds for it.
	closeStore := func() error {
		stopBackground()
		jobs.Wait()
		if err := srv.Close(); err != nil {
			m.logger.Error("the last refused DPO calls were not written to the audit log", "err", err)
		}
		return store.Close()
	}

	go m.watch(ctx,
		&watched{name: metrics.FileConfig, path: m.ConfigPath, last: loaded, reload: func() error {
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
		&watched{name: metrics.FileTokens, path: m.TokensPath, last: tokensLoaded, reload: func() error {
			tokens, err := auth.Load(m.TokensPath)
			if err != nil {
				srv.TokensFailed(err)
				return err
			}
			srv.SetTokens(tokens)
			return nil
		}},
		&watched{name: metrics.FileKeys, path: m.KeysDir, last: keysLoaded, reload: func() error { return m.reloadKeys(keys) }},
	)

	select {
	case <-ctx.Done():
	case err := <-served:
		closeStore()
		return fmt.Errorf("serve: %w", err)
	}
	m.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var errShutdown error
	for _, hs := range httpServers {
		if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errShutdown = errors.Join(errShutdown, err)
		}
	}
	if err := closeStore(); err != nil {
		return err
	}
	if errShutdown != nil {
		return fmt.Errorf("shutdown: %w", errShutdown)
	}
	return nil
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
// order; both or neither.
func (m *Main) listen() ([]net.Listener, error) {
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if m.AdminAddr == "" {
		return []net.Listener{ln}, nil
	}
	admin, err := net.Listen("tcp", m.AdminAddr)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on --admin-addr: %w", err)
	}
	return []net.Listener{ln, admin}, nil
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
		return nil, nil, fmt.Errorf("--new-store, but %s exists: consentd never replaces a store; move it away first to start a new one", m.DBPath)
	case noStore && !noKeys && !m.NewStore:
		return nil, nil, fmt.Errorf("%s does not exist, but %s holds signing keys: the store was moved or deleted. Restore it from a backup, or start a new, empty store with --new-store", m.DBPath, m.KeysDir)
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
// checkpoint none of keys signed is refused (by bolt.Open). undo removes what it
// created, for a start that fails later.
func (m *Main) openStore(keys *proof.Keyring, first *proof.Key, noStore bool) (store *bolt.Store, undo func(), err error) {
	if keys == nil {
		return nil, nil, fmt.Errorf("%s holds no signing keys, but %s exists: restore the key directory from a backup, as the store's log is signed by its keys (for a store that never recorded anything, consentd keygen --keys %s makes one)", m.KeysDir, m.DBPath, m.KeysDir)
	}
	store, err = bolt.Open(m.DBPath, bolt.Log(m.Origin, keys), bolt.OnCommit(m.metrics.Committed))
	if err != nil {
		if noStore {
			os.Remove(m.DBPath) // whatever bolt.Open made of a store it did not create
		}
		if errors.Is(err, translog.ErrUnknownKey) {
			err = fmt.Errorf("%w: restore %s from a backup (a new key would leave what the old one signed unverifiable)", err, m.KeysDir)
		}
		return nil, nil, err
	}
	undo = func() {}
	if noStore {
		undo = func() { os.Remove(m.DBPath) }
	}
	if first != nil {
		path, err := proof.WriteKey(m.KeysDir, first)
		if err != nil {
			store.Close()
			undo()
			return nil, nil, err
		}
		undo = func() { os.Remove(m.DBPath); os.Remove(path) }
		m.logger.Info("generated the first signing key", "kid", first.ID, "dir", m.KeysDir)
	}
	if noStore {
		m.logger.Info("created the store", "db", m.DBPath, "origin", store.Origin())
	}
	return store, undo, nil
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
	var missing []string
	for _, k := range keys.Public() {
		if !next.HasKey(k.ID) {
			missing = append(missing, k.ID)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s no longer holds %s, which signed in %s or signs now: put the key files back", m.KeysDir, strings.Join(missing, ", "), m.DBPath)
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
	fmt.Fprintf(m.stdout, "  records:    %s, log %s\n", m.DBPath, origin)
	fmt.Fprintf(m.stdout, "  log:        http://localhost:%d/v1/log/checkpoint\n\n", port)
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
