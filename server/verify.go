package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// handleVerify checks the whole log and every record against it: the whole store, so
// only a token without a site limit may (storeWide).
func (s *Server) handleVerify(c echo.Context) error {
	v, err := s.store.Verify(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
