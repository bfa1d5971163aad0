package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/server"
)

// Faults answered with a clear message: never plain text, never a flood of log
// lines, never a server error for what the client did.

// logLines is a slog handler that keeps the lines at ERROR level.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler               { return l }
func (l *logLines) WithGroup(string) slog.Handler                    { return l }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestOverloadDoesNotFloodTheLog: thousands of 503 answers write one ERROR line,
// count every answer in the metrics, and one more line says how many were left out.
func TestOverloadDoesNotFloodTheLog(t *testing.T) {
	base := MustFixture(t, false)
	log := &logLines{}
	now := newClock()
	f, _, _ := MustServerWith(t, busyStore{}, base.cfg, server.Options{Logger: slog.New(log), Now: now.Now})
	server.SetErrorLogEvery(f.srv, time.Hour) // the test's clock decides, not the machine's speed
	for range 5000 {
		if rec := f.post(t, f.validBody(t), nil); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", rec.Code)
		}
	}
	if lines := log.all(); len(lines) != 1 {
		t.Fatalf("%d ERROR lines for 5,000 answers 503, want 1: %q", len(lines), lines[:min(len(lines), 3)])
	}
	metrics := f.do(t, http.MethodGet, "/metrics", "", nil).Body.String()
	if !strings.Contains(metrics, `consentd_http_errors_total{code="unavailable",status="503"} 5000`) {
		t.Errorf("metrics do not count the 5,000 answers 503")
	}
	now.Advance(61 * time.Minute)
	f.post(t, f.validBody(t), nil)
	if lines := log.all(); len(lines) != 2 || !strings.Contains(lines[1], "omitted_before=4999") {
		t.Errorf("the next line after the quiet time: %q, want it to count the 4,999 left out", lines)
	}
	f.post(t, f.validBody(t), nil)
	if err := f.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if lines := log.all(); len(lines) != 3 || !strings.Contains(lines[2], "omitted=1") {
		t.Errorf("at Close: %q, want a line for the one left out", lines)
	}

	// With nothing after the burst, the count is written once the time is up.
	g, _, _ := MustServerWith(t, busyStore{}, base.cfg, server.Options{Logger: slog.New(log)})
	server.SetErrorLogEvery(g.srv, 50*time.Millisecond)
	before := len(log.all())
	for range 100 {
		g.post(t, g.validBody(t), nil)
	}
	wait.MustUntil(t, "the count of the lines left out is written", func() (bool, string) {
		lines := log.all()[before:]
		return slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "omitted=") }), strings.Join(lines, "\n")
	})
}

// TestErrorLogNamesNoConsentID: a failure to answer a visitor's GET
// /v1/consents/{consent_id}, which their page sends, is logged with the route, not
// with the id: whoever reads the log must not get the keys to visitors' records.
func TestErrorLogNamesNoConsentID(t *testing.T) {
	base := MustFixture(t, false)
	log := &logLines{}
	store := &faultyStore{Store: base.store, fault: errors.New("disk failed")}
	f, _, _ := MustServerWith(t, store, base.cfg, server.Options{Logger: slog.New(log)})
	id := uuid.NewString()
	if rec := f.do(t, http.MethodGet, "/v1/consents/"+strings.ToUpper(id), "", nil); rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", rec.Code)
	}
	lines := log.all()
	if len(lines) != 1 || !strings.Contains(lines[0], "path=/v1/consents/{consent_id}") || strings.Contains(strings.ToLower(lines[0]), id) {
		t.Errorf("log lines %q, want one naming the route /v1/consents/{consent_id} and not the id %s", lines, id)
	}
}

// stalledStore answers its reads only once their context ends, as a store does
// whose client went away while it read.
type stalledStore struct{ consent.Store }

