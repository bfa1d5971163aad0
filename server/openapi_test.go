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

func (s *faultyStore) AppendExport(ctx context.Context, f consent.Filter, after string, limit int, format consent.ExportFormat, dst []byte) ([]byte, int, string, error) {
	if s.fault != nil {
		return dst, 0, "", s.fault
	}
	return s.Store.AppendExport(ctx, f, after, limit, format, dst)
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

func (s *faultyStore) Stats(ctx context.Context, sites []string, from, to string) ([]*consent.StatsRow, error) {
	if s.fault != nil {
		return nil, s.fault
	}
	return s.Store.Stats(ctx, sites, from, to)
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

// errDisk is the fault of a failing disk: the store answers it for every call.
var errDisk = errors.New("disk failed")

// TestOpenAPI sends a request for every operation and every status that openapi.yaml
// documents, validates each request and answer against it, and fails for any
// documented answer that no request produced.
func TestOpenAPI(t *testing.T) {
	w := mustAPIWorld(t)
	tests := slices.Concat(
		w.bannerCases(), w.consentCases(), w.visitorCases(), w.logCases(), w.tileCases(), w.healthCases(),
		w.verifyCases(), w.proofCases(), w.eraseCases(), w.snapshotsCases(),
		w.auditCases(), w.recordsCases(), w.exportCases(), w.backupCases(), w.statsCases(),
		w.demoCases(),
	)

	produced, ran := map[string]bool{}, 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran++
			w.serve(t, tt, produced)
		})
	}
	if ran < len(tests) {
		return // -run picked some cases; the answers of the others are missing by choice
	}
	mustProduceEveryAnswer(t, w.api, produced)
}

// apiWorld is what TestOpenAPI's requests need: the servers that give each answer,
// their tokens, and the consent ids, bodies and validators the requests send.
type apiWorld struct {
	api  *openAPI
	demo *fixture // serves the demo pages
	// f is a server of its own on the fixture's real store, wrapped in store so
	// that a case can switch faults on for its request without touching the other
	// tests' server.
	f          *fixture
	store      *faultyStore
	all, voxbi string // f's tokens: every site, voxbi.com only

	uncopyable      *fixture // a store without a backup
	uncopyableToken string
	unsigned        *fixture // a new store, that has signed nothing yet
	full            *fixture // a log with a full tile
	limited         *fixture // clients that have spent their limits
	limitedToken    string
	short           *fixture // short of disk space: not ready

	id, erasable, twoSites, unknownID                                        string // consent ids
	created, acceptAll, erasableBody, unknownCategory, unknownSite, tooLarge string // POST bodies
	fp                                                                       string // testSite's fingerprint
	etag, prefsETag, visitorETag, demoETag                                   string
	from, to                                                                 string // a records filter's dates
}

// mustAPIWorld builds TestOpenAPI's servers, and the records and bodies it needs.
func mustAPIWorld(t *testing.T) *apiWorld {
	t.Helper()
	w := &apiWorld{api: MustOpenAPI(t)}
	base := MustFixture(t, false)
	w.demo = MustFixture(t, true)
	w.store = &faultyStore{Store: base.store}
	w.f, w.all, w.voxbi = MustServerOn(t, w.store, base.cfg)
	// The same store behind a wrapper that hides its backup, as a store without one.
	w.uncopyable, w.uncopyableToken, _ = MustServerOn(t, struct{ consent.Store }{base.store}, base.cfg)
	w.unsigned, _, _ = MustServerOn(t, MustFreshStore(t), base.cfg)
	tiled := MustFreshStore(t)
	for range 1 << translog.TileHeight {
		storetest.MustAppend(t, tiled, storetest.NewRecord(t, uuid.NewString(), storetest.Now()))
	}
	w.full, _, _ = MustServerOn(t, tiled, base.cfg)

	w.mustBodies(t)
	w.mustValidators(t)
	w.mustTwoSites(t)
	w.mustLimited(t, base)
	w.short, _, _ = MustServerWith(t, base.store, base.cfg, server.Options{Disk: server.DiskGuard{Dir: t.TempDir(), MinFree: 1 << 62}})
	return w
}

