package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sys/unix"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
)

// DiskGuard keeps records from filling the disk: below MinFree bytes free in Dir
// (where the store keeps its files) the server refuses new records with 503 and is
// not ready, before the store fails on a full disk. A zero MinFree checks nothing.
type DiskGuard struct {
	Dir     string
	MinFree uint64
}

// diskCheckEvery is how long one reading of the free space is used: a consent
// costs no system call, and a disk filling up is seen within a second.
const diskCheckEvery = time.Second

// diskRetryAfter is what a client refused for want of disk space is told to wait.
const diskRetryAfter = time.Minute

// diskCheck reads DiskGuard's free space at most every diskCheckEvery.
type diskCheck struct {
	guard DiskGuard
	mu    sync.Mutex
	at    time.Time
	err   error // what the last reading found: nil, short of space, or unreadable
}

// check returns an error with code EUnavailable while the disk is short of space or
// its free space cannot be read.
func (d *diskCheck) check(now time.Time) error {
	if d.guard.MinFree == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && now.Sub(d.at) < diskCheckEvery {
		return d.err
	}
	d.at, d.err = now, nil
	var st unix.Statfs_t
	if err := unix.Statfs(d.guard.Dir, &st); err != nil {
		d.err = &consent.Error{Code: consent.EUnavailable, RetryAfter: diskRetryAfter,
			Message: "consentd cannot tell how much disk space is left, so it takes no new records for now"}
		return d.err
	}
	if free := st.Bavail * uint64(st.Bsize); free < d.guard.MinFree {
		d.err = &consent.Error{Code: consent.EUnavailable, RetryAfter: diskRetryAfter,
			Message: fmt.Sprintf("consentd is short of disk space (%d MiB free, %d MiB kept free): it takes no new records until an operator frees some", free>>20, d.guard.MinFree>>20)}
	}
	return d.err
}

// tokenFile is the DPO API's token file as last loaded, and why the last load
// failed if it did.
type tokenFile struct {
	tokens *auth.Tokens // nil until one loaded
	err    error
}

// SetTokens replaces the DPO API's tokens; consentd calls it when the token file
// changes.
func (s *Server) SetTokens(ts *auth.Tokens) { s.tokens.Store(&tokenFile{tokens: ts}) }

// TokensFailed tells the server that the token file could not be loaded: the tokens
// loaded before, if any, keep serving, as a broken sites.yaml keeps the last good
// one; without any, the DPO API answers 503 while the rest serves on. /readyz says
// so either way.
func (s *Server) TokensFailed(err error) {
	next := &tokenFile{err: err}
	if prev := s.tokens.Load(); prev != nil {
		next.tokens = prev.tokens
	}
	s.tokens.Store(next)
}

// dpoTokens returns the tokens the DPO API accepts, nil if no token file loaded.
func (s *Server) dpoTokens() *auth.Tokens {
	if tf := s.tokens.Load(); tf != nil {
		return tf.tokens
	}
	return nil
}

// storeReadiness is a store that can tell whether it takes writes; store/bolt can.
type storeReadiness interface {
	Ready() error
}

// handleReady says whether this instance should get traffic: the store takes
// writes, the disk is not short of space, a configuration and a token file are
// loaded. The answer names each check; a failed one gets a 503 with the error shape
// besides. The reasons say what failed, not where (no paths): the log says more.
func (s *Server) handleReady(c echo.Context) error {
	checks := map[string]string{}
	var failed []string
	set := func(name string, err error) {
		if err == nil {
			checks[name] = "ok"
			return
		}
		checks[name] = consent.ErrorMessage(err)
		failed = append(failed, name)
	}
	var storeErr error
	if r, ok := s.store.(storeReadiness); ok {
		if storeErr = r.Ready(); storeErr != nil {
			storeErr = consent.Errorf(consent.EUnavailable, "the store takes no writes; the log says why")
		}
	}
	set("store", storeErr)
	set("disk", s.disk.check(s.opts.Now()))
	var configErr error
	if len(*s.sites.Load()) == 0 {
		configErr = consent.Errorf(consent.EUnavailable, "no sites.yaml is loaded")
	}
	set("config", configErr)
	tf := s.tokens.Load()
	switch {
	case tf == nil || tf.tokens == nil:
		set("tokens", consent.Errorf(consent.EUnavailable, "no token file is loaded, the DPO API refuses every call; the log says why"))
	case tf.err != nil:
		checks["tokens"] = "ok, but the token file changed and did not load; the previous one serves; the log says why"
	default:
		set("tokens", nil)
	}
	if len(failed) == 0 {
		return c.JSON(http.StatusOK, map[string]any{"status": "ready", "checks": checks})
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	body := map[string]any{"status": "not ready", "checks": checks,
		"error": map[string]string{"code": consent.EUnavailable, "message": "not ready: " + strings.Join(failed, ", ")}}
	return c.JSON(http.StatusServiceUnavailable, body)
}
