package server

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// backuper is a store that copies itself while it serves: store/bolt does. A
// PostgreSQL store is backed up with the database's own tools instead.
type backuper interface {
	WriteBackup(ctx context.Context, w io.Writer) (int64, error)
}

// handleBackup streams a consistent copy of the whole store: every site's records,
// so only a token without a site limit may take it.
func (s *Server) handleBackup(c echo.Context) error {
	token := dpoToken(c)
	if len(token.Sites) > 0 {
		return consent.Errorf(consent.EForbidden, "token %q is limited to sites; a backup holds them all", token.Name)
	}
	b, ok := s.store.(backuper)
	if !ok {
		return consent.Errorf(consent.ENotFound, "this store cannot be copied through consentd: back it up with the database's own tools")
	}
	h := c.Response().Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="consent-`+s.opts.Now().UTC().Format("2006-01-02T150405Z")+`.db"`)
	c.Response().WriteHeader(http.StatusOK)
	// The status is sent: a failure can only cut the copy short, which the client
	// tells by the file not opening or not verifying.
	if _, err := b.WriteBackup(c.Request().Context(), deadlineWriter{c.Response()}); err != nil {
		s.opts.Logger.Error("backup cut short", "err", err)
	}
	return nil
}

// streamWriteTimeout is how long a client may take to read one write of a long
// answer (an export page, a stretch of a backup).
const streamWriteTimeout = 30 * time.Second

// deadlineWriter gives each write of a long answer a deadline of its own: the
// server's write timeout would cut an export of millions of records or the backup
// of a large store, while a client that stops reading is still cut off.
type deadlineWriter struct{ w *echo.Response }

func (dw deadlineWriter) Write(p []byte) (int, error) {
	_ = http.NewResponseController(dw.w).SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return dw.w.Write(p)
}
