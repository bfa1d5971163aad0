package server

import (
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// handleBackup sends a consistent copy of the whole store: every site's records, so
// only a token without a site limit may take it (see storeWide). The copy is made before the answer
// starts, so it has a length, and a client can tell a whole copy from a cut one.
func (s *Server) handleBackup(c echo.Context) error {
	b, ok := s.store.(consent.Backuper)
	if !ok {
		return consent.Errorf(consent.ENotFound, "this store cannot be copied through consentd: back it up with the database's own tools")
	}
	f, err := b.Backup(c.Request().Context())
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	h.Set("Content-Disposition", `attachment; filename="consent-`+s.opts.Now().UTC().Format("2006-01-02T150405Z")+`.db"`)
	c.Response().WriteHeader(http.StatusOK)
	if _, err := io.Copy(deadlineWriter{c.Response()}, f); err != nil {
		s.abort(c, "backup", err)
	}
	return nil
}
