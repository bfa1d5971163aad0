package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/proof"
)

// SetTokens replaces the DPO API's tokens; consentd calls it when the token file
// changes.
func (s *Server) SetTokens(ts *auth.Tokens) { s.tokens.Store(ts) }

func (s *Server) routeDPO(e *echo.Echo) {
	g := e.Group("/v1/dpo", s.dpoAuth)
	g.GET("/verify", s.handleVerify)
	g.GET("/checkpoint", s.handleLastCheckpoint)
	g.GET("/consents/:consent_id", s.handleProof)
	g.GET("/snapshots/:fingerprint", s.handleSnapshot)
	g.GET("/audit", s.handleAudit)
	g.GET("/records", s.handleRecords)
	g.GET("/export", s.handleExport)
	g.GET("/stats", s.handleStats)
	g.DELETE("/consents/:consent_id", s.handleErase)
	g.GET("/backup", s.handleBackup)
}

const tokenKey = "dpo-token"

// dpoAuth lets only a valid bearer token through, and records every call, refused
// ones included, in the audit log before it is answered: the entry, with the status,
// is written as the answer's header is about to leave, and an entry that cannot be
// written turns the answer into a 503 before any of it has left. A call that changes
// something is on record before it acts, too.
func (s *Server) dpoAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var token *auth.Token
		// The scheme's name is case-insensitive (RFC 9110, section 11.1).
		if scheme, secret, ok := strings.Cut(c.Request().Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
			if ts := s.tokens.Load(); ts != nil {
				token = ts.Authenticate(strings.TrimSpace(secret))
			}
		}
		entry := &consent.AuditEntry{
			ID: uuid.Must(uuid.NewV7()).String(), At: s.opts.Now().UTC(),
			Method: c.Request().Method, Path: c.Request().URL.RequestURI(),
		}
		if token != nil {
			entry.Token = token.Name
		}
		res := c.Response()
		audited := false
		res.Before(func() {
			if audited {
				return // the 503 below, answered in place of the handler's answer
			}
			audited = true
			entry.Status = res.Status
			if err := s.store.AppendAudit(c.Request().Context(), entry); err != nil {
				clear(res.Header())
				s.handleError(errors.Join(err, consent.ErrUnavailable), c)
				res.Writer = droppedWriter{}
			}
		})
		if token == nil {
			res.Header().Set("WWW-Authenticate", `Bearer realm="consentd DPO API"`)
			return consent.Errorf(consent.EUnauthorized, "a valid bearer token is required: consentd token add NAME")
		}
		c.Set(tokenKey, token)
		res.Header().Set("Cache-Control", "no-store")
		if c.Request().Method != http.MethodGet {
			// A call that changes something (an erasure) is on record before it
			// acts; the entry gets its outcome as the answer leaves.
			if err := s.store.AppendAudit(c.Request().Context(), entry); err != nil {
				return errors.Join(err, consent.ErrUnavailable)
			}
		}
		return next(c)
	}
}

// droppedWriter takes the place of a response whose answer was replaced: what the
// handler still writes goes nowhere, and a streaming handler learns to stop.
type droppedWriter struct{}

func (droppedWriter) Header() http.Header { return http.Header{} }

func (droppedWriter) Write([]byte) (int, error) { return 0, errAnswerReplaced }

func (droppedWriter) WriteHeader(int) {}

var errAnswerReplaced = errors.New("server: the answer was replaced")

func dpoToken(c echo.Context) *auth.Token { return c.Get(tokenKey).(*auth.Token) }

func (s *Server) handleVerify(c echo.Context) error {
	v, err := s.store.Verify(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// handleLastCheckpoint answers the newest signed checkpoint of the chain's head, for
// an auditor to keep apart from consentd: `consentd verify --checkpoint` checks a
// store against it, even one whose own checkpoints were deleted.
func (s *Server) handleLastCheckpoint(c echo.Context) error {
	cp, err := s.store.LastCheckpoint(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cp)
}

// proofRecord is a record with the verdict on its receipt.
type proofRecord struct {
	*consent.Record
	ReceiptValid bool   `json:"receipt_valid"`
	ReceiptError string `json:"receipt_error,omitempty"`
}

// handleProof returns everything that proves one visitor's decisions: the records,
// whether each receipt verifies, and the snapshots of what the visitor was shown.
func (s *Server) handleProof(c echo.Context) error {
	id := c.Param("consent_id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return consent.Errorf(consent.EInvalid, "consent_id must be a UUID")
	}
	ctx := c.Request().Context()
	records, err := s.store.RecordsByConsent(ctx, strings.ToLower(id))
	if err != nil {
		return err
	}
	if len(records) == 0 {
		return consent.Errorf(consent.ENotFound, "no records for this consent id")
	}
	token := dpoToken(c)
	keys := s.opts.Keys.Public()
	out := []proofRecord{}
	snapshots := map[string]*consent.Snapshot{}
	for _, r := range records {
		if !token.MaySee(r.Site) {
			continue
		}
		pr := proofRecord{Record: r}
		if r.Receipt == nil {
			pr.ReceiptError = "no receipt"
		} else if err := proof.Verify(r.Receipt, keys); err != nil {
			pr.ReceiptError = err.Error()
		} else {
			pr.ReceiptValid = true
		}
		out = append(out, pr)
		if _, ok := snapshots[r.Site+" "+r.Fingerprint]; !ok {
			snap, err := s.store.Snapshot(ctx, r.Site, r.Fingerprint)
			if err != nil && consent.ErrorCode(err) != consent.ENotFound {
				return err
			}
			snapshots[r.Site+" "+r.Fingerprint] = snap
		}
	}
	if len(out) == 0 {
		return consent.Errorf(consent.EForbidden, "token %q may not see the sites of this consent id", token.Name)
	}
	list := []*consent.Snapshot{}
	for _, snap := range snapshots {
		if snap != nil {
			list = append(list, snap)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"consent_id": strings.ToLower(id), "records": out, "snapshots": list})
}

// handleSnapshot returns the snapshots of a fingerprint on the sites the token may
// see; the same configuration on two sites has the same fingerprint.
func (s *Server) handleSnapshot(c echo.Context) error {
	token := dpoToken(c)
	list := []*consent.Snapshot{}
	for key := range *s.sites.Load() {
		if !token.MaySee(key) {
			continue
		}
		snap, err := s.store.Snapshot(c.Request().Context(), key, c.Param("fingerprint"))
		if consent.ErrorCode(err) == consent.ENotFound {
			continue
		}
		if err != nil {
			return err
		}
		list = append(list, snap)
	}
	if len(list) == 0 {
		return consent.Errorf(consent.ENotFound, "no snapshot of %q on the sites this token may see", c.Param("fingerprint"))
	}
	return c.JSON(http.StatusOK, map[string]any{"snapshots": list})
}

func (s *Server) handleAudit(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	entries, err := s.store.Audit(c.Request().Context(), c.QueryParam("after"), limit)
	if err != nil {
		return err
	}
	next := ""
	if len(entries) == limit {
		next = entries[len(entries)-1].ID
	}
	return c.JSON(http.StatusOK, map[string]any{"entries": entries, "next": next})
}
