package main

import (
	"context"
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
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
)

// checkpointEvery is how often the head of the hash chain is signed while records
// come in; it is signed on shutdown too.
const checkpointEvery = time.Minute

// Main is `consentd serve`: the wiring of configuration, store and HTTP server, in a
// form tests can drive (ParseFlags, Run).
type Main struct {
	Addr           string
	ConfigPath     string
	DBPath         string
	KeysDir        string
	TokensPath     string
	NewStore       bool // start a new store although the key directory holds keys
	Demo           bool
	TrustedProxies []netip.Prefix
	ReloadEvery    time.Duration
	PurgeEvery     time.Duration

	stdout, stderr io.Writer
	logger         *slog.Logger
	listening      chan net.Addr // receives the bound address once serving
}

// NewMain returns a Main with the defaults.
func NewMain(stdout, stderr io.Writer) *Main {
	return &Main{
		stdout:      stdout,
		stderr:      stderr,
		logger:      slog.New(slog.NewTextHandler(stderr, nil)),
		ReloadEvery: 2 * time.Second,
		PurgeEvery:  purgeEvery,
		listening:   make(chan net.Addr, 1),
	}
}

// ParseFlags reads flags, each with an environment variable as its default.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("consentd serve", flag.ContinueOnError)
	fs.SetOutput(m.stderr)
	fs.StringVar(&m.Addr, "addr", envOr("CONSENTD_ADDR", ":8080"), "listen address ($CONSENTD_ADDR)")
	fs.StringVar(&m.ConfigPath, "config", envOr("CONSENTD_CONFIG", "sites.yaml"), "sites configuration ($CONSENTD_CONFIG)")
	fs.StringVar(&m.DBPath, "db", envOr("CONSENTD_DB", "data/consent.db"), "bbolt database file ($CONSENTD_DB)")
	fs.StringVar(&m.TokensPath, "tokens", envOr("CONSENTD_TOKENS", defaultTokensFile), "the DPO API's token file ($CONSENTD_TOKENS)")
	fs.StringVar(&m.KeysDir, "keys", envOr("CONSENTD_KEYS", defaultKeysDir), "directory of the ed25519 signing keys ($CONSENTD_KEYS)")
	fs.BoolVar(&m.NewStore, "new-store", false, "start a new, empty store where --db is missing but --keys holds keys: only after moving the old store away on purpose (a first installation needs no flag; refused while --db exists)")
	fs.BoolVar(&m.Demo, "demo", os.Getenv("CONSENTD_DEMO") == "1", "serve /demo/{site} pages and accept consents from the server's own origin ($CONSENTD_DEMO=1); never in production")
	proxies := fs.String("trusted-proxies", os.Getenv("CONSENTD_TRUSTED_PROXIES"), "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is trusted ($CONSENTD_TRUSTED_PROXIES)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
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
	// Taken before the load: a change made while loading is reloaded afterwards.
	loaded := modTime(m.ConfigPath)
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	tokensLoaded := modTime(m.TokensPath)
	tokens, err := auth.Load(m.TokensPath)
	if err != nil {
		return err
	}
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
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	store, undo, err := m.openStore(keys, first, noStore)
	if err != nil {
		ln.Close()
		return err
	}
	if first != nil {
		keysLoaded = modTime(m.KeysDir)
	}
	srv := server.New(store, server.Options{Demo: m.Demo, TrustedProxies: m.TrustedProxies, Keys: keys, Logger: m.logger})
	srv.SetTokens(tokens)
	if err := srv.Load(cfg); err != nil {
		ln.Close()
		store.Close()
		undo()
		return err
	}
	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()
	m.logger.Info("consentd serving", "addr", ln.Addr().String(), "config", m.ConfigPath, "db", m.DBPath, "sites", len(cfg.Sites), "demo", m.Demo, "version", version())
	m.printWhereToLook(ln.Addr(), cfg)
	m.listening <- ln.Addr()

	var sites atomic.Pointer[map[string]*consent.Site]
	sites.Store(&cfg.Sites)
	purgeCtx, stopPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() {
		defer close(purged)
		m.purge(purgeCtx, store, func() map[string]*consent.Site { return *sites.Load() })
	}()
	// The store closes only once the purge has stopped between two of its steps.
	closeStore := func() error {
		stopPurge()
		<-purged
		return store.Close()
	}

	go m.watch(ctx,
		&watched{path: m.ConfigPath, last: loaded, reload: func() error {
			cfg, err := config.Load(m.ConfigPath)
			if err != nil {
				return err
			}
			if err := srv.Load(cfg); err != nil {
				return err
			}
			sites.Store(&cfg.Sites)
			return nil
		}},
		&watched{path: m.TokensPath, last: tokensLoaded, reload: func() error {
			tokens, err := auth.Load(m.TokensPath)
			if err != nil {
				return err
			}
			srv.SetTokens(tokens)
			return nil
		}},
		&watched{path: m.KeysDir, last: keysLoaded, reload: func() error { return m.reloadKeys(ctx, keys, store) }},
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
	errShutdown := httpServer.Shutdown(shutdownCtx)
	if err := closeStore(); err != nil {
		return err
	}
	if errShutdown != nil && !errors.Is(errShutdown, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", errShutdown)
	}
	return nil
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

// openStore opens the store, keys signing its checkpoints, or creates it if noStore,
// then writes first, the key made for a first installation. It refuses keys that
// lack one that signed in the store. undo removes what it created, for a start that
// fails later.
func (m *Main) openStore(keys *proof.Keyring, first *proof.Key, noStore bool) (store *bolt.Store, undo func(), err error) {
	if keys == nil {
		return nil, nil, m.withoutKeys()
	}
	store, err = bolt.Open(m.DBPath, bolt.Checkpoints(keys, checkpointEvery))
	var missing *bolt.MissingKeysError
	if errors.As(err, &missing) {
		return nil, nil, m.missingKeys(missing.KeyIDs)
	}
	if err != nil {
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
	return store, undo, nil
}

// withoutKeys tells why a store without keys does not start: which keys it needs,
// if any signed in it.
func (m *Main) withoutKeys() error {
	// Without a signer, which Open would refuse, and which would sign.
	store, err := bolt.Open(m.DBPath)
	if err != nil {
		return err
	}
	ids, err := store.KeyIDs(context.Background())
	store.Close()
	switch {
	case err != nil:
		return err
	case len(ids) > 0:
		return m.missingKeys(ids)
	}
	return fmt.Errorf("%s holds no signing keys, and nothing in %s is signed yet: create a key with consentd keygen --keys %s", m.KeysDir, m.DBPath, m.KeysDir)
}

// missingKeys is the refusal of a key directory that lacks the keys ids, which signed
// in the store.
func (m *Main) missingKeys(ids []string) error {
	return fmt.Errorf("%s holds records or checkpoints signed by %s, which %s does not hold: restore the key directory from a backup (a new key would leave what they signed unverifiable)", m.DBPath, strings.Join(ids, ", "), m.KeysDir)
}

// reloadKeys gives keys, which the server and the store sign with, the keys in the
// key directory now. It refuses keys that lack one that signed in the store, or the
// one that signs now, which may have signed in the meantime: GET /v1/keys would stop
// publishing it, and the next start would refuse the store.
func (m *Main) reloadKeys(ctx context.Context, keys *proof.Keyring, store *bolt.Store) error {
	next, err := proof.LoadKeyring(m.KeysDir)
	if err != nil {
		return err
	}
	ids, err := store.KeyIDs(ctx)
	if err != nil {
		return err
	}
	var missing []string
	for _, id := range append(ids, keys.Signer().ID) {
		if !next.HasKey(id) && !slices.Contains(missing, id) {
			missing = append(missing, id)
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

func (m *Main) printWhereToLook(addr net.Addr, cfg *config.Config) {
	port := addr.(*net.TCPAddr).Port
	fmt.Fprintf(m.stdout, "\nconsentd is running on port %d.\n", port)
	for _, key := range cfg.SiteKeys() {
		if m.Demo {
			fmt.Fprintf(m.stdout, "  demo page:  http://localhost:%d/demo/%s\n", port, key)
		}
	}
	fmt.Fprintf(m.stdout, "  banner:     http://localhost:%d/v1/banner/%s.js\n", port, cfg.SiteKeys()[0])
	fmt.Fprintf(m.stdout, "  records:    %s\n\n", m.DBPath)
}

// watched is a file that consentd reloads when it changes.
type watched struct {
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
			if err := f.reload(); err != nil {
				m.logger.Error("not reloaded; the previous version keeps serving", "file", f.path, "err", err)
				continue
			}
			m.logger.Info("reloaded", "file", f.path)
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