// consentBody returns a valid consent request for testSite, changed by change if
// not nil, and its consent id.
func (w *apiWorld) consentBody(t *testing.T, change func(map[string]any)) (id, body string) {
	t.Helper()
	b := w.f.validBody(t)
	if change != nil {
		change(b)
	}
	return b["consent_id"].(string), MustJSON(t, b)
}

// mustBodies makes the consent requests the cases send.
func (w *apiWorld) mustBodies(t *testing.T) {
	t.Helper()
	w.id, w.created = w.consentBody(t, nil)
	_, w.acceptAll = w.consentBody(t, func(b map[string]any) {
		b["action"] = "accept_all"
		b["choices"] = w.f.choices(true)
	})
	w.erasable, w.erasableBody = w.consentBody(t, nil)
	_, w.unknownCategory = w.consentBody(t, func(b map[string]any) {
		b["choices"].(map[string]any)["categories"].(map[string]bool)["analytics"] = false
	})
	_, w.unknownSite = w.consentBody(t, func(b map[string]any) { b["site"] = "example.org" })
	_, w.tooLarge = w.consentBody(t, func(b map[string]any) { b["url"] = testOrigin + "/" + strings.Repeat("a", 9000) })
	w.unknownID = uuid.NewString()
}

// mustValidators reads the ETags that the not-modified cases send, and the
// fingerprint and dates of the filters.
func (w *apiWorld) mustValidators(t *testing.T) {
	t.Helper()
	w.fp = banner.Fingerprint(w.f.cfg.Sites[testSite])
	w.etag = w.f.do(t, http.MethodGet, "/v1/banner/"+testSite+".js", "", nil).Header().Get("ETag")
	w.demoETag = w.demo.do(t, http.MethodGet, "/demo/"+testSite+"/banner.js", "", nil).Header().Get("ETag")
	w.prefsETag = w.f.do(t, http.MethodGet, "/v1/banner/"+testSite+"/fr.js", "", nil).Header().Get("ETag")
	w.visitorETag = w.f.do(t, http.MethodGet, "/v1/visitor/"+testSite, "", nil).Header().Get("ETag")
	w.from = time.Now().UTC().Format(time.DateOnly)
	w.to = time.Now().UTC().Add(48 * time.Hour).Format(time.RFC3339)
}

// mustTwoSites records a consent id on two sites: a token of one of them erases its own.
func (w *apiWorld) mustTwoSites(t *testing.T) {
	t.Helper()
	var body string
	w.twoSites, body = w.consentBody(t, nil)
	if rec := w.f.post(t, MustJSONMap(t, body), nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	voxbiBody := w.f.validBodyFor(t, "voxbi.com")
	voxbiBody["consent_id"] = w.twoSites
	if rec := w.f.post(t, voxbiBody, map[string]string{"Origin": "https://voxbi.com"}); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
}

// mustLimited starts a server whose clients have spent their limits: one decision,
// one wrong token.
func (w *apiWorld) mustLimited(t *testing.T, base *fixture) {
	t.Helper()
	w.limited, w.limitedToken, _ = MustServerWith(t, base.store, base.cfg, server.Options{
		ConsentLimit: server.Limit{Rate: 1e-6, Burst: 1}, AuthFailureLimit: server.Limit{Rate: 1e-6, Burst: 1}})
	_, spent := w.consentBody(t, nil)
	if rec := w.limited.post(t, MustJSONMap(t, spent), nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	w.limited.do(t, http.MethodGet, "/v1/dpo/verify", "", bearer("cdt_guess"))
}

// serve sends tt's request to its server with tt's faults on the store, notes the
// operation's "METHOD /path status" in produced, and checks the status and the
// answer.
func (w *apiWorld) serve(t *testing.T, tt apiCase, produced map[string]bool) {
	t.Helper()
	req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
	req.RemoteAddr = "203.0.113.77:51234"
	for k, v := range tt.header {
		req.Header.Set(k, v)
	}
	w.store.fault, w.store.auditFault = tt.fault, tt.audit
	rec, op := w.api.serve(t, w.handler(tt), req, tt.invalid)
	produced[op] = true
	if rec.Code != tt.status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, excerpt(rec))
	}
	if tt.checkResponse != nil {
		tt.checkResponse(t, rec)
	}
}

