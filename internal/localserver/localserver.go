// Package localserver runs a throwaway consentd on loopback for the tools and the
// benchmarks: records in a bbolt file in a temporary directory (or in a PostgreSQL
// database given), receipts signed with a key that is never written, in a log of its
// own.
package localserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/postgres"
)

// Server is consentd serving a configuration, with what it needs to be removed.
type Server struct {
	*server.Server
	store Store
	dir   string // of a bbolt store; "" for PostgreSQL
}

// Store is a local server's store.
type Store interface {
	consent.Store
	FileSize() (int64, error)
}

// Origin names the log of a throwaway consentd, unless opts.Origin says otherwise.
const Origin = "localhost/consentd-local"

// New returns a consentd serving cfg with opts, whose Keys, Origin and Logger are
// filled in if unset: a key that is never written, the log Origin, warnings and
// errors to stderr. It records in a new bbolt file, or in the PostgreSQL database at
// postgresURL, migrated, if that is not "". Close it.
func New(cfg *config.Config, opts server.Options, postgresURL string) (*Server, error) {
	var err error
	if opts.Keys == nil {
		if opts.Keys, err = proof.NewEphemeralKeyring(); err != nil {
			return nil, err
		}
	}
	if opts.Origin == "" {
		opts.Origin = Origin
	}
	store, dir, err := openStore(opts, postgresURL)
	if err != nil {
		return nil, err
	}
	return serve(cfg, opts, store, dir)
}

// Serve returns a consentd serving cfg with opts, as New does, recording in store,
// which opts.Keys sign; closing the server closes store.
func Serve(cfg *config.Config, opts server.Options, store Store) (*Server, error) {
	if opts.Origin == "" {
		opts.Origin = Origin
	}
	return serve(cfg, opts, store, "")
}

func serve(cfg *config.Config, opts server.Options, store Store, dir string) (*Server, error) {
	s := &Server{store: store, dir: dir}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s.Server = server.New(s.store, opts)
	s.SetTokens(&auth.Tokens{}) // none: the DPO API refuses every call, as with an empty token file
	if err := s.Load(cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openStore opens a new bbolt store in a new directory, which it returns, or the
// PostgreSQL store at postgresURL if that is not "".
func openStore(opts server.Options, postgresURL string) (Store, string, error) {
	if postgresURL != "" {
		if _, err := postgres.Migrate(context.Background(), postgresURL); err != nil {
			return nil, "", err
		}
		s, err := postgres.Open(context.Background(), postgresURL, postgres.Options{Origin: opts.Origin, Keys: opts.Keys})
		if err != nil {
			return nil, "", err
		}
		return s, "", nil
	}
	dir, err := os.MkdirTemp("", "consentd-local-")
	if err != nil {
		return nil, "", err
	}
	s, err := bolt.Open(filepath.Join(dir, "consent.db"), bolt.Log(opts.Origin, opts.Keys))
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return s, dir, nil
}

// Store is the store the server records in.
func (s *Server) Store() Store { return s.store }

// Close closes the server and the store, and removes its directory.
func (s *Server) Close() error {
	if s.Server != nil {
		s.Server.Close()
	}
	err := s.store.Close()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	return err
}

// Listen serves h on a free port of 127.0.0.1 and returns its base URL, such as
// http://127.0.0.1:41234, and a function that stops it.
func Listen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	return "http://" + ln.Addr().String(), func() { hs.Shutdown(context.Background()) }, nil
}
