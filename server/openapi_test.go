package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/store/storetest"
	"github.com/mixvoip/consentd/translog"
)

// openAPI is openapi.yaml, loaded and validated, with a router that finds the
// operation a request is for.
type openAPI struct {
	doc    *openapi3.T
	router routers.Router
}

// MustOpenAPI loads ../openapi.yaml and fails tb unless it is a valid OpenAPI document.
func MustOpenAPI(tb testing.TB) *openAPI {
	tb.Helper()
	// kin-openapi decodes bodies by media type; these are the ones it does not know,
	// or (text/plain) knows only as a string where consentd reads JSON.
	openapi3filter.RegisterBodyDecoder("text/plain", jsonOrPlainDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", ndjsonDecoder)

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../openapi.yaml")
	if err != nil {
		tb.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		tb.Fatalf("openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		tb.Fatalf("route openapi.yaml: %v", err)
	}
	return &openAPI{doc: doc, router: router}
}

// jsonOrPlainDecoder reads a text/plain body as JSON where the spec gives it an
// object schema: POST /v1/consents takes the same JSON as text/plain, for sendBeacon.
func jsonOrPlainDecoder(body io.Reader, h http.Header, schema *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
	if schema != nil && schema.Value != nil && schema.Value.Type.Is("object") {
		return openapi3filter.JSONBodyDecoder(body, h, schema, enc)
	}
	return openapi3filter.PlainBodyDecoder(body, h, schema, enc)
}

// ndjsonDecoder reads NDJSON as the array of its lines, which is how openapi.yaml
// describes the stream, so that every line is validated against the item schema.
func ndjsonDecoder(body io.Reader, h http.Header, schema *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
	lines := []any{}
	sc := bufio.NewScanner(body)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		v, err := openapi3filter.JSONBodyDecoder(bytes.NewReader(sc.Bytes()), h, nil, enc)
		if err != nil {
			return nil, fmt.Errorf("NDJSON line %d: %w", n, err)
		}
		lines = append(lines, v)
	}
	return lines, sc.Err()
}

// bearerPresent checks what the spec can know of a DPO token: that one is sent.
// Whether it is valid is the server's to say, with a 401.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	token, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// serve validates req against the spec, lets srv answer it, validates the answer,
// and returns it with the operation's "METHOD /path status". invalid says that req
// breaks the spec on purpose: the spec must then reject it too.
func (api *openAPI) serve(t *testing.T, srv http.Handler, req *http.Request, invalid bool) (*httptest.ResponseRecorder, string) {
	t.Helper()
	route, params, err := api.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in openapi.yaml: %v", req.Method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: bearerPresent, SkipSettingDefaults: true, MultiError: true},
	}
	err = openapi3filter.ValidateRequest(req.Context(), in)
	switch {
	case invalid && err == nil:
		t.Errorf("the request is meant to break openapi.yaml, which accepts it: the spec is looser than the server")
	case !invalid && err != nil:
		t.Errorf("the request breaks openapi.yaml:\n%v", err)
	}

	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	op := fmt.Sprintf("%s %s %d", req.Method, route.Path, rec.Code)
	if route.Operation.Responses.Status(rec.Code) == nil {
		t.Errorf("%s: openapi.yaml does not document this status; body %s", op, excerpt(rec))
		return rec, op
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	out.SetBodyBytes(rec.Body.Bytes())
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		t.Errorf("%s: the answer breaks openapi.yaml:\n%v\nheaders %v\nbody %s", op, err, rec.Header(), excerpt(rec))
	}
	return rec, op
}

// excerpt is the start of an answer's body, for a failure message; a compressed body
// is only measured.
func excerpt(rec *httptest.ResponseRecorder) string {
	if enc := rec.Header().Get("Content-Encoding"); enc != "" {
		return fmt.Sprintf("(%d bytes, %s)", rec.Body.Len(), enc)
	}
	if b := rec.Body.String(); len(b) > 500 {
		return b[:500] + "…"
	}
	return rec.Body.String()
}

// faultyStore is a real store that fails while a fault is set: a plain error stands
// for a failing disk (500), consent.ErrUnavailable for a full write queue or a store
// shutting down (503). auditFault fails only the audit log, which turns a refused
// DPO call into a 503.
type faultyStore struct {
	consent.Store
	fault, auditFault error
}

var _ consent.Store = (*faultyStore)(nil)

func (s *faultyStore) Append(ctx context.Context, r *consent.Record) (*consent.Receipt, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.Append(ctx, r)
}