// handler is the server that answers tt: its own, the demo server for the demo
// pages, else the one on the faulty store.
func (w *apiWorld) handler(tt apiCase) http.Handler {
	switch {
	case tt.handler != nil:
		return tt.handler
	case strings.HasPrefix(tt.path, "/demo/"):
		return w.demo.srv
	}
	return w.f.srv
}

// mustProduceEveryAnswer fails t for each status of each operation of openapi.yaml
// that no request produced.
func mustProduceEveryAnswer(t *testing.T, api *openAPI, produced map[string]bool) {
	t.Helper()
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

// storeFailures are the answers of a public read of the store that fails: 500 on a
// failing disk, 503 while the store closes.
func storeFailures(name, path string) []apiCase {
	return []apiCase{
		{name: name + " failing disk", method: "GET", path: path, status: 500, fault: errDisk},
		{name: name + " store closing", method: "GET", path: path, status: 503, fault: consent.ErrUnavailable},
	}
}

// dpoOp is one operation of the DPO API.
type dpoOp struct {
	name, method, path string
	unauditedPath      string // the path of the unaudited request, if not path
}

// dpoFailures are the answers every DPO operation gives alike: 500 on a failing
// disk; 401 for a wrong token while the audit fails; 503, and nothing of the
// answer, for a call that cannot be audited; and 429 once the client has spent its
// failure limit.
func (w *apiWorld) dpoFailures(op dpoOp) []apiCase {
	unaudited := op.path
	if op.unauditedPath != "" {
		unaudited = op.unauditedPath
	}
	return []apiCase{
		{name: op.name + " failing disk", method: op.method, path: op.path, header: bearer(w.all), status: 500, fault: errDisk},
		{name: op.name + " refused while the audit fails", method: op.method, path: op.path, header: bearer("cdt_guess"), status: 401, audit: errDisk},
		{name: op.name + ", unaudited", method: op.method, path: unaudited, header: bearer(w.all), status: 503, audit: errDisk,
			checkResponse: wantOnlyError},
		{name: op.name + " over the client's failure limit", method: op.method, path: op.path, header: bearer(w.limitedToken), status: 429, handler: w.limited.srv},
	}
}

// postHeader is the header of a POST of contentType from origin (none if empty).
func postHeader(contentType, origin string) map[string]string {
	h := map[string]string{"Content-Type": contentType}
	if origin != "" {
		h["Origin"] = origin
	}
	return h
}

// bannerCases are the banner script and its second layer (GET /v1/banner/...).
func (w *apiWorld) bannerCases() []apiCase {
	return []apiCase{
		{name: "banner brotli", method: "GET", path: "/v1/banner/" + testSite + ".js", header: map[string]string{"Accept-Encoding": "br, gzip"}, status: 200,
			checkResponse: wantHeader("Content-Encoding", "br")},
		{name: "banner identity", method: "GET", path: "/v1/banner/" + testSite + ".js", status: 200},
		{name: "banner not modified", method: "GET", path: "/v1/banner/" + testSite + ".js", header: map[string]string{"If-None-Match": w.etag}, status: 304},
		{name: "banner of unknown site", method: "GET", path: "/v1/banner/example.org.js", status: 404},
		{name: "second layer", method: "GET", path: "/v1/banner/" + testSite + "/fr.js", header: map[string]string{"Accept-Encoding": "br"}, status: 200,
			checkResponse: wantHeader("Content-Encoding", "br")},
		{name: "second layer not modified", method: "GET", path: "/v1/banner/" + testSite + "/fr.js", header: map[string]string{"If-None-Match": w.prefsETag}, status: 304},
		{name: "second layer in a language the site lacks", method: "GET", path: "/v1/banner/" + testSite + "/nl.js", status: 404},
		{name: "second layer of a configuration long gone", method: "GET", path: "/v1/banner/" + testSite + "/fr.js?f=0123456789abcdef", status: 404},
		{name: "banner in the browser's language", method: "GET", path: "/v1/banner/" + testSite + ".js", header: map[string]string{"Accept-Language": "fr-LU, fr;q=0.9"}, status: 200},
	}
}

// consentCases are the decisions (POST /v1/consents), their preflight, and the
// visitor's read of their own (GET /v1/consents/{consent_id}).
func (w *apiWorld) consentCases() []apiCase {
	asJSON, asBeacon := postHeader("application/json", testOrigin), postHeader("text/plain;charset=UTF-8", testOrigin)
	cases := []apiCase{
		{name: "consent as JSON", method: "POST", path: "/v1/consents", body: w.created, header: asJSON, status: 201},
		{name: "consent by beacon", method: "POST", path: "/v1/consents", body: w.acceptAll, header: asBeacon, status: 201},
		{name: "consent to erase", method: "POST", path: "/v1/consents", body: w.erasableBody, header: asJSON, status: 201},
		{name: "consent malformed", method: "POST", path: "/v1/consents", body: `{"site":`, header: asJSON, status: 400, invalid: true},
		{name: "consent unknown field", method: "POST", path: "/v1/consents", body: strings.Replace(w.created, `{`, `{"tracking":true,`, 1), header: asJSON, status: 400, invalid: true},
		{name: "consent unknown category", method: "POST", path: "/v1/consents", body: w.unknownCategory, header: asJSON, status: 400},
		{name: "consent foreign origin", method: "POST", path: "/v1/consents", body: w.created, header: postHeader("application/json", "https://evil.example"), status: 403},
		{name: "consent without origin", method: "POST", path: "/v1/consents", body: w.created, header: postHeader("application/json", ""), status: 403, invalid: true},
		{name: "consent unknown site", method: "POST", path: "/v1/consents", body: w.unknownSite, header: asJSON, status: 404},
		{name: "consent too large", method: "POST", path: "/v1/consents", body: w.tooLarge, header: asJSON, status: 413},
		{name: "consent as form", method: "POST", path: "/v1/consents", body: "site=x", header: postHeader("application/x-www-form-urlencoded", testOrigin), status: 415, invalid: true},
		{name: "consent on failing disk", method: "POST", path: "/v1/consents", body: w.created, header: asJSON, status: 500, fault: errDisk},
		{name: "consent on full queue", method: "POST", path: "/v1/consents", body: w.created, header: asJSON, status: 503, fault: consent.ErrUnavailable},
		{name: "consent over the client's limit", method: "POST", path: "/v1/consents", body: w.created, header: asJSON, status: 429, handler: w.limited.srv},

		{name: "preflight", method: "OPTIONS", path: "/v1/consents", header: map[string]string{"Origin": testOrigin, "Access-Control-Request-Method": "POST"}, status: 204},
		{name: "preflight foreign origin", method: "OPTIONS", path: "/v1/consents", header: map[string]string{"Origin": "https://evil.example"}, status: 403},

		{name: "own consents", method: "GET", path: "/v1/consents/" + w.id, status: 200},
		{name: "own consents upper case", method: "GET", path: "/v1/consents/" + strings.ToUpper(w.id), header: map[string]string{"Origin": testOrigin}, status: 200},
		{name: "own consents bad id", method: "GET", path: "/v1/consents/nope", status: 400, invalid: true},
		{name: "own consents unknown id", method: "GET", path: "/v1/consents/" + w.unknownID, status: 404},
	}
	return append(cases, storeFailures("own consents", "/v1/consents/"+w.id)...)
}

// visitorCases are the visitor's page (GET /v1/visitor/{site}).
func (w *apiWorld) visitorCases() []apiCase {
	return []apiCase{
		{name: "visitor page", method: "GET", path: "/v1/visitor/" + testSite + "?lang=fr", header: map[string]string{"Accept-Language": "de"}, status: 200,
			checkResponse: wantHeader("Referrer-Policy", "no-referrer")},
		{name: "visitor page not modified", method: "GET", path: "/v1/visitor/" + testSite, header: map[string]string{"If-None-Match": w.visitorETag}, status: 304},
		{name: "visitor page of unknown site", method: "GET", path: "/v1/visitor/example.org", status: 404},
	}
}

// logCases are the keys, and the transparency log's checkpoint and consistency
// proofs.
func (w *apiWorld) logCases() []apiCase {
	return slices.Concat(
		[]apiCase{
			{name: "keys", method: "GET", path: "/v1/keys", status: 200},
			{name: "checkpoint", method: "GET", path: "/v1/log/checkpoint", status: 200,
				checkResponse: wantBody("\n\n— " + storetest.Origin + " ")},
			{name: "checkpoint of an empty log", method: "GET", path: "/v1/log/checkpoint", status: 404, handler: w.unsigned.srv},
		},
		storeFailures("checkpoint", "/v1/log/checkpoint"),
		[]apiCase{
			{name: "consistency", method: "GET", path: "/v1/log/consistency?first=1", status: 200},
			{name: "consistency from no tree", method: "GET", path: "/v1/log/consistency?first=0", status: 400, invalid: true},
			{name: "consistency from a tree beyond the log", method: "GET", path: "/v1/log/consistency?first=100000000", status: 400},
			{name: "consistency of an empty log", method: "GET", path: "/v1/log/consistency?first=1", status: 404, handler: w.unsigned.srv},
		},
		storeFailures("consistency", "/v1/log/consistency?first=1"),
	)
}

// tileCases are the transparency log's tiles, full and partial.
func (w *apiWorld) tileCases() []apiCase {
	return slices.Concat(
		[]apiCase{
			{name: "tile", method: "GET", path: "/v1/log/tile/0/000", status: 200, handler: w.full.srv,
				checkResponse: wantHeader("Cache-Control", "public, max-age=31536000, immutable")},
			{name: "tile not yet full", method: "GET", path: "/v1/log/tile/0/000", status: 404, handler: w.unsigned.srv},
		},
		storeFailures("tile", "/v1/log/tile/0/000"),
		[]apiCase{
			{name: "partial tile", method: "GET", path: "/v1/log/tile/0/000.p/1", status: 200,
				checkResponse: wantHeader("Cache-Control", "no-cache")},
			{name: "partial tile wider than the tree", method: "GET", path: "/v1/log/tile/0/000.p/255", status: 404, handler: w.unsigned.srv},
		},
		storeFailures("partial tile", "/v1/log/tile/0/000.p/1"),
	)
}

// healthCases are the probes and the metrics.
func (w *apiWorld) healthCases() []apiCase {
	return []apiCase{
		{name: "healthz", method: "GET", path: "/healthz", status: 200},
		{name: "readyz", method: "GET", path: "/readyz", status: 200},
		{name: "readyz short of disk", method: "GET", path: "/readyz", status: 503, handler: w.short.srv},
		{name: "metrics", method: "GET", path: "/metrics", status: 200,
			checkResponse: wantBody("consentd_records_total{")},
	}
}

// verifyCases are the DPO's check of the whole log (GET /v1/dpo/verify).
func (w *apiWorld) verifyCases() []apiCase {
	cases := []apiCase{
		{name: "verify", method: "GET", path: "/v1/dpo/verify", header: bearer(w.all), status: 200},
		{name: "verify without token", method: "GET", path: "/v1/dpo/verify", status: 401, invalid: true},
		{name: "verify with a token limited to a site", method: "GET", path: "/v1/dpo/verify", header: bearer(w.voxbi), status: 403},
		{name: "verify unknown token", method: "GET", path: "/v1/dpo/verify", header: bearer("cdt_guess"), status: 401},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "verify", method: "GET", path: "/v1/dpo/verify"})...)
}

