// Package localserver runs a throwaway consentd on loopback for the tools and the
// benchmarks: records in a bbolt file in a temporary directory, receipts signed with
// a key that is never written.
package localserver

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

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

// New returns a consentd serving cfg, with demo pages if demo is set. Close it.
func New(cfg *config.Config, demo bool) (*Server, error) {
	dir, err := os.MkdirTemp("", "consentd-local-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir}
	if s.store, err = bolt.Open(filepath.Join(dir, "consent.db")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	keys, err := proof.NewEphemeralKeyring()
	if err != nil {
		s.Close()
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s.Server = server.New(s.store, server.Options{Demo: demo, Keys: keys, Logger: logger})
	if err := s.Load(cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store and removes its directory.
func (s *Server) Close() error {
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
