package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
)

// mustPublished returns the verifier of the log as GET /v1/keys publishes it: all a
// visitor or a regulator has.
func mustPublished(tb testing.TB, f *fixture) *translog.Verifier {
	tb.Helper()
	rec := f.do(tb, http.MethodGet, "/v1/keys", "", map[string]string{"Origin": "https://anyone.example"})
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		tb.Fatalf("GET /v1/keys: status %d, allow-origin %q", rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
	}
	doc, err := proof.ReadPublicKeys(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := doc.Verifier()
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range doc.Keys {
		if !strings.HasPrefix(k.LogKey, doc.Origin+"+") {
			tb.Errorf("key %s is published without its note verifier key: %q", k.ID, k.LogKey)
		}
	}
	return v
}

// TestReceipts: the answer to POST carries the record's receipt, which verifies with
// the published keys alone and says what was recorded, without the snapshot every
// visitor of the banner shares; the visitor's history proves the same record in the
// log's newest tree, which extends the one of the receipt, and what was shown.
func TestReceipts(t *testing.T) {
	f := MustFixture(t, false)
	v := mustPublished(t, f)
	body := f.validBody(t)
	rec := f.post(t, body, nil)
	var created struct {
		RecordID string           `json:"record_id"`
		Receipt  *consent.Receipt `json:"receipt"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &created); err != nil || created.Receipt == nil {
		t.Fatalf("201 body %s: no receipt (%v)", rec.Body, err)
	}
	verified, err := v.VerifyReceipt(created.Receipt)
	if err != nil {
		t.Fatalf("the receipt of POST does not verify with the published keys: %v", err)
	}
	r := verified.Record
	if r.ID != created.RecordID || r.ConsentID != body["consent_id"] || r.Action != consent.ActionRejectAll ||
		r.Choices.Categories["advertising"] || r.PolicyVersion != "2021-09-13" || r.Site != testSite {
		t.Errorf("the receipt does not say what was recorded: %+v", r)
	}
	if created.Receipt.Snapshot != "" || len(rec.Body.Bytes()) > 4096 {
		t.Errorf("the answer to POST is %d bytes, with a snapshot of %d", len(rec.Body.Bytes()), len(created.Receipt.Snapshot))
	}

	var history struct{ Records []consent.Record }
	hist := f.do(t, http.MethodGet, "/v1/consents/"+body["consent_id"].(string), "", nil)
	if err := json.Unmarshal(hist.Body.Bytes(), &history); err != nil || len(history.Records) != 1 || history.Records[0].Receipt == nil {
		t.Fatalf("history %s: want the record with its receipt (%v)", hist.Body, err)
	}
	later, err := v.VerifyReceipt(history.Records[0].Receipt)
	if err != nil {
		t.Fatalf("the receipt of the history does not verify: %v", err)
	}
	if snap := later.Snapshot; snap == nil || snap.Controller.Jurisdiction != "LU" || snap.Fingerprint != body["fingerprint"] {
		t.Errorf("the history's receipt does not hold what the visitor was shown: %+v", snap)
	}
	if later.Index != verified.Index || later.Checkpoint.Size < verified.Checkpoint.Size {
		t.Errorf("the history proves leaf %d in a tree of %d, POST leaf %d in one of %d", later.Index, later.Checkpoint.Size, verified.Index, verified.Checkpoint.Size)
	}
	mustExtend(t, f, v, verified.Checkpoint, later.Checkpoint)
}

// mustExtend fails tb unless the log's consistency proof shows that newer extends
// older.
func mustExtend(tb testing.TB, f *fixture, v *translog.Verifier, older, newer *translog.Checkpoint) {
	tb.Helper()
	rec := f.do(tb, http.MethodGet, fmt.Sprintf("/v1/log/consistency?first=%d&second=%d", older.Size, newer.Size), "", nil)
	var answer struct {
		First, Second int64
		Proof         []string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); rec.Code != http.StatusOK || err != nil {
		tb.Fatalf("consistency %d → %d: status %d, %s (%v)", older.Size, newer.Size, rec.Code, rec.Body, err)
	}
	var p tlog.TreeProof
	for _, h := range answer.Proof {
		raw, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(raw) != tlog.HashSize {
			tb.Fatalf("a proof hash %q", h)
		}
		p = append(p, tlog.Hash(raw))
	}
	if err := translog.VerifyConsistency(p, older, newer); err != nil {
		tb.Errorf("the log of size %d does not extend its tree of size %d: %v", newer.Size, older.Size, err)
	}
}

// TestLogEndpoints: anyone reads the log's checkpoint, consistency proofs and hash
// tiles; the tiles give the checkpoint's root (tlog checks each tile against it) and
// prove a receipt's leaf; what is not in the log is not found, and malformed
// questions get a 400.
func TestLogEndpoints(t *testing.T) {
	// A log of its own, whose size no other test changes.
	f, _, _ := MustServerOn(t, MustFreshStore(t), MustFixture(t, false).cfg)
	v := mustPublished(t, f)
	var first *translog.Checkpoint
	var leaves [][]byte
	for range 3 {
		var created struct{ Receipt *consent.Receipt }
		if err := json.Unmarshal(f.post(t, f.validBody(t), nil).Body.Bytes(), &created); err != nil {
			t.Fatal(err)
		}
		verified, err := v.VerifyReceipt(created.Receipt)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = verified.Checkpoint
		}
		leaves = append(leaves, created.Receipt.Leaf)
	}

	rec := f.do(t, http.MethodGet, "/v1/log/checkpoint", "", map[string]string{"Origin": "https://anyone.example"})
	if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /v1/log/checkpoint: %d, %v", rec.Code, rec.Header())
	}
	head, err := v.Open(rec.Body.Bytes())
	if err != nil {
		t.Fatalf("the served checkpoint does not open with the published keys: %v\n%s", err, rec.Body)
	}
	if first.Size != 1 || head.Size != 3 {
		t.Errorf("the checkpoints have %d and %d leaves, want 1 and 3", first.Size, head.Size)
	}
	mustExtend(t, f, v, first, head)
	for query, cache := range map[string]string{
		fmt.Sprintf("first=%d&second=%d", first.Size, head.Size): "public, max-age=31536000, immutable",
		fmt.Sprintf("first=%d", first.Size):                      "no-cache", // follows the head
	} {
		if got := f.do(t, http.MethodGet, "/v1/log/consistency?"+query, "", nil).Header().Get("Cache-Control"); got != cache {
			t.Errorf("consistency?%s: Cache-Control %q, want %q", query, got, cache)
		}
	}

	tiles := tlog.TileHashReader(tlog.Tree{N: head.Size, Hash: head.Root}, httpTiles{t, f})
	root, err := tlog.TreeHash(head.Size, tiles)
	if err != nil || root != head.Root {
		t.Fatalf("the tiles give root %v, %v; the checkpoint says %v", root, err, tlog.Hash(head.Root))
	}
	p, err := translog.Prove(tiles, first.Size-1, head)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyInclusion(p, leaves[0]); err != nil {
		t.Errorf("a proof made from the tiles: %v", err)
	}

	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/v1/log/consistency?first=0", http.StatusBadRequest},
		{"/v1/log/consistency?first=x", http.StatusBadRequest},
		{"/v1/log/consistency", http.StatusBadRequest},
		{"/v1/log/consistency?first=4", http.StatusBadRequest},
		{"/v1/log/consistency?first=2&second=4", http.StatusBadRequest},
		{"/v1/log/consistency?first=3&second=2", http.StatusBadRequest},
		{"/v1/log/tile/entries/000", http.StatusNotFound},
		{"/v1/log/tile/8/0/000", http.StatusNotFound}, // x/mod's path, not C2SP's
		{"/v1/log/tile/0/x999/999", http.StatusNotFound},
		{"/v1/log/tile/0/000.p/4", http.StatusNotFound}, // wider than the tree
		{"/v1/log/tile/0/000.p/0", http.StatusNotFound},
		{"/v1/log/tile/8/000", http.StatusNotFound},                          // a level no tree of int64 leaves has
		{"/v1/log/tile/1/000.p/1", http.StatusNotFound},                      // a subtree of 256 leaves: not yet
		{"/v1/log/tile/0/x036/x028/x797/x018/x963/968", http.StatusNotFound}, // an index x/mod would wrap
	} {
		if rec := f.do(t, http.MethodGet, tt.path, "", nil); rec.Code != tt.status || !strings.Contains(rec.Body.String(), `"error"`) {
			t.Errorf("GET %s: %d %s, want %d with a JSON error", tt.path, rec.Code, rec.Body, tt.status)
		}
	}
}

// httpTiles reads the log's hash tiles from the server, as a monitor would.
type httpTiles struct {
	tb testing.TB
	f  *fixture
}

func (h httpTiles) Height() int { return translog.TileHeight }

func (h httpTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path, err := translog.TilePath(t)
		if err != nil {
			return nil, err
		}
		rec := h.f.do(h.tb, http.MethodGet, "/v1/log/"+path, "", nil)
		if rec.Code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		out[i] = rec.Body.Bytes()
	}
	return out, nil
}

func (h httpTiles) SaveTiles([]tlog.Tile, [][]byte) {}