// proofCases are the DPO's proof of one consent id's decisions (GET
// /v1/dpo/consents/{consent_id}).
func (w *apiWorld) proofCases() []apiCase {
	proof := "/v1/dpo/consents/" + w.id
	cases := []apiCase{
		{name: "proof", method: "GET", path: proof, header: bearer(w.all), status: 200,
			checkResponse: wantBody(`"snapshots":[{`)},
		{name: "proof bad id", method: "GET", path: "/v1/dpo/consents/nope", header: bearer(w.all), status: 400, invalid: true},
		{name: "proof without token", method: "GET", path: proof, status: 401, invalid: true},
		{name: "proof of another site", method: "GET", path: proof, header: bearer(w.voxbi), status: 404},
		{name: "proof unknown id", method: "GET", path: "/v1/dpo/consents/" + w.unknownID, header: bearer(w.all), status: 404},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "proof", method: "GET", path: proof})...)
}

// eraseCases are the erasure of a consent id (DELETE /v1/dpo/consents/{consent_id}).
func (w *apiWorld) eraseCases() []apiCase {
	erase := "/v1/dpo/consents/" + w.erasable
	cases := []apiCase{
		{name: "erase of another site", method: "DELETE", path: erase, header: bearer(w.voxbi), status: 404},
		{name: "erase of two sites with a token of one", method: "DELETE", path: "/v1/dpo/consents/" + w.twoSites, header: bearer(w.voxbi), status: 200,
			checkResponse: wantBody(`"erased":1,"records":1`)},
		{name: "erase", method: "DELETE", path: erase, header: bearer(w.all), status: 200,
			checkResponse: wantBody(`"erased":1`)},
		{name: "erase bad id", method: "DELETE", path: "/v1/dpo/consents/nope", header: bearer(w.all), status: 400, invalid: true},
		{name: "erase without token", method: "DELETE", path: erase, status: 401, invalid: true},
		{name: "erase unknown id", method: "DELETE", path: "/v1/dpo/consents/" + w.unknownID, header: bearer(w.all), status: 404},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "erase", method: "DELETE", path: erase})...)
}

