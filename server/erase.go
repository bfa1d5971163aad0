package server

import (
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
)

// handleErase carries out an erasure request: what identifies the visitor goes, the
// proof of the decisions stays. A token limited to sites erases the records on its
// sites and answers as if there were no others: it learns nothing about the other
// sites, not even that the consent id has records there.
func (s *Server) handleErase(c echo.Context) error {
	id, records, err := s.consentRecords(c)
	if err != nil {
		return err
	}
	token := dpoToken(c)
	visible := slices.DeleteFunc(records, func(r *consent.Record) bool { return !token.MaySee(r.Site) })
	if len(visible) == 0 {
		return errNoRecords
	}
	n, err := s.store.Erase(c.Request().Context(), id, token.Sites)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, &api.Erasure{ConsentID: id, Records: len(visible), Erased: n})
}
