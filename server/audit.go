package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/auth"
)

// audited lets only a valid token through (see authenticate), whose secret
// secretOf takes from the request, and puts every call in the audit log: the DPO
// API's with the bearer token, the console's with its session cookie.
//
// A call with an accepted token is written as the answer's header is about to
// leave, and an entry that cannot be written turns the answer into a 503 before any
// of it has left; a call that changes something is on record before it acts, too.
// A call refused before a token was accepted is not written on its own, since
// anyone can make such calls by the million: it is counted with the other refusals
// of its client and written with them once a minute (see refusals).
func (s *Server) audited(secretOf func(echo.Context) string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return s.auditedCall(secretOf, next)
	}
}

func (s *Server) auditedCall(secretOf func(echo.Context) string, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		now := s.opts.Now()
		entry := s.auditEntry(c, now)
		res := c.Response()
		token, err := s.authenticate(c, entry.Client, secretOf(c), now)
		if err != nil {
			// The status the error stands for: the console answers a refusal with
			// a redirect to its sign-in page.
			entry.Status, _, _ = describe(err)
			res.Before(func() {
				if err := s.refusals.add(entry, now); err != nil {
					s.errorLog.log("audit of refused calls not written", err)
				}
			})
			return err
		}
		entry.Token = token.Name
		audited := false
		res.Before(func() {
			if audited {
				return // the 503 below, answered in place of the handler's answer
			}
			audited = true
			entry.Status = res.Status
			if err := s.store.AppendAudit(context.WithoutCancel(c.Request().Context()), entry); err != nil {
				clear(res.Header())
				s.handleError(errors.Join(err, consent.ErrUnavailable), c)
				res.Writer = droppedWriter{}
			}
		})
		c.Set(tokenKey, token)
		res.Header().Set("Cache-Control", "no-store")
		if c.Request().Method != http.MethodGet && c.Request().Method != http.MethodHead {
			// A call that changes something (an erasure) is on record before it
			// acts; the entry gets its outcome as the answer leaves.
			if err := s.store.AppendAudit(context.WithoutCancel(c.Request().Context()), entry); err != nil {
				return errors.Join(err, consent.ErrUnavailable)
			}
		}
		return next(c)
	}
}

// auditEntry returns the audit entry of the call c, without its token and status.
// Its size is bounded whatever the client sends, and it names a consent id, in the
// path or in the query, only by its digest, as Subject.
func (s *Server) auditEntry(c echo.Context, now time.Time) *consent.AuditEntry {
	req := c.Request()
	e := &consent.AuditEntry{
		ID: uuid.Must(uuid.NewV7()).String(), At: now.UTC(), Client: clientOf(c),
		Method: consent.Truncate(req.Method, 16), Path: loggedPath(c),
	}
	if id := c.Param("consent_id"); id != "" {
		e.Subject = consent.ConsentDigest(strings.ToLower(id))
	}
	if req.URL.RawQuery != "" {
		query, id := withoutConsentID(req.URL.RawQuery)
		// Cut before joining: a query may be 16 KiB, and anyone can send one.
		e.Path = consent.Truncate(e.Path, consent.MaxAuditPath-1) + "?" + consent.Truncate(query, consent.MaxAuditPath)
		if id != "" {
			e.Subject = consent.ConsentDigest(strings.ToLower(id))
		}
	}
	e.Path = consent.Truncate(e.Path, consent.MaxAuditPath)
	return e
}

// withoutConsentID returns the raw query with the value of its consent_id
// parameter, if it has one, replaced by "{consent_id}", and that value.
func withoutConsentID(rawQuery string) (query, consentID string) {
	parts := strings.Split(rawQuery, "&")
	for i, part := range parts {
		key, value, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && k == "consent_id" {
			if v, err := url.QueryUnescape(value); err == nil && consentID == "" {
				consentID = v
			}
			parts[i] = key + "={consent_id}"
		}
	}
	return strings.Join(parts, "&"), consentID
}

// droppedWriter takes the place of a response whose answer was replaced: what the
// handler still writes goes nowhere, and a streaming handler learns to stop.
type droppedWriter struct{}

func (droppedWriter) Header() http.Header { return http.Header{} }

func (droppedWriter) Write([]byte) (int, error) { return 0, errAnswerReplaced }

func (droppedWriter) WriteHeader(int) {}

var errAnswerReplaced = errors.New("server: the answer was replaced")

// refusalWindow is how long the refused calls of a client are counted before they
// are written as one audit entry.
const refusalWindow = time.Minute

// maxRefusalEntries bounds the entries one window of refusals writes: the clients
// after the first ones are counted together, in one more entry per status.
const maxRefusalEntries = 256

