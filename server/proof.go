package server

import (
	"net/http"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
)

// handleProof returns everything that proves one visitor's decisions: the records,
// whether each receipt verifies, and the snapshots of what the visitor was shown.
func (s *Server) handleProof(c echo.Context) error {
	id, records, err := s.consentRecords(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if len(records) == 0 {
		return errNoRecords
	}
	token := dpoToken(c)
	verifier, err := s.opts.Keys.LogVerifier(s.opts.Origin)
	if err != nil {
		return err
	}
	out := []*api.ProofRecord{}
	snapshots := map[string]*consent.Snapshot{}
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
		out = append(out, pr)
		if _, ok := snapshots[r.Site+" "+r.Fingerprint]; !ok {
			snap, err := s.store.Snapshot(ctx, r.Site, r.Fingerprint)
			if err != nil && consent.ErrorCode(err) != consent.ENotFound {
				return err
			}
			snapshots[r.Site+" "+r.Fingerprint] = snap
		}
	}
	if len(out) == 0 {
		// As if there were none: a token limited to sites learns nothing of the
		// others, not even that a consent id has records there.
		return errNoRecords
	}
	p := &api.Proof{ConsentID: id, Records: out, Snapshots: []*consent.Snapshot{}}
	for _, snap := range snapshots {
		if snap != nil {
			p.Snapshots = append(p.Snapshots, snap)
		}
	}
	return c.JSON(http.StatusOK, p)
}