// snapshotsCases are the banners that a fingerprint stands for (GET
// /v1/dpo/snapshots/{fingerprint}).
func (w *apiWorld) snapshotsCases() []apiCase {
	snapshots := "/v1/dpo/snapshots/" + w.fp
	cases := []apiCase{
		{name: "snapshots", method: "GET", path: snapshots, header: bearer(w.all), status: 200},
		{name: "snapshots without token", method: "GET", path: snapshots, status: 401, invalid: true},
		{name: "snapshots of another site", method: "GET", path: snapshots, header: bearer(w.voxbi), status: 404},
		{name: "snapshots unknown", method: "GET", path: "/v1/dpo/snapshots/0123456789abcdef", header: bearer(w.all), status: 404},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "snapshots", method: "GET", path: snapshots})...)
}

// auditCases are the DPO's read of the audit log (GET /v1/dpo/audit).
func (w *apiWorld) auditCases() []apiCase {
	cases := []apiCase{
		{name: "audit", method: "GET", path: "/v1/dpo/audit?limit=3", header: bearer(w.all), status: 200,
			checkResponse: wantBody(`"entries":[{`)},
		{name: "audit limit 0", method: "GET", path: "/v1/dpo/audit?limit=0", header: bearer(w.all), status: 400, invalid: true},
		{name: "audit bad cursor", method: "GET", path: "/v1/dpo/audit?after=nope", header: bearer(w.all), status: 400, invalid: true},
		{name: "audit without token", method: "GET", path: "/v1/dpo/audit", status: 401, invalid: true},
		{name: "audit of one consent id", method: "GET", path: "/v1/dpo/audit?consent_id=" + w.id, header: bearer(w.all), status: 200,
			checkResponse: wantBody(`"path":"/v1/dpo/consents/{consent_id}"`)},
		{name: "audit with a token limited to a site", method: "GET", path: "/v1/dpo/audit", header: bearer(w.voxbi), status: 200,
			checkResponse: func(t *testing.T, rec *httptest.ResponseRecorder) {
				if strings.Contains(rec.Body.String(), `"token":"dpo"`) {
					t.Errorf("a token limited to voxbi.com sees the calls of the token for every site: %s", excerpt(rec))
				}
			}},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "audit", method: "GET", path: "/v1/dpo/audit"})...)
}