func (stalledStore) RecordsByConsent(ctx context.Context, _ string) ([]*consent.Record, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestClientGoneIsNotAServerError: a client that closes its connection while its
// DPO call is under way gets no ERROR line and no 500 in the audit log: it is on
// record as 499, client closed request.
func TestClientGoneIsNotAServerError(t *testing.T) {
	base := MustFixture(t, false)
	log := &logLines{}
	store := &auditCounter{Store: MustFreshStore(t)}
	f, all, _ := MustServerWith(t, stalledStore{store}, base.cfg, server.Options{Logger: slog.New(log)})
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/v1/dpo/consents/"+strings.Repeat("0", 8)+"-0000-4000-8000-000000000000", nil)
	req.Header.Set("Authorization", "Bearer "+all)
	cancel()
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	if len(log.all()) != 0 {
		t.Errorf("ERROR lines for a client that went away: %q", log.all())
	}
	entries, err := store.Audit(context.Background(), "", 10)
	if err != nil || len(entries) != 1 || entries[0].Status != 499 {
		t.Errorf("audit entries %+v, %v; want one with status 499", entries, err)
	}
	if m := f.do(t, http.MethodGet, "/metrics", "", nil).Body.String(); !strings.Contains(m, `consentd_http_errors_total{code="client_closed",status="499"} 1`) {
		t.Errorf("metrics do not count the client that went away")
	}
}

// TestHalfClosedClientIsRecorded: a client that half-closes its connection after
// sending its decision (which cancels the request's context in net/http) still has
// it recorded and answered.
func TestHalfClosedClientIsRecorded(t *testing.T) {
	base := MustFixture(t, false)
	store := MustFreshStore(t)
	f, _, _ := MustServerOn(t, store, base.cfg)
	ts := httptest.NewServer(f.srv)
	defer ts.Close()
	body := f.validBody(t)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := MustJSON(t, body)
	req := "POST /v1/consents HTTP/1.1\r\nHost: consent.example\r\nOrigin: " + testOrigin + "\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(payload)) + "\r\n\r\n" + payload
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("half-closed client: %d, want 201", resp.StatusCode)
	}
	recs, err := store.RecordsByConsent(context.Background(), body["consent_id"].(string))
	if err != nil || len(recs) != 1 {
		t.Errorf("recorded %d, %v; want the decision", len(recs), err)
	}
}

// TestHead: every GET route answers HEAD as GET, without the body.
func TestHead(t *testing.T) {
	f := MustFixture(t, false)
	all, _ := MustTokens(t, f)
	for _, path := range []string{"/v1/banner/" + testSite + ".js", "/v1/visitor/" + testSite, "/healthz", "/readyz", "/v1/keys", "/metrics", "/v1/dpo/stats"} {
		get := f.do(t, http.MethodGet, path, "", bearer(all))
		head := f.do(t, http.MethodHead, path, "", bearer(all))
		if head.Code != get.Code || head.Code != http.StatusOK || head.Header().Get("Content-Type") != get.Header().Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q, want GET's %d %q", path, head.Code, head.Header().Get("Content-Type"), get.Code, get.Header().Get("Content-Type"))
		}
	}
	if rec := f.do(t, http.MethodHead, "/v1/banner/example.org.js", "", nil); rec.Code != http.StatusNotFound || rec.Body.Len() != 0 {
		t.Errorf("HEAD of an unknown banner: %d with %d bytes, want 404 without a body", rec.Code, rec.Body.Len())
	}
}

