package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
)

const tokenKey = "dpo-token"

// dpoAuth lets only a valid bearer token through, and puts every call in the audit
// log before it is answered.
//
// A call with an accepted token is written as the answer's header is about to
// leave, and an entry that cannot be written turns the answer into a 503 before any
// of it has left; a call that changes something is on record before it acts, too.
// A call refused before a token was accepted costs the store almost nothing, since
// anyone can make such calls by the million: it is counted with the other refusals
// of its client (see refusals), and a client that keeps failing is answered 429.
func (s *Server) dpoAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		now := s.opts.Now()
		entry := s.auditEntry(c, now)
		res := c.Response()
		token, err := s.authenticate(c, entry.Client, now)
		if err != nil {
			res.Before(func() {
				entry.Status = res.Status
				if err := s.refusals.add(c.Request().Context(), entry, now); err != nil {
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

// authenticate returns the token of the request's bearer secret. A client whose
// failures went over their limit is refused before its secret is looked at.
func (s *Server) authenticate(c echo.Context, client string, now time.Time) (*auth.Token, error) {
	ts := s.dpoTokens()
	if ts == nil {
		return nil, consent.Errorf(consent.EUnavailable, "the DPO API is unavailable: consentd could not load its token file (the operator sees why in the log and at /readyz)")
	}
	if err := s.authFailures.check(client, now); err != nil {
		return nil, err
	}
	var token *auth.Token
	// The scheme's name is case-insensitive (RFC 9110, section 11.1).
	if scheme, secret, ok := strings.Cut(c.Request().Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		token = ts.Authenticate(strings.TrimSpace(secret))
	}
	if token == nil {
		s.authFailures.spend(client, now)
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="consentd DPO API"`)
		return nil, consent.Errorf(consent.EUnauthorized, "a valid bearer token is required: consentd token add NAME")
	}
	return token, nil
}

// auditEntry returns the audit entry of the call c, without its token and status.
// Its size is bounded whatever the client sends, and it names a consent id only by
// its digest.
func (s *Server) auditEntry(c echo.Context, now time.Time) *consent.AuditEntry {
	req := c.Request()
	e := &consent.AuditEntry{
		ID: uuid.Must(uuid.NewV7()).String(), At: now.UTC(), Client: clientOf(c),
		Method: truncate(req.Method, 16), Path: req.URL.Path,
	}
	if id := c.Param("consent_id"); id != "" {
		e.Path = strings.ReplaceAll(c.Path(), ":consent_id", "{consent_id}")
		e.Subject = consent.ConsentDigest(strings.ToLower(id))
	}
	if req.URL.RawQuery != "" {
		e.Path += "?" + req.URL.RawQuery
	}
	e.Path = truncate(e.Path, consent.MaxAuditPath)
	return e
}

// droppedWriter takes the place of a response whose answer was replaced: what the
// handler still writes goes nowhere, and a streaming handler learns to stop.
type droppedWriter struct{}

func (droppedWriter) Header() http.Header { return http.Header{} }

func (droppedWriter) Write([]byte) (int, error) { return 0, errAnswerReplaced }

func (droppedWriter) WriteHeader(int) {}

var errAnswerReplaced = errors.New("server: the answer was replaced")

func dpoToken(c echo.Context) *auth.Token { return c.Get(tokenKey).(*auth.Token) }

// refusalWindow is how long the refused calls of a client are counted before they
// are written as one audit entry.
const refusalWindow = time.Minute

// maxRefusalEntries bounds the entries one window of refusals writes: the clients
// after the first ones are counted together, in one more entry per status.
const maxRefusalEntries = 256

// refusals counts the DPO calls refused before a token was accepted, per client and
// status, and writes each window's counts as audit entries: one transaction a window
// at most, of at most maxRefusalEntries entries and one per status, each of bounded
// size, however many calls come. The window is written by the first refusal after it ends, by the audit
// log's reader (who should see it) and when the server closes.
type refusals struct {
	mu      sync.Mutex
	store   consent.Store
	started time.Time
	byKey   map[refusalKey]*consent.AuditEntry
}

type refusalKey struct {
	client string
	status int
}

// add counts e, and writes the window before it if that one is over.
func (r *refusals) add(ctx context.Context, e *consent.AuditEntry, now time.Time) error {
	r.mu.Lock()
	due := r.takeIfOver(now)
	if r.started.IsZero() {
		r.started = now
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
	return r.write(ctx, due)
}

// flush writes what was counted so far.
func (r *refusals) flush(ctx context.Context) error {
	r.mu.Lock()
	due := r.take()
	r.mu.Unlock()
	return r.write(ctx, due)
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
	return due
}

func (r *refusals) write(ctx context.Context, due []*consent.AuditEntry) error {
	if len(due) == 0 {
		return nil
	}
	return r.store.AppendAudit(context.WithoutCancel(ctx), due...)
}

// storeWide lets through only a token without a site limit: the audit log, the
// verification and the checkpoints of the whole store speak of every site.
func storeWide(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if t := dpoToken(c); len(t.Sites) > 0 {
			return consent.Errorf(consent.EForbidden, "token %q is limited to sites; this needs a token without a site limit", t.Name)
		}
		return next(c)
	}
}

// auditScanLimit bounds the entries one call of GET /v1/dpo/audit reads when it
// filters: a page may then hold fewer entries than asked, and "next" goes on.
const auditScanLimit = 10000

// handleAudit returns a page of the audit log, optionally only the calls about one
// consent id.
func (s *Server) handleAudit(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if err := s.refusals.flush(ctx); err != nil {
		return err
	}
	subject := ""
	if id := c.QueryParam("consent_id"); id != "" {
		if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
			return consent.Errorf(consent.EInvalid, "filter consent_id: must be a UUID")
		}
		subject = consent.ConsentDigest(strings.ToLower(id))
	}
	entries := []*consent.AuditEntry{}
	after, next := c.QueryParam("after"), ""
	for scanned := 0; len(entries) < limit && scanned < auditScanLimit; {
		page, err := s.store.Audit(ctx, after, limit)
		if err != nil {
			return err
		}
		for _, e := range page {
			if subject == "" || e.Subject == subject {
				entries = append(entries, e)
			}
			after = e.ID
			if len(entries) == limit {
				break
			}
		}
		scanned += len(page)
		if len(page) < limit {
			after = ""
			break
		}
	}
	if after != "" {
		next = after
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": entries, "next": next})
}