// recordsCases are the DPO's listing of records (GET /v1/dpo/records).
func (w *apiWorld) recordsCases() []apiCase {
	cases := []apiCase{
		{name: "records with every filter", method: "GET", header: bearer(w.all), status: 200,
			path:          "/v1/dpo/records?site=" + testSite + "&from=" + w.from + "&to=" + w.to + "&action=reject_all&fingerprint=" + w.fp + "&language=en&limit=2",
			checkResponse: wantBody(`"records":[{`)},
		{name: "records unknown action", method: "GET", path: "/v1/dpo/records?action=maybe", header: bearer(w.all), status: 400, invalid: true},
		{name: "records bad date", method: "GET", path: "/v1/dpo/records?to=2026-13-01", header: bearer(w.all), status: 400},
		{name: "records from after to", method: "GET", path: "/v1/dpo/records?from=2026-02-01&to=2026-01-01", header: bearer(w.all), status: 400},
		{name: "records unknown site", method: "GET", path: "/v1/dpo/records?site=example.org", header: bearer(w.all), status: 400},
		{name: "records bad cursor", method: "GET", path: "/v1/dpo/records?after=nope", header: bearer(w.all), status: 400, invalid: true},
		{name: "records without token", method: "GET", path: "/v1/dpo/records", status: 401, invalid: true},
		{name: "records of another site", method: "GET", path: "/v1/dpo/records?site=" + testSite, header: bearer(w.voxbi), status: 403},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "records", method: "GET", path: "/v1/dpo/records"})...)
}

