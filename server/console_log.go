package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
)

// verifyRun is the console's verification of the whole log: one at a time per
// instance, running on after the page that started it is closed, its progress and
// last outcome kept for the log page.
type verifyRun struct {
	mu       sync.Mutex
	running  bool
	leaves   atomic.Int64
	total    int64
	started  time.Time
	finished time.Time
	by       string // the token's name
	summary  string
	ok       bool
	cancel   context.CancelFunc
	done     chan struct{}
}

// verifyStatus is a verifyRun as the log page and its script read it.
type verifyStatus struct {
	Running  bool      `json:"running"`
	Leaves   int64     `json:"leaves"`
	Total    int64     `json:"total"`
	Started  time.Time `json:"-"`
	Finished time.Time `json:"-"`
	By       string    `json:"-"`
	Summary  string    `json:"-"`
	OK       bool      `json:"-"`
}

// start begins verifying store unless a verification runs; total is the log's size.
func (v *verifyRun) start(store consent.LogStore, by string, total int64, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.running {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.running, v.total, v.started, v.by, v.cancel, v.done = true, total, now, by, cancel, make(chan struct{})
	v.leaves.Store(0)
	go func() {
		defer close(v.done)
		res, err := store.Verify(consent.WithVerifyProgress(ctx, &v.leaves))
		v.mu.Lock()
		defer v.mu.Unlock()
		v.running, v.finished = false, time.Now()
		switch {
		case err != nil:
			v.ok, v.summary = false, "Could not verify: "+consent.ErrorMessage(err)
		default:
			v.ok, v.summary = res.OK, res.Summary()
			if res.SequencerStuck != "" {
				v.summary += "; sequencer stuck: " + res.SequencerStuck
			}
		}
	}()
}

// status returns where the verification stands.
func (v *verifyRun) status() verifyStatus {
	v.mu.Lock()
	defer v.mu.Unlock()
	return verifyStatus{Running: v.running, Leaves: v.leaves.Load(), Total: v.total, Started: v.started,
		Finished: v.finished, By: v.by, Summary: v.summary, OK: v.ok}
}

// stop ends a running verification and waits until it has.
func (v *verifyRun) stop() {
	v.mu.Lock()
	cancel, done := v.cancel, v.done
	v.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// logData is what the log page shows.
type logData struct {
	Checkpoint *consent.Checkpoint // nil while the log is empty
	Signed     string
	Keys       []proof.PublicKey
	StoreWide  bool // the token may verify
	Verify     verifyStatus
	Followed   *followed // nil if none since this instance started
	FollowedAt string
}

func (s *Server) handleLogPage(c echo.Context) error {
	d := &logData{StoreWide: len(dpoToken(c).Sites) == 0, Verify: s.verifying.status(), Followed: s.followed.Load()}
	if d.Followed != nil {
		d.FollowedAt = ago(d.Followed.At, s.opts.Now())
	}
	cp, err := s.store.LastCheckpoint(c.Request().Context())
	switch {
	case err == nil:
		d.Checkpoint = cp
		d.Signed = "at a time the log does not keep"
		if !cp.SignedAt.IsZero() {
			d.Signed = ago(cp.SignedAt, s.opts.Now())
		}
	case consent.ErrorCode(err) != consent.ENotFound:
		return err
	}
	keys, err := s.opts.Keys.Published(s.opts.Origin)
	if err != nil {
		return err
	}
	d.Keys = keys.Keys
	return s.render(c, http.StatusOK, "log", &consolePage{Title: "Log status", Nav: "log", Data: d})
}

// ago writes the time t as the console shows it, with how long before now it was.
func ago(t, now time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC (" + now.Sub(t).Round(time.Second).String() + " ago)"
}

// handleVerifyNow starts a verification of the whole log, for a token without a
// site limit (storeWide), and goes back to the log page, which follows it.
func (s *Server) handleVerifyNow(c echo.Context) error {
	var total int64
	cp, err := s.store.LastCheckpoint(c.Request().Context())
	switch {
	case err == nil:
		total = cp.Size
	case consent.ErrorCode(err) != consent.ENotFound:
		return err
	}
	s.verifying.start(s.store, dpoToken(c).Name, total, s.opts.Now())
	return c.Redirect(http.StatusSeeOther, consolePath+"/log#verify")
}

func (s *Server) handleVerifyProgress(c echo.Context) error {
	return c.JSON(http.StatusOK, s.verifying.status())
}