// TestProtocolErrorsAreJSON: requests net/http refuses before any handler runs
// (headers too large, a malformed request line, no Host) are answered with the JSON
// error shape.
func TestProtocolErrorsAreJSON(t *testing.T) {
	f := MustFixture(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.srv, MaxHeaderBytes: 4 << 10, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(server.Listener(ln))
	defer srv.Close()
	tests := []struct {
		name, request string
		status        int
		code          string
	}{
		{"headers too large", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n", 431, "too_large"},
		{"malformed request line", "GARBAGE\r\n\r\n", 400, "invalid"},
		{"no host", "GET /healthz HTTP/1.1\r\n\r\n", 400, "invalid"},
		{"bad header", "GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400, "invalid"},
		{"unsupported transfer encoding", "POST /v1/consents HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "not_implemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			io.WriteString(conn, tt.request)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			rec := httptest.NewRecorder()
			rec.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
			rec.Body = bytes.NewBuffer(body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if code, _ := MustErrorBody(t, rec); code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
		})
	}
	// An ordinary answer passes unchanged.
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz through the listener: %v", err)
	}
	resp.Body.Close()
}

// TestCSVFormulaInjection: a cell a visitor controls (the user agent, the page)
// that a spreadsheet would run as a formula is exported as text.
func TestCSVFormulaInjection(t *testing.T) {
	base := MustFixture(t, false)
	f, all, _ := MustServerOn(t, MustFreshStore(t), base.cfg)
	agents := []string{`=HYPERLINK("https://evil.example","click")`, "+1+2", "-2+3", "@SUM(A1)", "\tx", "\rx", "Mozilla/5.0 = fine"}
	for _, ua := range agents {
		if rec := f.post(t, f.validBody(t), map[string]string{"Origin": testOrigin, "User-Agent": ua}); rec.Code != http.StatusCreated {
			t.Fatalf("%q: %d %s", ua, rec.Code, rec.Body)
		}
	}
	rec := f.do(t, http.MethodGet, "/v1/dpo/export?format=csv", "", bearer(all))
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil || len(rows) != len(agents)+1 {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	for i, want := range agents {
		if strings.ContainsAny(want[:1], "=+-@\t\r") {
			want = "'" + want
		}
		if got := rows[i+1][14]; got != want {
			t.Errorf("user agent %q exported as %q, want %q", agents[i], got, want)
		}
	}
	// What the server wrote stays exactly as it is.
	lines := strings.Split(strings.TrimSpace(f.do(t, http.MethodGet, "/v1/dpo/export?format=ndjson", "", bearer(all)).Body.String()), "\n")
	for i, line := range lines {
		var r consent.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if row := rows[i+1]; row[0] != r.ID || row[16] != strconv.FormatInt(r.LogIndex, 10) {
			t.Errorf("row %d: id %q, log index %q; want them as the NDJSON export has them (%s, %d)", i, row[0], row[16], r.ID, r.LogIndex)
		}
	}
}

// TestReadiness: /readyz names each check, and fails on a store that takes no
// writes while /healthz still answers.
func TestReadiness(t *testing.T) {
	base := MustFixture(t, false)
	store := MustFreshStore(t)
	f, _, _ := MustServerOn(t, store, base.cfg)
	rec := f.do(t, http.MethodGet, "/readyz", "", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != `{"checks":{"config":"ok","disk":"ok","store":"ok","tokens":"ok"},"status":"ready"}`+"\n" {
		t.Errorf("readyz: %d %s", rec.Code, rec.Body)
	}
	store.Close()
	rec = f.do(t, http.MethodGet, "/readyz", "", nil)
	if code, msg := MustReadinessError(t, rec); rec.Code != http.StatusServiceUnavailable || code != "unavailable" || msg != "not ready: store" {
		t.Errorf("readyz on a closed store: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(t, http.MethodGet, "/healthz", "", nil); rec.Code != http.StatusOK {
		t.Errorf("healthz on a closed store: %d, want 200: the process lives", rec.Code)
	}
}

// MustReadinessError returns the code and message of the error in a /readyz answer,
// which carries it beside the checks.
func MustReadinessError(tb testing.TB, rec *httptest.ResponseRecorder) (code, message string) {
	tb.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		tb.Fatalf("%v: %s", err, rec.Body)
	}
	return body.Error.Code, body.Error.Message
}

// panickyStore panics where it should read a visitor's records, as a bug would.
type panickyStore struct{ consent.Store }

func (panickyStore) RecordsByConsent(context.Context, string) ([]*consent.Record, error) {
	panic("index out of range")
}

// TestPanicIsAnswered: a handler that panics answers 500 with the JSON error, and
// the log names the panic and the request, not the client's address.
func TestPanicIsAnswered(t *testing.T) {
	base := MustFixture(t, false)
	log := &logLines{}
	f, _, _ := MustServerWith(t, panickyStore{base.store}, base.cfg, server.Options{Logger: slog.New(log)})
	rec := f.do(t, http.MethodGet, "/v1/consents/"+uuid.NewString(), "", map[string]string{"X-Request-Id": "req-1"})
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), `"code":"internal"`) {
		t.Fatalf("%d %s, want 500 with the JSON error", rec.Code, rec.Body)
	}
	lines := strings.Join(log.all(), "\n")
	if !strings.Contains(lines, "panic: index out of range") || !strings.Contains(lines, "request_id=req-1") || strings.Contains(lines, "192.0.2.1") {
		t.Errorf("log:\n%s\nwant the panic with the request id, without the client's address", lines)
	}
}