// exportCases are the DPO's export of records (GET /v1/dpo/export).
func (w *apiWorld) exportCases() []apiCase {
	cases := []apiCase{
		{name: "export CSV", method: "GET", path: "/v1/dpo/export?format=csv&from=" + w.from, header: bearer(w.all), status: 200,
			checkResponse: wantBody("," + testSite + ",")},
		{name: "export NDJSON", method: "GET", path: "/v1/dpo/export?format=ndjson&from=" + w.from, header: bearer(w.all), status: 200,
			checkResponse: wantBody(`"site":"` + testSite + `"`)},
		{name: "export NDJSON by default", method: "GET", path: "/v1/dpo/export?site=" + testSite, header: bearer(w.all), status: 200,
			checkResponse: wantHeader("Content-Type", "application/x-ndjson")},
		{name: "export as XML", method: "GET", path: "/v1/dpo/export?format=xml", header: bearer(w.all), status: 400, invalid: true},
		{name: "export without token", method: "GET", path: "/v1/dpo/export", status: 401, invalid: true},
		{name: "export of another site", method: "GET", path: "/v1/dpo/export?site=" + testSite, header: bearer(w.voxbi), status: 403},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "export", method: "GET", path: "/v1/dpo/export", unauditedPath: "/v1/dpo/export?format=csv"})...)
}

