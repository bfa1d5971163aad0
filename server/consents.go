package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/metrics"
)

// limitConsents answers 429 to a client (an IP prefix) that posts decisions faster
// than Options.ConsentLimit allows, before its body is read: no visitor decides
// that often, and each record costs disk. The banner sends a decision refused so
// again on the next page view.
func (s *Server) limitConsents(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.consentLimits.take(clientOf(c), s.opts.Now()); err != nil {
			s.metrics.RateLimited(metrics.LimitConsent)
			s.hold(c.Request().Context())
			return err
		}
		return next(c)
	}
}

// handleCreateConsent records one decision and answers 201 only once it is durable.
func (s *Server) handleCreateConsent(c echo.Context) error {
	req := c.Request()
	// A client may half-close its connection once it has sent the body, which
	// cancels the request's context: the decision is still recorded.
	ctx := context.WithoutCancel(req.Context())
	if err := checkContentType(req.Header.Get("Content-Type")); err != nil {
		return err
	}
	if req.ContentLength > MaxConsentBody {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), req.Body, MaxConsentBody))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return tooLarge()
	} else if err != nil {
		return consent.Errorf(consent.EInvalid, "could not read the body")
	}
	decision, err := decodeConsentRequest(body)
	if err != nil {
		return err
	}
	st := s.servedSite(decision.Site)
	if st == nil {
		return consent.Errorf(consent.ENotFound, "unknown site %q", decision.Site)
	}
	if !s.originAllowed(st, req) {
		return consent.Errorf(consent.EForbidden, "origin %q may not record consents for site %s", req.Header.Get("Origin"), st.Key)
	}
	if err := decision.Validate(st.Site, s.demoHost(req)); err != nil {
		return err
	}
	shown, err := s.shownSnapshot(ctx, st, decision.Fingerprint)
	if err != nil {
		return err
	}
	if err := decision.ValidateChoices(st.Site, shown); err != nil {
		return err
	}
	now := s.opts.Now()
	if err := s.disk.check(now); err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	client, _ := netip.ParseAddr(c.RealIP())
	record := decision.Record(st.Site, consent.Arrival{
		RecordID:  id.String(),
		At:        now.UTC().Truncate(time.Millisecond),
		Client:    client,
		UserAgent: req.UserAgent(),
	})
	receipt, err := s.store.Append(ctx, record)
	if err != nil {
		return err
	}
	s.metrics.Recorded(record.Site, string(record.Action))
	// Without the snapshot, which every visitor of a banner shares: kilobytes that
	// the banner throws away, and that cost more to send than the rest of the POST.
	// GET /v1/consents/{id}, the visitor's copy to keep, has it.
	answer, err := appendCreated(make([]byte, 0, 2048), record, receipt)
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusCreated, answer)
}

// appendCreated appends the answer to POST /v1/consents: the record's ids and time,
// and its receipt without the snapshot. Written member by member, on the hottest
// path, at a fraction of what a reflective encoder costs; TestCreatedAnswer holds it
// to consent.Receipt's JSON.
func appendCreated(b []byte, r *consent.Record, receipt *consent.Receipt) ([]byte, error) {
	var err error
	b = append(b, `{"record_id":`...)
	b = appendQuoted(b, r.ID, &err)
	b = append(b, `,"consent_id":`...)
	b = appendQuoted(b, r.ConsentID, &err)
	b = append(b, `,"recorded_at":"`...)
	b = r.RecordedAt.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","receipt":{"version":`...)
	b = appendQuoted(b, receipt.Version, &err)
	b = append(b, `,"decision":`...)
	b = appendQuoted(b, receipt.Decision, &err)
	b = append(b, `,"leaf":"`...)
	b = base64.StdEncoding.AppendEncode(b, receipt.Leaf)
	b = append(b, `","proof":`...)
	b = appendQuoted(b, receipt.Proof, &err)
	return append(b, "}}"...), err
}

// appendQuoted appends s as a JSON string, and sets *err to the first error: s is
// not valid UTF-8.
func appendQuoted(b []byte, s string, err *error) []byte {
	b, e := jsontext.AppendQuote(b, s)
	if e != nil && *err == nil {
		*err = fmt.Errorf("server: answer: %w", e)
	}
	return b
}

// shownSnapshot returns what the visitor who answered fingerprint was shown: the
// banner served now, or any banner served before, whose snapshot is stored (a
// visitor may answer a banner served before a reload or a restart).
func (s *Server) shownSnapshot(ctx context.Context, st *site, fingerprint string) (*consent.Snapshot, error) {
	if fingerprint == st.bundle.Fingerprint {
		return st.bundle.Snapshot, nil
	}
	snap, err := s.store.Snapshot(ctx, st.Key, fingerprint)
	if consent.ErrorCode(err) == consent.ENotFound {
		return nil, consent.Errorf(consent.EInvalid, "fingerprint %q was never served for site %s", fingerprint, st.Key)
	}
	return snap, err
}

// demoHost is the host whose pages may post decisions besides the sites' own: the
// server's own, where the demo pages live, when they are on; "" otherwise.
func (s *Server) demoHost(r *http.Request) string {
	if s.opts.Demo {
		return r.Host
	}
	return ""
}

// errNoRecords answers a consent id without records, or none the caller may see.
var errNoRecords = consent.Errorf(consent.ENotFound, "no records for this consent id")

func tooLarge() error {
	return consent.Errorf(consent.ETooLarge, "body is larger than %d bytes", MaxConsentBody)
}

// checkContentType accepts JSON and text/plain: navigator.sendBeacon and a fetch
// without CORS preflight can only send the latter.
func checkContentType(header string) error {
	if header == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(header)
	if err == nil && (mt == "application/json" || mt == "text/plain") {
		return nil
	}
	return consent.Errorf(consent.EUnsupported, "Content-Type must be application/json or text/plain")
}

// handleGetConsents returns a visitor's own records, oldest first. The consent id is
// the secret: whoever holds the cookie may see what it recorded.
func (s *Server) handleGetConsents(c echo.Context) error {
	id, records, err := s.consentRecords(c)
	if err != nil {
		return err
	}
	if len(records) == 0 {
		return errNoRecords
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{"consent_id": id, "records": records})
}

// consentRecords returns the consent id in the path of c and its records, oldest
// first.
func (s *Server) consentRecords(c echo.Context) (string, []*consent.Record, error) {
	id, err := parseConsentID(c.Param("consent_id"), "consent_id")
	if err != nil {
		return "", nil, err
	}
	records, err := s.store.RecordsByConsent(c.Request().Context(), id)
	return id, records, err
}

// parseConsentID returns the consent id in v, named name, in lower case: a UUID in
// its canonical form (36 characters), whatever the case of its hex digits.
func parseConsentID(v, name string) (string, error) {
	if _, err := uuid.Parse(v); err != nil || len(v) != 36 {
		return "", consent.Errorf(consent.EInvalid, "%s must be a UUID", name)
	}
	return strings.ToLower(v), nil
}
