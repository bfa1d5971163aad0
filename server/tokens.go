package server

import (
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/metrics"
)

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

// authenticate returns the token of secret, sent by client. A client whose failures
// went over their limit is refused before its secret is looked at, even a right
// one: guessing must not go on at full speed.
func (s *Server) authenticate(c echo.Context, client, secret string, now time.Time) (*auth.Token, error) {
	ts := s.dpoTokens()
	if ts == nil {
		return nil, consent.Errorf(consent.EUnavailable, "the DPO API is unavailable: consentd could not load its token file (the operator sees why in the log and at /readyz)")
	}
	if err := s.authFailures.check(client, now); err != nil {
		s.metrics.RateLimited(metrics.LimitAuthFailure)
		s.hold(c.Request().Context())
		return nil, err
	}
	var token *auth.Token
	if secret != "" {
		token = ts.Authenticate(secret)
	}
	if token == nil {
		// Only a secret that was wrong counts: a browser signed out of the console,
		// or a page of another site that loads it, sends none, and must not use up
		// the DPO's tries.
		if secret != "" {
			s.authFailures.spend(client, now)
		}
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="consentd DPO API"`)
		return nil, consent.Errorf(consent.EUnauthorized, "a valid bearer token is required: consentd token add NAME")
	}
	return token, nil
}

// bearerSecret returns the secret of the request's bearer token, "" if none.
func bearerSecret(c echo.Context) string {
	// The scheme's name is case-insensitive (RFC 9110, section 11.1).
	if scheme, secret, ok := strings.Cut(c.Request().Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(secret)
	}
	return ""
}

const tokenKey = "dpo-token"

// dpoToken returns the token audited accepted for the call c.
func dpoToken(c echo.Context) *auth.Token { return c.Get(tokenKey).(*auth.Token) }

// storeWide lets through only a token without a site limit: the verification and
// the backup of the whole store speak of every site.
func storeWide(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if t := dpoToken(c); len(t.Sites) > 0 {
			return consent.Errorf(consent.EForbidden, "token %q is limited to sites; this needs a token without a site limit", t.Name)
		}
		return next(c)
	}
}
