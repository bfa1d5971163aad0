package server

import (
	"context"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/auth"
)

// handleErase carries out an erasure request: what identifies the visitor goes, the
// proof of the decisions stays.
func (s *Server) handleErase(c echo.Context) error {
	id, err := parseConsentID(c.Param("consent_id"), "consent_id")
	if err != nil {
		return err
	}
	e, err := s.erase(c.Request().Context(), dpoToken(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

// erase erases the records of the consent id on the sites token may see. A token
// limited to sites answers as if there were no others: it learns nothing about the
// other sites, not even that the consent id has records there.
func (s *Server) erase(ctx context.Context, token *auth.Token, id string) (*api.Erasure, error) {
	records, err := s.store.RecordsByConsent(ctx, id)
	if err != nil {
		return nil, err
	}
	visible := slices.DeleteFunc(records, func(r *consent.Record) bool { return !token.MaySee(r.Site) })
	if len(visible) == 0 {
		return nil, errNoRecords
	}
	n, err := s.store.Erase(ctx, id, token.Sites)
	if err != nil {
		return nil, err
	}
	return &api.Erasure{ConsentID: id, Records: len(visible), Erased: n}, nil
}
