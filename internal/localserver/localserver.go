// Package localserver runs a throwaway consentd on loopback for the tools and the
// benchmarks: records in a bbolt file in a temporary directory, receipts signed with
// a key that is never written, in a log of its own.
package localserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
)

// Server is consentd serving a configuration, with what it needs to be removed.
type Server struct {
	*server.Server
	store *bolt.Store
	dir   string
}

// Origin names the log of a throwaway consentd, unless opts.Origin says otherwise.
const Origin = "localhost/consentd-local"

// New returns a consentd serving cfg with opts, whose Keys, Origin and Logger are
// filled in if unset: a key that is never written, the log Origin, warnings and
// errors to stderr. Close it.
func New(cfg *config.Config, opts server.Options) (*Server, error) {
	var err error
	if opts.Keys == nil {
		if opts.Keys, err = proof.NewEphemeralKeyring(); err != nil {
			return nil, err
		}
	}
	if opts.Origin == "" {
		opts.Origin = Origin
	}
	dir, err := os.MkdirTemp("", "consentd-local-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	if s.store, err = bolt.Open(filepath.Join(dir, "consent.db"), bolt.Log(opts.Origin, opts.Keys)); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
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

// Store is the store the server records in.
func (s *Server) Store() *bolt.Store { return s.store }

// Path is the store's file.
func (s *Server) Path() string { return filepath.Join(s.dir, "consent.db") }

// Close closes the server and the store, and removes its directory.
func (s *Server) Close() error {
	if s.Server != nil {
		s.Server.Close()
	}
	err := s.store.Close()
	os.RemoveAll(s.dir)
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
