package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

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