// refusals counts the DPO calls refused before a token was accepted, per client and
// status, and writes each window's counts as audit entries: one transaction a window
// at most, of at most maxRefusalEntries entries and one per status, each of bounded
// size, however many calls come. A window is written when it ends (by a timer, or
// by the first refusal after it if that comes first), when the audit log is read,
// and when the server closes; a crash loses at most the current window's counts.
type refusals struct {
	mu      sync.Mutex
	audit   consent.AuditStore
	log     *errorLog
	started time.Time
	timer   *time.Timer // writes the window when it ends
	byKey   map[refusalKey]*consent.AuditEntry
}

type refusalKey struct {
	client string
	status int
}

// add counts e, and writes the window before it if that one is over.
func (r *refusals) add(e *consent.AuditEntry, now time.Time) error {
	r.mu.Lock()
	due := r.takeIfOver(now)
	if r.started.IsZero() {
		r.started = now
		r.timer = time.AfterFunc(refusalWindow, func() {
			if err := r.flush(); err != nil {
				r.log.log("audit of refused calls not written", err)
			}
		})
	}
	key := refusalKey{e.Client, e.Status}
	if len(r.byKey) >= maxRefusalEntries && r.byKey[key] == nil {
		key = refusalKey{"", e.Status}
	}
	if prev := r.byKey[key]; prev != nil {
		prev.Count++
		prev.Last = e.At
	} else {
		first := *e
		first.Client, first.Count = key.client, 1
		if key.client == "" {
			first.Path = "(the calls of clients beyond the first ones this minute)"
		}
		r.byKey[key] = &first
	}
	r.mu.Unlock()
	return r.write(due)
}

// flush writes what was counted so far.
func (r *refusals) flush() error {
	r.mu.Lock()
	due := r.take()
	r.mu.Unlock()
	return r.write(due)
}

func (r *refusals) takeIfOver(now time.Time) []*consent.AuditEntry {
	if r.started.IsZero() || now.Sub(r.started) < refusalWindow {
		return nil
	}
	return r.take()
}

func (r *refusals) take() []*consent.AuditEntry {
	due := make([]*consent.AuditEntry, 0, len(r.byKey))
	for _, e := range r.byKey {
		e.ID = uuid.Must(uuid.NewV7()).String()
		due = append(due, e)
	}
	r.byKey = make(map[refusalKey]*consent.AuditEntry)
	r.started = time.Time{}
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	return due
}

func (r *refusals) write(due []*consent.AuditEntry) error {
	if len(due) == 0 {
		return nil
	}
	return r.audit.AppendAudit(context.Background(), due...)
}

// auditScanPage is how many entries GET /v1/dpo/audit reads at a time when it
// filters, and auditScanLimit the most it reads in one call: a page may then hold
// fewer entries than asked, and "next" goes on.
const (
	auditScanPage  = 500
	auditScanLimit = 10000
)

// handleAudit returns a page of the audit log, optionally only the calls about one
// consent id.
func (s *Server) handleAudit(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	subject := ""
	if v := c.QueryParam("consent_id"); v != "" {
		id, err := parseConsentID(v, "filter consent_id")
		if err != nil {
			return err
		}
		subject = consent.ConsentDigest(id)
	}
	page, err := s.auditPage(c.Request().Context(), dpoToken(c), subject, c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, page)
}

// auditPage returns up to limit audit entries after the one with id after that
// token may see, only those about subject (a ConsentDigest) unless it is "". The
// audit log speaks of every site: a token limited to sites sees only its own calls,
// which never touched another site.
func (s *Server) auditPage(ctx context.Context, token *auth.Token, subject, after string, limit int) (*api.AuditPage, error) {
	if err := s.refusals.flush(); err != nil {
		return nil, err
	}
	pageSize := limit
	if subject != "" || len(token.Sites) > 0 {
		pageSize = max(limit, auditScanPage)
	}
	entries := []*consent.AuditEntry{}
	more := true
	for scanned := 0; more && len(entries) < limit && scanned < auditScanLimit; {
		page, err := s.store.Audit(ctx, after, pageSize)
		if err != nil {
			return nil, err
		}
		more = len(page) == pageSize
		for i, e := range page {
			after = e.ID
			scanned++
			if (subject == "" || e.Subject == subject) && (len(token.Sites) == 0 || madeBy(e, token)) {
				entries = append(entries, e)
			}
			if len(entries) == limit {
				more = more || i < len(page)-1
				break
			}
		}
	}
	next := ""
	if more {
		next = after
	}
	return &api.AuditPage{Entries: entries, Next: next}, nil
}

// madeBy reports whether the call e was made with token. The name of a revoked
// token may be given again, to a token made after it: the calls of the old one are
// older than the new one.
func madeBy(e *consent.AuditEntry, token *auth.Token) bool {
	return e.Token == token.Name && !e.At.Before(token.Created)
}
