package server

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

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
	if r, ok := s.store.(consent.ReadyReporter); ok {
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
	body := map[string]any{"status": "not ready", "checks": checks, "error": errorBody(consent.EUnavailable, "not ready: "+strings.Join(failed, ", ")).Error}
	return c.JSON(http.StatusServiceUnavailable, body)
}

// handleHealth says that the process answers: liveness, nothing more (see
// handleReady).
func (s *Server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
