package server

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/auth"
)

// handleProof returns everything that proves one visitor's decisions: the records,
// whether each receipt verifies, and the snapshots of what the visitor was shown.
func (s *Server) handleProof(c echo.Context) error {
	id, err := parseConsentID(c.Param("consent_id"), "consent_id")
	if err != nil {
		return err
	}
	p, err := s.proofOf(c.Request().Context(), dpoToken(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p)
}

// proofOf returns the proof of the consent id, of the records token may see.
func (s *Server) proofOf(ctx context.Context, token *auth.Token, id string) (*api.Proof, error) {
	records, err := s.store.RecordsByConsent(ctx, id)
	if err != nil {
		return nil, err
	}
	verifier, err := s.opts.Keys.LogVerifier(s.opts.Origin)
	if err != nil {
		return nil, err
	}
	p := &api.Proof{ConsentID: id, Records: []*api.ProofRecord{}, Snapshots: []*consent.Snapshot{}}
	seen := map[string]bool{}
	for _, r := range records {
		if !token.MaySee(r.Site) {
			continue
		}
		pr := &api.ProofRecord{Record: r}
		if r.Receipt == nil {
			pr.ReceiptError = "no receipt"
		} else if _, err := verifier.VerifyReceipt(r.Receipt); err != nil {
			pr.ReceiptError = err.Error()
		} else {
			pr.ReceiptValid = true
		}
		p.Records = append(p.Records, pr)
		if seen[r.Site+" "+r.Fingerprint] {
			continue
		}
		seen[r.Site+" "+r.Fingerprint] = true
		snap, err := s.store.Snapshot(ctx, r.Site, r.Fingerprint)
		switch {
		case err == nil:
			p.Snapshots = append(p.Snapshots, snap)
		case consent.ErrorCode(err) != consent.ENotFound:
			return nil, err
		}
	}
	if len(p.Records) == 0 {
		// As if there were none: a token limited to sites learns nothing of the
		// others, not even that a consent id has records there.
		return nil, errNoRecords
	}
	return p, nil
}