func (s *faultyStore) RecordsByConsent(ctx context.Context, id string) ([]*consent.Record, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.RecordsByConsent(ctx, id)
}

func (s *faultyStore) Snapshot(ctx context.Context, site, fingerprint string) (*consent.Snapshot, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.Snapshot(ctx, site, fingerprint)
}

func (s *faultyStore) Records(ctx context.Context, f consent.Filter, after string, limit int) ([]*consent.Record, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.Records(ctx, f, after, limit)
}

func (s *faultyStore) AppendNDJSON(ctx context.Context, f consent.Filter, after string, limit int, dst []byte) ([]byte, int, string, error) {
	if s.fault != nil {
		return dst, 0, "", s.fault
	}
	return consent.AppendNDJSON(ctx, s.Store, f, after, limit, dst)
}

func (s *faultyStore) Backup(ctx context.Context) (*os.File, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.(*countingStore).Store.(*bolt.Store).Backup(ctx)
}

func (s *faultyStore) LastCheckpoint(ctx context.Context) (*consent.Checkpoint, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.LastCheckpoint(ctx)
}

func (s *faultyStore) Erase(ctx context.Context, id string, sites []string) (int, error) {
	if s.fault != nil {
		return 0, s.fault
	}
	return s.Store.Erase(ctx, id, sites)
}

func (s *faultyStore) Verify(ctx context.Context, archived ...*consent.Checkpoint) (*consent.Verification, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.Verify(ctx, archived...)
}

func (s *faultyStore) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.ReadHashes(ctx, indexes)
}

func (s *faultyStore) Audit(ctx context.Context, after string, limit int) ([]*consent.AuditEntry, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.Audit(ctx, after, limit)
}

func (s *faultyStore) AppendAudit(ctx context.Context, e ...*consent.AuditEntry) error {
	if s.auditFault != nil {
		return s.auditFault
	}
	return s.Store.AppendAudit(ctx, e...)
}

// apiCase is one request to the server, and the status it must get.
type apiCase struct {
	name          string
	method, path  string
	body          string
	header        map[string]string
	status        int
	invalid       bool         // the request breaks openapi.yaml on purpose
	fault, audit  error        // set on the store while the request is served
	handler       http.Handler // the server to ask, if not the one on the faulty store
	checkResponse func(t *testing.T, rec *httptest.ResponseRecorder)
}

