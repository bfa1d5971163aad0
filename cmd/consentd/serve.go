package main

import (
	"context"
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
	Demo           bool
	TrustedProxies []netip.Prefix
	ReloadEvery    time.Duration
	PurgeEvery     time.Duration

	stdout, stderr io.Writer
	logger         *slog.Logger
	listening      chan net.Addr // receives the bound address once serving
	// reloaded, if set, hears of every attempt to reload a watched file: its path, its
	// modification time when read, and why it was not reloaded (nil if it was), so
	// that tests can wait for a reload instead of guessing how long one takes.
	reloaded func(path string, modTime time.Time, err error)
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
func (m *Main) Run(ctx context.Context) error {
	// Taken before the load: a change made while loading is reloaded afterwards.
	loaded := modTime(m.ConfigPath)
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		return err
	}
	keys, err := m.loadKeys()
	if err != nil {
		return err
	}
	store, err := bolt.Open(m.DBPath, bolt.Checkpoints(keys, checkpointEvery))
	if err != nil {
		return err
	}
	srv := server.New(store, server.Options{Demo: m.Demo, TrustedProxies: m.TrustedProxies, Keys: keys, Logger: m.logger})
	tokensLoaded := modTime(m.TokensPath)
	tokens, err := auth.Load(m.TokensPath)
	if err != nil {
		store.Close()
		return err
	}
	srv.SetTokens(tokens)
	if err := srv.Load(cfg); err != nil {
		store.Close()
		return err
	}
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		store.Close()
		return fmt.Errorf("listen: %w", err)
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
	m.logger.Info("consentd serving", "addr", ln.Addr().String(), "config", m.ConfigPath, "db", m.DBPath, "sites", len(cfg.Sites), "demo", m.Demo, "version", Version)
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

// loadKeys reads the signing keys. A fresh installation gets its first key made for
// it; a key that others may read stops the start, as a leaked key forges proofs.
func (m *Main) loadKeys() (*proof.Keyring, error) {
	keys, err := proof.LoadKeyring(m.KeysDir)
	if errors.Is(err, proof.ErrNoKeys) {
		var k *proof.Key
		if k, err = proof.Generate(m.KeysDir, time.Now()); err != nil {
			return nil, err
		}
		m.logger.Info("generated the first signing key", "kid", k.ID, "dir", m.KeysDir)
		keys, err = proof.LoadKeyring(m.KeysDir)
	}
	return keys, err
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
			err := f.reload()
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
