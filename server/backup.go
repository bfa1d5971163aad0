package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// backuper is a store that copies itself while it serves: store/bolt does. A
// PostgreSQL store is backed up with the database's own tools instead.
type backuper interface {
	Backup(ctx context.Context) (*os.File, error)
}

// handleBackup sends a consistent copy of the whole store: every site's records, so
// only a token without a site limit may take it. The copy is made before the answer
// starts, so it has a length, and a client can tell a whole copy from a cut one.
func (s *Server) handleBackup(c echo.Context) error {
	token := dpoToken(c)
	if len(token.Sites) > 0 {
		return consent.Errorf(consent.EForbidden, "token %q is limited to sites; a backup holds them all", token.Name)
	}
	b, ok := s.store.(backuper)
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

// abort ends an answer whose status is sent and whose body cannot be completed. A
// client that went away needs nothing more, nor does an answer replaced by the audit
// (see dpoAuth); any other failure cuts the connection, so that the client sees an
// incomplete answer instead of a short one that looks whole.
func (s *Server) abort(c echo.Context, what string, err error) {
	if c.Request().Context().Err() != nil || errors.Is(err, errAnswerReplaced) {
		return
	}
	s.opts.Logger.Error(what+" cut short", "err", err)
	panic(http.ErrAbortHandler)
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
