package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Long answers (an export, a backup) are written after their status, in many writes:
// the helpers here keep them going for a reader that keeps reading, and make sure a
// failure never looks like a complete answer.

// abort ends an answer whose status is sent and whose body cannot be completed. A
// client that went away needs nothing more, nor does an answer replaced by the audit
// (see audited); any other failure cuts the connection, so that the client sees an
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