// TestOpenAPI sends a request for every operation and every status that openapi.yaml
// documents, validates each request and answer against it, and fails for any
// documented answer that no request produced.
func TestOpenAPI(t *testing.T) {
	api := MustOpenAPI(t)
	base := MustFixture(t, false)
	demo := MustFixture(t, true)

	// A server of its own, on the fixture's real store, so that faults can be
	// switched on for a request without touching the other tests' server.
	store := &faultyStore{Store: base.store}
	f, all, voxbi := MustServerOn(t, store, base.cfg)
	// The same store behind a wrapper that hides its backup, as a store without one.
	uncopyable, uncopyableToken, _ := MustServerOn(t, struct{ consent.Store }{base.store}, base.cfg)
	// A new store, that has signed nothing yet.
	fresh := MustFreshStore(t)
	unsigned, _, _ := MustServerOn(t, fresh, base.cfg)
	// A log with a full tile.
	tiled := MustFreshStore(t)
	for range 1 << translog.TileHeight {
		storetest.MustAppend(t, tiled, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	}
	full, _, _ := MustServerOn(t, tiled, base.cfg)

	consentBody := func(change func(map[string]any)) (string, string) {
		b := f.validBody(t)
		if change != nil {
			change(b)
		}
		return b["consent_id"].(string), MustJSON(t, b)
	}
	id, created := consentBody(nil)
	_, acceptAll := consentBody(func(b map[string]any) {
		b["action"] = "accept_all"
		b["choices"] = f.choices(true)
	})
	erasable, erasableBody := consentBody(nil)
	_, unknownCategory := consentBody(func(b map[string]any) {
		b["choices"].(map[string]any)["categories"].(map[string]bool)["analytics"] = false
	})
	_, unknownSite := consentBody(func(b map[string]any) { b["site"] = "example.org" })
	_, tooLarge := consentBody(func(b map[string]any) { b["url"] = testOrigin + "/" + strings.Repeat("a", 9000) })
	unknownID := uuid.NewString()
	fp := banner.Fingerprint(f.cfg.Sites[testSite])
	etag := f.do(t, http.MethodGet, "/v1/banner/"+testSite+".js", "", nil).Header().Get("ETag")
	demoETag := demo.do(t, http.MethodGet, "/demo/"+testSite+"/banner.js", "", nil).Header().Get("ETag")
	prefsETag := f.do(t, http.MethodGet, "/v1/banner/"+testSite+"/fr.js", "", nil).Header().Get("ETag")
	visitorETag := f.do(t, http.MethodGet, "/v1/visitor/"+testSite, "", nil).Header().Get("ETag")
	from := time.Now().UTC().Format(time.DateOnly)
	to := time.Now().UTC().Add(48 * time.Hour).Format(time.RFC3339)
	disk := errors.New("disk failed")

	// A consent id with records on two sites: a token of one of them erases its own.
	twoSites, twoSitesBody := consentBody(nil)
	if rec := f.post(t, MustJSONMap(t, twoSitesBody), nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	voxbiBody := f.validBodyFor(t, "voxbi.com")
	voxbiBody["consent_id"] = twoSites
	if rec := f.post(t, voxbiBody, map[string]string{"Origin": "https://voxbi.com"}); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	// A server whose clients have spent their limits: one decision, one wrong token.
	limited, limitedToken, _ := MustServerWith(t, base.store, base.cfg, server.Options{
		ConsentLimit: server.Limit{Rate: 1e-6, Burst: 1}, AuthFailureLimit: server.Limit{Rate: 1e-6, Burst: 1}})
	_, spent := consentBody(nil)
	if rec := limited.post(t, MustJSONMap(t, spent), nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	limited.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess"))
	// A server short of disk space: not ready.
	short, _, _ := MustServerWith(t, base.store, base.cfg, server.Options{Disk: server.DiskGuard{Dir: t.TempDir(), MinFree: 1 << 62}})

	post := func(contentType, origin string) map[string]string {
		h := map[string]string{"Content-Type": contentType}
		if origin != "" {
			h["Origin"] = origin
		}
		return h
	}
	asJSON, asBeacon := post("application/json", testOrigin), post("text/plain;charset=UTF-8", testOrigin)

	tests := []apiCase{
		{name: "banner brotli", method: "GET", path: "/v1/banner/" + testSite + ".js", header: map[string]string{"Accept-Encoding": "br, gzip"}, status: 200,
			checkResponse: wantHeader("Content-Encoding", "br")},
		{name: "banner identity", method: "GET", path: "/v1/banner/" + testSite + ".js", status: 200},
		{name: "banner not modified", method: "GET", path: "/v1/banner/" + testSite + ".js", header: map[string]string{"If-None-Match": etag}, status: 304},
		{name: "banner of unknown site", method: "GET", path: "/v1/banner/example.org.js", status: 404},
		{name: "second layer", method: "GET", path: "/v1/banner/" + testSite + "/fr.js", header: map[string]string{"Accept-Encoding": "br"}, status: 200,
			checkResponse: wantHeader("Content-Encoding", "br")},
		{name: "second layer not modified", method: "GET", path: "/v1/banner/" + testSite + "/fr.js", header: map[string]string{"If-None-Match": prefsETag}, status: 304},
		{name: "second layer in a language the site lacks", method: "GET", path: "/v1/banner/" + testSite + "/nl.js", status: 404},
		{name: "second layer of a configuration long gone", method: "GET", path: "/v1/banner/" + testSite + "/fr.js?f=0123456789abcdef", status: 404},
		{name: "banner in the browser's language", method: "GET", path: "/v1/banner/" + testSite + ".js", header: map[string]string{"Accept-Language": "fr-LU, fr;q=0.9"}, status: 200},

		{name: "consent as JSON", method: "POST", path: "/v1/consents", body: created, header: asJSON, status: 201},
		{name: "consent by beacon", method: "POST", path: "/v1/consents", body: acceptAll, header: asBeacon, status: 201},
		{name: "consent to erase", method: "POST", path: "/v1/consents", body: erasableBody, header: asJSON, status: 201},
		{name: "consent malformed", method: "POST", path: "/v1/consents", body: `{"site":`, header: asJSON, status: 400, invalid: true},
		{name: "consent unknown field", method: "POST", path: "/v1/consents", body: strings.Replace(created, `{`, `{"tracking":true,`, 1), header: asJSON, status: 400, invalid: true},
		{name: "consent unknown category", method: "POST", path: "/v1/consents", body: unknownCategory, header: asJSON, status: 400},
		{name: "consent foreign origin", method: "POST", path: "/v1/consents", body: created, header: post("application/json", "https://evil.example"), status: 403},
		{name: "consent without origin", method: "POST", path: "/v1/consents", body: created, header: post("application/json", ""), status: 403, invalid: true},
		{name: "consent unknown site", method: "POST", path: "/v1/consents", body: unknownSite, header: asJSON, status: 404},
		{name: "consent too large", method: "POST", path: "/v1/consents", body: tooLarge, header: asJSON, status: 413},
		{name: "consent as form", method: "POST", path: "/v1/consents", body: "site=x", header: post("application/x-www-form-urlencoded", testOrigin), status: 415, invalid: true},
		{name: "consent on failing disk", method: "POST", path: "/v1/consents", body: created, header: asJSON, status: 500, fault: disk},
		{name: "consent on full queue", method: "POST", path: "/v1/consents", body: created, header: asJSON, status: 503, fault: consent.ErrUnavailable},
		{name: "consent over the client's limit", method: "POST", path: "/v1/consents", body: created, header: asJSON, status: 429, handler: limited.srv},

		{name: "preflight", method: "OPTIONS", path: "/v1/consents", header: map[string]string{"Origin": testOrigin, "Access-Control-Request-Method": "POST"}, status: 204},
		{name: "preflight foreign origin", method: "OPTIONS", path: "/v1/consents", header: map[string]string{"Origin": "https://evil.example"}, status: 403},

		{name: "own consents", method: "GET", path: "/v1/consents/" + id, status: 200},
		{name: "own consents upper case", method: "GET", path: "/v1/consents/" + strings.ToUpper(id), header: map[string]string{"Origin": testOrigin}, status: 200},
		{name: "own consents bad id", method: "GET", path: "/v1/consents/nope", status: 400, invalid: true},
		{name: "own consents unknown id", method: "GET", path: "/v1/consents/" + unknownID, status: 404},
		{name: "own consents failing disk", method: "GET", path: "/v1/consents/" + id, status: 500, fault: disk},
		{name: "own consents store closing", method: "GET", path: "/v1/consents/" + id, status: 503, fault: consent.ErrUnavailable},

		{name: "visitor page", method: "GET", path: "/v1/visitor/" + testSite + "?lang=fr", header: map[string]string{"Accept-Language": "de"}, status: 200,
			checkResponse: wantHeader("Referrer-Policy", "no-referrer")},
		{name: "visitor page not modified", method: "GET", path: "/v1/visitor/" + testSite, header: map[string]string{"If-None-Match": visitorETag}, status: 304},
		{name: "visitor page of unknown site", method: "GET", path: "/v1/visitor/example.org", status: 404},

		{name: "keys", method: "GET", path: "/v1/keys", status: 200},

		{name: "checkpoint", method: "GET", path: "/v1/log/checkpoint", status: 200,
			checkResponse: wantBody("\n\n— " + storetest.Origin + " ")},
		{name: "checkpoint of an empty log", method: "GET", path: "/v1/log/checkpoint", status: 404, handler: unsigned.srv},
		{name: "checkpoint failing disk", method: "GET", path: "/v1/log/checkpoint", status: 500, fault: disk},
		{name: "checkpoint store closing", method: "GET", path: "/v1/log/checkpoint", status: 503, fault: consent.ErrUnavailable},
		{name: "consistency", method: "GET", path: "/v1/log/consistency?first=1", status: 200},
		{name: "consistency from no tree", method: "GET", path: "/v1/log/consistency?first=0", status: 400, invalid: true},
		{name: "consistency from a tree beyond the log", method: "GET", path: "/v1/log/consistency?first=100000000", status: 400},
		{name: "consistency of an empty log", method: "GET", path: "/v1/log/consistency?first=1", status: 404, handler: unsigned.srv},
		{name: "consistency failing disk", method: "GET", path: "/v1/log/consistency?first=1", status: 500, fault: disk},
		{name: "consistency store closing", method: "GET", path: "/v1/log/consistency?first=1", status: 503, fault: consent.ErrUnavailable},
		{name: "tile", method: "GET", path: "/v1/log/tile/0/000", status: 200, handler: full.srv,
			checkResponse: wantHeader("Cache-Control", "public, max-age=31536000, immutable")},
		{name: "tile not yet full", method: "GET", path: "/v1/log/tile/0/000", status: 404, handler: unsigned.srv},
		{name: "tile failing disk", method: "GET", path: "/v1/log/tile/0/000", status: 500, fault: disk},
		{name: "tile store closing", method: "GET", path: "/v1/log/tile/0/000", status: 503, fault: consent.ErrUnavailable},
		{name: "partial tile", method: "GET", path: "/v1/log/tile/0/000.p/1", status: 200,
			checkResponse: wantHeader("Cache-Control", "no-cache")},
		{name: "partial tile wider than the tree", method: "GET", path: "/v1/log/tile/0/000.p/255", status: 404, handler: unsigned.srv},
		{name: "partial tile failing disk", method: "GET", path: "/v1/log/tile/0/000.p/1", status: 500, fault: disk},
		{name: "partial tile store closing", method: "GET", path: "/v1/log/tile/0/000.p/1", status: 503, fault: consent.ErrUnavailable},
		{name: "healthz", method: "GET", path: "/healthz", status: 200},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "readyz short of disk", method: "GET", path: "/readyz", status: 503, handler: short.srv},
		{name: "metrics", method: "GET", path: "/metrics", status: 200,
			checkResponse: wantBody("consentd_records_total{")},

		{name: "verify", method: "GET", path: "/v1/dpo/verify", header: bearer(all), status: 200},
		{name: "verify without token", method: "GET", path: "/v1/dpo/verify", status: 401, invalid: true},
		{name: "verify with a token limited to a site", method: "GET", path: "/v1/dpo/verify", header: bearer(voxbi), status: 403},
		{name: "verify unknown token", method: "GET", path: "/v1/dpo/verify", header: bearer("cdt_guess"), status: 401},
		{name: "verify failing disk", method: "GET", path: "/v1/dpo/verify", header: bearer(all), status: 500, fault: disk},
		{name: "verify refused while the audit fails", method: "GET", path: "/v1/dpo/verify", header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "verify, unaudited", method: "GET", path: "/v1/dpo/verify", header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},
		{name: "verify over the client's failure limit", method: "GET", path: "/v1/dpo/verify", header: bearer(limitedToken), status: 429, handler: limited.srv},

		{name: "proof", method: "GET", path: "/v1/dpo/consents/" + id, header: bearer(all), status: 200,
			checkResponse: wantBody(`"snapshots":[{`)},
		{name: "proof bad id", method: "GET", path: "/v1/dpo/consents/nope", header: bearer(all), status: 400, invalid: true},
		{name: "proof without token", method: "GET", path: "/v1/dpo/consents/" + id, status: 401, invalid: true},
		{name: "proof of another site", method: "GET", path: "/v1/dpo/consents/" + id, header: bearer(voxbi), status: 404},
		{name: "proof unknown id", method: "GET", path: "/v1/dpo/consents/" + unknownID, header: bearer(all), status: 404},
		{name: "proof failing disk", method: "GET", path: "/v1/dpo/consents/" + id, header: bearer(all), status: 500, fault: disk},
		{name: "proof refused while the audit fails", method: "GET", path: "/v1/dpo/consents/" + id, header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "proof, unaudited", method: "GET", path: "/v1/dpo/consents/" + id, header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},
		{name: "proof over the client's failure limit", method: "GET", path: "/v1/dpo/consents/" + id, header: bearer(limitedToken), status: 429, handler: limited.srv},

		{name: "erase of another site", method: "DELETE", path: "/v1/dpo/consents/" + erasable, header: bearer(voxbi), status: 404},
		{name: "erase of two sites with a token of one", method: "DELETE", path: "/v1/dpo/consents/" + twoSites, header: bearer(voxbi), status: 200,
			checkResponse: wantBody(`"erased":1,"records":1`)},
		{name: "erase", method: "DELETE", path: "/v1/dpo/consents/" + erasable, header: bearer(all), status: 200,
			checkResponse: wantBody(`"erased":1`)},
		{name: "erase bad id", method: "DELETE", path: "/v1/dpo/consents/nope", header: bearer(all), status: 400, invalid: true},
		{name: "erase without token", method: "DELETE", path: "/v1/dpo/consents/" + erasable, status: 401, invalid: true},
		{name: "erase unknown id", method: "DELETE", path: "/v1/dpo/consents/" + unknownID, header: bearer(all), status: 404},
		{name: "erase failing disk", method: "DELETE", path: "/v1/dpo/consents/" + erasable, header: bearer(all), status: 500, fault: disk},
		{name: "erase refused while the audit fails", method: "DELETE", path: "/v1/dpo/consents/" + erasable, header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "erase, unaudited", method: "DELETE", path: "/v1/dpo/consents/" + erasable, header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},
		{name: "erase over the client's failure limit", method: "DELETE", path: "/v1/dpo/consents/" + erasable, header: bearer(limitedToken), status: 429, handler: limited.srv},

		{name: "snapshots", method: "GET", path: "/v1/dpo/snapshots/" + fp, header: bearer(all), status: 200},
		{name: "snapshots without token", method: "GET", path: "/v1/dpo/snapshots/" + fp, status: 401, invalid: true},
		{name: "snapshots of another site", method: "GET", path: "/v1/dpo/snapshots/" + fp, header: bearer(voxbi), status: 404},
		{name: "snapshots unknown", method: "GET", path: "/v1/dpo/snapshots/0123456789abcdef", header: bearer(all), status: 404},
		{name: "snapshots failing disk", method: "GET", path: "/v1/dpo/snapshots/" + fp, header: bearer(all), status: 500, fault: disk},
		{name: "snapshots refused while the audit fails", method: "GET", path: "/v1/dpo/snapshots/" + fp, header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "snapshots, unaudited", method: "GET", path: "/v1/dpo/snapshots/" + fp, header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},
		{name: "snapshots over the client's failure limit", method: "GET", path: "/v1/dpo/snapshots/" + fp, header: bearer(limitedToken), status: 429, handler: limited.srv},

		{name: "audit", method: "GET", path: "/v1/dpo/audit?limit=3", header: bearer(all), status: 200,
			checkResponse: wantBody(`"entries":[{`)},
		{name: "audit limit 0", method: "GET", path: "/v1/dpo/audit?limit=0", header: bearer(all), status: 400, invalid: true},
		{name: "audit bad cursor", method: "GET", path: "/v1/dpo/audit?after=nope", header: bearer(all), status: 400, invalid: true},
		{name: "audit without token", method: "GET", path: "/v1/dpo/audit", status: 401, invalid: true},
		{name: "audit of one consent id", method: "GET", path: "/v1/dpo/audit?consent_id=" + id, header: bearer(all), status: 200,
			checkResponse: wantBody(`"path":"/v1/dpo/consents/{consent_id}"`)},
		{name: "audit with a token limited to a site", method: "GET", path: "/v1/dpo/audit", header: bearer(voxbi), status: 403},
		{name: "audit failing disk", method: "GET", path: "/v1/dpo/audit", header: bearer(all), status: 500, fault: disk},
		{name: "audit refused while the audit fails", method: "GET", path: "/v1/dpo/audit", header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "audit, unaudited", method: "GET", path: "/v1/dpo/audit", header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},
		{name: "audit over the client's failure limit", method: "GET", path: "/v1/dpo/audit", header: bearer(limitedToken), status: 429, handler: limited.srv},

		{name: "records with every filter", method: "GET", header: bearer(all), status: 200,
			path:          "/v1/dpo/records?site=" + testSite + "&from=" + from + "&to=" + to + "&action=reject_all&fingerprint=" + fp + "&language=en&limit=2",
			checkResponse: wantBody(`"records":[{`)},
		{name: "records unknown action", method: "GET", path: "/v1/dpo/records?action=maybe", header: bearer(all), status: 400, invalid: true},
		{name: "records bad date", method: "GET", path: "/v1/dpo/records?to=2026-13-01", header: bearer(all), status: 400},
		{name: "records from after to", method: "GET", path: "/v1/dpo/records?from=2026-02-01&to=2026-01-01", header: bearer(all), status: 400},
		{name: "records unknown site", method: "GET", path: "/v1/dpo/records?site=example.org", header: bearer(all), status: 400},
		{name: "records bad cursor", method: "GET", path: "/v1/dpo/records?after=nope", header: bearer(all), status: 400, invalid: true},
		{name: "records without token", method: "GET", path: "/v1/dpo/records", status: 401, invalid: true},
		{name: "records of another site", method: "GET", path: "/v1/dpo/records?site=" + testSite, header: bearer(voxbi), status: 403},
		{name: "records failing disk", method: "GET", path: "/v1/dpo/records", header: bearer(all), status: 500, fault: disk},
		{name: "records refused while the audit fails", method: "GET", path: "/v1/dpo/records", header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "records over the client's failure limit", method: "GET", path: "/v1/dpo/records", header: bearer(limitedToken), status: 429, handler: limited.srv},
		{name: "records, unaudited", method: "GET", path: "/v1/dpo/records", header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},

		{name: "export CSV", method: "GET", path: "/v1/dpo/export?format=csv&from=" + from, header: bearer(all), status: 200,
			checkResponse: wantBody("," + testSite + ",")},
		{name: "export NDJSON", method: "GET", path: "/v1/dpo/export?format=ndjson&from=" + from, header: bearer(all), status: 200,
			checkResponse: wantBody(`"site":"` + testSite + `"`)},
		{name: "export NDJSON by default", method: "GET", path: "/v1/dpo/export?site=" + testSite, header: bearer(all), status: 200,
			checkResponse: wantHeader("Content-Type", "application/x-ndjson")},
		{name: "export as XML", method: "GET", path: "/v1/dpo/export?format=xml", header: bearer(all), status: 400, invalid: true},
		{name: "export without token", method: "GET", path: "/v1/dpo/export", status: 401, invalid: true},
		{name: "export of another site", method: "GET", path: "/v1/dpo/export?site=" + testSite, header: bearer(voxbi), status: 403},
		{name: "export failing disk", method: "GET", path: "/v1/dpo/export", header: bearer(all), status: 500, fault: disk},
		{name: "export refused while the audit fails", method: "GET", path: "/v1/dpo/export", header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "export over the client's failure limit", method: "GET", path: "/v1/dpo/export", header: bearer(limitedToken), status: 429, handler: limited.srv},
		{name: "export, unaudited", method: "GET", path: "/v1/dpo/export?format=csv", header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},

		{name: "backup", method: "GET", path: "/v1/dpo/backup", header: bearer(all), status: 200,
			checkResponse: wantHeader("Content-Type", "application/octet-stream")},
		{name: "backup without token", method: "GET", path: "/v1/dpo/backup", status: 401, invalid: true},
		{name: "backup with a token limited to a site", method: "GET", path: "/v1/dpo/backup", header: bearer(voxbi), status: 403},
		{name: "backup of a store that cannot copy itself", method: "GET", path: "/v1/dpo/backup", header: bearer(uncopyableToken), status: 404,
			handler: uncopyable.srv},
		{name: "backup failing disk", method: "GET", path: "/v1/dpo/backup", header: bearer(all), status: 500, fault: disk},
		{name: "backup refused while the audit fails", method: "GET", path: "/v1/dpo/backup", header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "backup, unaudited", method: "GET", path: "/v1/dpo/backup", header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},
		{name: "backup over the client's failure limit", method: "GET", path: "/v1/dpo/backup", header: bearer(limitedToken), status: 429, handler: limited.srv},

		{name: "stats", method: "GET", path: "/v1/dpo/stats?from=" + from, header: bearer(all), status: 200,
			checkResponse: wantBody(`"days":[{`)},
		{name: "stats not a date", method: "GET", path: "/v1/dpo/stats?from=yesterday", header: bearer(all), status: 400, invalid: true},
		{name: "stats without token", method: "GET", path: "/v1/dpo/stats", status: 401, invalid: true},
		{name: "stats of another site", method: "GET", path: "/v1/dpo/stats?site=" + testSite, header: bearer(voxbi), status: 403},
		{name: "stats failing disk", method: "GET", path: "/v1/dpo/stats", header: bearer(all), status: 500, fault: disk},
		{name: "stats refused while the audit fails", method: "GET", path: "/v1/dpo/stats", header: bearer("cdt_guess"), status: 401, audit: disk},
		{name: "stats, unaudited", method: "GET", path: "/v1/dpo/stats", header: bearer(all), status: 503, audit: disk,
			checkResponse: wantOnlyError},
		{name: "stats over the client's failure limit", method: "GET", path: "/v1/dpo/stats", header: bearer(limitedToken), status: 429, handler: limited.srv},

		{name: "demo page", method: "GET", path: "/demo/" + testSite, status: 200},
		{name: "demo page unknown site", method: "GET", path: "/demo/example.org", status: 404},
		{name: "demo banner", method: "GET", path: "/demo/" + testSite + "/banner.js", status: 200},
		{name: "demo banner not modified", method: "GET", path: "/demo/" + testSite + "/banner.js", header: map[string]string{"If-None-Match": demoETag}, status: 304},
		{name: "demo banner unknown site", method: "GET", path: "/demo/example.org/banner.js", status: 404},
		{name: "demo second layer", method: "GET", path: "/demo/" + testSite + "/banner/de.js?f=" + fp, status: 200},
		{name: "demo second layer unknown site", method: "GET", path: "/demo/example.org/banner/de.js", status: 404},
		{name: "demo partner", method: "GET", path: "/demo/partner/google-ads.js", status: 200},
		{name: "demo partner bad name", method: "GET", path: "/demo/partner/Google.js", status: 404, invalid: true},
	}

	produced, ran := map[string]bool{}, 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran++
			handler := http.Handler(f.srv)
			switch {
			case tt.handler != nil:
				handler = tt.handler
			case strings.HasPrefix(tt.path, "/demo/"):
				handler = demo.srv
			}
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			req.RemoteAddr = "203.0.113.77:51234"
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			store.fault, store.auditFault = tt.fault, tt.audit
			rec, op := api.serve(t, handler, req, tt.invalid)
			produced[op] = true
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, excerpt(rec))
			}
			if tt.checkResponse != nil {
				tt.checkResponse(t, rec)
			}
		})
	}

	if ran < len(tests) {
		return // -run picked some cases; the answers of the others are missing by choice
	}
	var missing []string
	for path, item := range api.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status := range op.Responses.Map() {
				if key := method + " " + path + " " + status; !produced[key] {
					missing = append(missing, key)
				}
			}
		}
	}
	slices.Sort(missing)
	for _, key := range missing {
		t.Errorf("openapi.yaml documents %s, but no request here produced it: add a case, or drop it from the spec", key)
	}
}

