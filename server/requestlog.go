package server

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
)

// requestIDHeader carries the id of a request: taken from the request where a
// proxy in front set one, so that its log and consentd's name the request alike,
// made otherwise; sent back with every answer.
const requestIDHeader = "X-Request-Id"

// maxRequestID bounds a request id taken from a request: a UUID or a proxy's hex id
// fits, a client's attempt to fill the log does not.
const maxRequestID = 64

// requestIDKey is where logRequests keeps the request id in the Echo context.
const requestIDKey = "request-id"

// unmatchedRoute stands for the route of a request that matched none: one value
// for every such path, which the client chooses.
const unmatchedRoute = "unmatched"

// logRequests answers each request and then writes one INFO line for it and
// observes it in the metrics: its id, method, route, status, size and duration.
// The line names the route pattern, never the path, which may hold a consent id;
// nor the client's address, the query or a header but the request id (docs/security.md).
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		id := requestID(req.Header.Get(requestIDHeader))
		c.Set(requestIDKey, id)
		c.Response().Header().Set(requestIDHeader, id)
		if err := recovered(next, c); err != nil {
			// Answered now rather than by Echo afterwards: the line needs the status.
			c.Error(err)
		}
		took := time.Since(start)
		route, method, res := c.Path(), methodLabel(req.Method), c.Response()
		if route == "" {
			route = unmatchedRoute
		}
		s.metrics.Request(route, method, res.Status, took)
		s.opts.Logger.LogAttrs(req.Context(), slog.LevelInfo, "request",
			slog.String("request_id", id), slog.String("method", method), slog.String("route", route),
			slog.Int("status", res.Status), slog.Int64("bytes", res.Size),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000))
		return nil
	}
}

// recovered runs next and turns its panic into an internal error, answered 500 and
// logged with the request id: net/http would drop the connection without an answer
// and log the client's address. A handler that aborts on purpose
// (http.ErrAbortHandler) still does.
func recovered(next echo.HandlerFunc, c echo.Context) (err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
	}()
	return next(c)
}

// requestID returns the request id sent, if it is one: at most maxRequestID
// letters, digits, '-', '_', '.' or ':'. Otherwise it makes one.
func requestID(sent string) string {
	if len(sent) == 0 || len(sent) > maxRequestID {
		return rand.Text()
	}
	for _, r := range sent {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.' || r == ':') {
			return rand.Text()
		}
	}
	return sent
}

// requestIDOf returns the id logRequests gave c's request.
func requestIDOf(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

// methodLabel is the method as the log and the metrics name it: a client may send
// any token as its method, and each would be a series of its own.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}