// backupCases are the DPO's copy of the store (GET /v1/dpo/backup).
func (w *apiWorld) backupCases() []apiCase {
	cases := []apiCase{
		{name: "backup", method: "GET", path: "/v1/dpo/backup", header: bearer(w.all), status: 200,
			checkResponse: wantHeader("Content-Type", "application/octet-stream")},
		{name: "backup without token", method: "GET", path: "/v1/dpo/backup", status: 401, invalid: true},
		{name: "backup with a token limited to a site", method: "GET", path: "/v1/dpo/backup", header: bearer(w.voxbi), status: 403},
		{name: "backup of a store that cannot copy itself", method: "GET", path: "/v1/dpo/backup", header: bearer(w.uncopyableToken), status: 404,
			handler: w.uncopyable.srv},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "backup", method: "GET", path: "/v1/dpo/backup"})...)
}

// statsCases are the DPO's decisions per day (GET /v1/dpo/stats).
func (w *apiWorld) statsCases() []apiCase {
	cases := []apiCase{
		{name: "stats", method: "GET", path: "/v1/dpo/stats?from=" + w.from, header: bearer(w.all), status: 200,
			checkResponse: wantBody(`"days":[{`)},
		{name: "stats not a date", method: "GET", path: "/v1/dpo/stats?from=yesterday", header: bearer(w.all), status: 400, invalid: true},
		{name: "stats without token", method: "GET", path: "/v1/dpo/stats", status: 401, invalid: true},
		{name: "stats of another site", method: "GET", path: "/v1/dpo/stats?site=" + testSite, header: bearer(w.voxbi), status: 403},
	}
	return append(cases, w.dpoFailures(dpoOp{name: "stats", method: "GET", path: "/v1/dpo/stats"})...)
}

// demoCases are the demo pages, served with --demo only.
func (w *apiWorld) demoCases() []apiCase {
	return []apiCase{
		{name: "demo page", method: "GET", path: "/demo/" + testSite, status: 200},
		{name: "demo page unknown site", method: "GET", path: "/demo/example.org", status: 404},
		{name: "demo banner", method: "GET", path: "/demo/" + testSite + "/banner.js", status: 200},
		{name: "demo banner not modified", method: "GET", path: "/demo/" + testSite + "/banner.js", header: map[string]string{"If-None-Match": w.demoETag}, status: 304},
		{name: "demo banner unknown site", method: "GET", path: "/demo/example.org/banner.js", status: 404},
		{name: "demo second layer", method: "GET", path: "/demo/" + testSite + "/banner/de.js?f=" + w.fp, status: 200},
		{name: "demo second layer unknown site", method: "GET", path: "/demo/example.org/banner/de.js", status: 404},
		{name: "demo partner", method: "GET", path: "/demo/partner/google-ads.js", status: 200},
		{name: "demo partner bad name", method: "GET", path: "/demo/partner/Google.js", status: 404, invalid: true},
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
// only. The console's pages (/dpo/) are no API, and not in openapi.yaml.
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
			served := mustServedDocumented(t, server.Routes(MustFixture(t, demo).srv), documented)
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

// mustServedDocumented returns the documented operations ("METHOD /shape") that
// routes serve, and fails t for a route that serves none.
func mustServedDocumented(t *testing.T, routes []string, documented map[string]bool) map[string]bool {
	t.Helper()
	served := map[string]bool{}
	for _, route := range routes {
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
		// The console's pages are for people in a browser, not an API: the README
		// and docs/console.md describe them.
		if _, path, _ := strings.Cut(route, " "); path == "/dpo" || strings.HasPrefix(path, "/dpo/") {
			continue
		}
		if !documented[key] {
			t.Errorf("%s is served but not in openapi.yaml", route)
		}
	}
	return served
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
