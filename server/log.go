package server

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/translog"
)

// routeLog serves the store's transparency log to anyone: visitors hold receipts
// whose checkpoints they may want to check against a newer one, and monitors and
// witnesses follow the log. What it reveals is hashes, and the number of decisions
// across all sites (docs/receipts.md). There are no entry tiles: leaves name
// consent ids, the secret behind a visitor's own records.
func (s *Server) routeLog(e *echo.Echo) {
	g := e.Group("/v1/log", s.logHeaders)
	get(g, "/checkpoint", s.handleCheckpoint)
	get(g, "/consistency", s.handleConsistency)
	get(g, "/tile/*", s.handleTile)
}

// logHeaders lets any page read the log, as it may the keys.
func (s *Server) logHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Access-Control-Allow-Origin", "*")
		return next(c)
	}
}

// handleCheckpoint answers the log's newest checkpoint, a C2SP tlog-checkpoint note.
func (s *Server) handleCheckpoint(c echo.Context) error {
	cp, err := s.store.LastCheckpoint(c.Request().Context())
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-cache")
	if !cp.SignedAt.IsZero() {
		// The note says nothing of time: the header says how old it is.
		c.Response().Header().Set("Last-Modified", cp.SignedAt.UTC().Format(http.TimeFormat))
	}
	return c.Blob(http.StatusOK, "text/plain; charset=utf-8", cp.Signed)
}

// handleConsistency answers the proof that the log's tree of size second (the newest
// if not given) extends the tree of size first, as RFC 6962's get-sth-consistency
// does: the hashes, base64, from which tlog.CheckTree recomputes both roots.
func (s *Server) handleConsistency(c echo.Context) error {
	ctx := c.Request().Context()
	head, err := s.store.LastCheckpoint(ctx)
	if err != nil {
		return err
	}
	first, err := treeSize(c.QueryParam("first"), "first", head.Size)
	if err != nil {
		return err
	}
	second := head.Size
	if c.QueryParam("second") != "" {
		if second, err = treeSize(c.QueryParam("second"), "second", head.Size); err != nil {
			return err
		}
	}
	if first > second {
		return consent.Errorf(consent.EInvalid, "first (%d) is larger than second (%d)", first, second)
	}
	proof, err := translog.ProveConsistency(translog.Hashes(c.Request().Context(), s.store), first, second)
	if err != nil {
		return err
	}
	hashes := make([]string, len(proof))
	for i, h := range proof {
		hashes[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	s.followed.Store(&followed{From: first, To: second, At: s.opts.Now()})
	// The trees of both sizes never change, nor does the proof between them; without
	// second, the answer follows the log's head.
	cache := "no-cache"
	if c.QueryParam("second") != "" {
		cache = "public, max-age=31536000, immutable"
	}
	c.Response().Header().Set("Cache-Control", cache)
	return c.JSON(http.StatusOK, &api.Consistency{First: first, Second: second, Proof: hashes})
}

// followed is a consistency proof served: someone outside checked that the log's
// tree of size To extends the one of size From, which they had kept.
type followed struct {
	From, To int64
	At       time.Time
}

// treeSize reads the query parameter name as the size of a tree of the log whose
// newest has size newest leaves.
func treeSize(v, name string, newest int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err != nil || n < 1:
		return 0, consent.Errorf(consent.EInvalid, "%s must be a tree size, a whole number from 1", name)
	case n > newest:
		return 0, consent.Errorf(consent.EInvalid, "%s is %d, but the log holds %d leaves", name, n, newest)
	}
	return n, nil
}

// handleTile answers a hash tile of the log in the C2SP tlog-tiles layout. A full
// tile never changes; a partial one is served as wide as asked once the tree has
// grown that far.
func (s *Server) handleTile(c echo.Context) error {
	t, err := translog.ParseTilePath("tile/" + c.Param("*"))
	if err != nil {
		return consent.Errorf(consent.ENotFound, "not a hash tile path, such as /v1/log/tile/0/x001/234 or /v1/log/tile/1/005.p/7")
	}
	head, err := s.store.LastCheckpoint(c.Request().Context())
	if err != nil {
		return err
	}
	if !translog.TileIn(t, head.Size) {
		return consent.Errorf(consent.ENotFound, "the log has no such tile yet")
	}
	data, err := tlog.ReadTileData(t, translog.Hashes(c.Request().Context(), s.store))
	if consent.ErrorCode(err) == consent.ENotFound {
		return consent.Errorf(consent.ENotFound, "the log has no such tile yet")
	} else if err != nil {
		return err
	}
	cache := "no-cache"
	if t.W == 1<<translog.TileHeight {
		cache = "public, max-age=31536000, immutable"
	}
	c.Response().Header().Set("Cache-Control", cache)
	return c.Blob(http.StatusOK, "application/octet-stream", data)
}

// handleKeys publishes the log's name and the public keys that sign it, old ones
// included, so that anyone can check a receipt or a checkpoint without trusting this
// server.
func (s *Server) handleKeys(c echo.Context) error {
	doc, err := s.opts.Keys.Published(s.opts.Origin)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	return c.JSON(http.StatusOK, doc)
}