func wantHeader(name, value string) func(*testing.T, *httptest.ResponseRecorder) {
	return func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		if got := rec.Header().Get(name); got != value {
			t.Errorf("%s = %q, want %q", name, got, value)
		}
	}
}

// wantOnlyError checks that an answer replaced by an error carries nothing of the
// answer it replaced: no record, no download header.
func wantOnlyError(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if strings.Contains(rec.Body.String(), "record_id") || rec.Header().Get("Content-Disposition") != "" {
		t.Errorf("the replaced answer leaked: %v %s", rec.Header(), excerpt(rec))
	}
	if rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q, want the JSON error's", rec.Header().Get("Content-Type"))
	}
}

func wantBody(part string) func(*testing.T, *httptest.ResponseRecorder) {
	return func(t *testing.T, rec *httptest.ResponseRecorder) {
		t.Helper()
		if !strings.Contains(rec.Body.String(), part) {
			t.Errorf("body lacks %s: %s", part, excerpt(rec))
		}
	}
}

// TestOpenAPIDocumentsEveryRoute holds the routes the server registers against the
// paths of openapi.yaml, both ways: an undocumented route and a documented path
// that nothing serves both fail. Operations tagged "demo" are served with --demo
// only.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	api := MustOpenAPI(t)
	documented, demoOnly := map[string]bool{}, map[string]bool{}
	for path, item := range api.doc.Paths.Map() {
		for method, op := range item.Operations() {
			key := method + " " + pathShape(path)
			documented[key] = true
			demoOnly[key] = slices.Contains(op.Tags, "demo")
		}
	}
	for _, demo := range []bool{false, true} {
		t.Run("demo="+strconv.FormatBool(demo), func(t *testing.T) {
			served := map[string]bool{}
			for _, route := range server.Routes(MustFixture(t, demo).srv) {
				// A wildcard route serves every documented path under it.
				if prefix, ok := strings.CutSuffix(route, "/*"); ok {
					found := false
					for key := range documented {
						if strings.HasPrefix(key, prefix+"/") {
							served[key], found = true, true
						}
					}
					if !found {
						t.Errorf("%s is served but nothing under it is in openapi.yaml", route)
					}
					continue
				}
				key := pathShape(route)
				served[key] = true
				if !documented[key] {
					t.Errorf("%s is served but not in openapi.yaml", route)
				}
			}
			for key := range documented {
				switch want := demo || !demoOnly[key]; {
				case want && !served[key]:
					t.Errorf("openapi.yaml documents %s, which the server does not serve", key)
				case !want && served[key]:
					t.Errorf("%s is served without --demo, but openapi.yaml tags it demo", key)
				}
			}
		})
	}
}

// pathShape turns Echo's "/v1/banner/:file" and the spec's "/v1/banner/{site}.js"
// into the same "/v1/banner/{}": a segment that holds a parameter matches whatever
// the parameter is called, since Echo cannot express a suffix after one.
func pathShape(path string) string {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		if strings.HasPrefix(s, ":") || strings.Contains(s, "{") {
			segments[i] = "{}"
		}
	}
	return strings.Join(segments, "/")
}

// MustJSONMap decodes a JSON object.
func MustJSONMap(tb testing.TB, s string) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		tb.Fatal(err)
	}
	return m
}
