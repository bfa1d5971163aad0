package server_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mixvoip/consentd/internal/logtest"
	"github.com/mixvoip/consentd/server"
)

// jsonLog is a JSON log that tests read line by line.
type jsonLog struct{ logtest.Buffer }

// MustLines returns the lines with request_id id, each as its JSON object.
func (l *jsonLog) MustLines(tb testing.TB, id string) []map[string]any {
	tb.Helper()
	var lines []map[string]any
	for line := range strings.Lines(l.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			tb.Fatalf("a log line is not JSON: %v: %q", err, line)
		}
		if m["request_id"] == id {
			lines = append(lines, m)
		}
	}
	return lines
}

// generatedID is what a request id made by consentd looks like.
var generatedID = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// TestRequestLog: one INFO line per request, with the request's id (the one sent if
// it is sane, echoed), method, route, status, size and duration; never a consent id,
// the path, the query, the client's address or a token. An ERROR line for the same
// request has the same id.
func TestRequestLog(t *testing.T) {
	base := MustFixture(t, false)
	log := &jsonLog{}
	store := &faultyStore{Store: base.store}
	f, all, _ := MustServerWith(t, store, base.cfg, server.Options{Logger: slog.New(slog.NewJSONHandler(log, nil))})
	consentID := uuid.NewString()
	body := f.validBody(t)
	body["consent_id"] = consentID
	if rec := f.post(t, body, nil); rec.Code != http.StatusCreated {
		t.Fatalf("post: %d %s", rec.Code, rec.Body)
	}
	const client, forwarded = "203.0.113.77", "198.51.100.23"
	tests := []struct {
		name, method, path, sentID string
		kept                       bool // the id sent is the request's
		header                     map[string]string
		fault                      error
		route                      string
		status                     int
		// Must not be in any line of the request, in any letter case.
		secret string
	}{
		{name: "request id sent", method: "GET", path: "/healthz", sentID: "abc-123", kept: true, route: "/healthz", status: 200},
		{name: "request id a UUID", method: "GET", path: "/healthz", sentID: "0f8fad5b-d9cb-469f-a165-70867728950e", kept: true, route: "/healthz", status: 200},
		{name: "request id too long", method: "GET", path: "/healthz", sentID: strings.Repeat("a", 65), route: "/healthz", status: 200},
		{name: "request id with a space", method: "GET", path: "/healthz", sentID: "abc 123", route: "/healthz", status: 200},
		{name: "request id with markup", method: "GET", path: "/healthz", sentID: `<script>"x"</script>`, route: "/healthz", status: 200},
		{name: "no request id", method: "GET", path: "/healthz", route: "/healthz", status: 200},
		{name: "a visitor's records", method: "GET", path: "/v1/consents/" + strings.ToUpper(consentID) + "?utm_source=mail",
			route: "/v1/consents/:consent_id", status: 200, secret: consentID},
		{name: "records of an unknown id", method: "GET", path: "/v1/consents/" + uuid.NewString(), route: "/v1/consents/:consent_id", status: 404},
		{name: "an unknown path with an id", method: "GET", path: "/v1/consent/" + consentID, route: "unmatched", status: 404, secret: consentID},
		{name: "a decision", method: "POST", path: "/v1/consents", route: "/v1/consents", status: 403, secret: "evil.example"},
		{name: "a DPO call", method: "GET", path: "/v1/dpo/consents/" + consentID, header: bearer(all),
			route: "/v1/dpo/consents/:consent_id", status: 200, secret: all},
		{name: "a wrong token", method: "GET", path: "/v1/dpo/verify", header: bearer("cdt_guessed_secret"),
			route: "/v1/dpo/verify", status: 401, secret: "cdt_guessed_secret"},
		{name: "a failure", method: "GET", path: "/v1/consents/" + consentID, fault: errors.New("disk failed"),
			route: "/v1/consents/:consent_id", status: 500, secret: consentID},
		{name: "an unknown method", method: "BREW", path: "/healthz", route: "/healthz", status: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{"X-Forwarded-For": forwarded, "Origin": testOrigin}
			for k, v := range tt.header {
				header[k] = v
			}
			if tt.sentID != "" {
				header["X-Request-Id"] = tt.sentID
			}
			reqBody := ""
			if tt.method == http.MethodPost {
				// From a foreign page, whose URL must not reach the log either.
				header["Origin"] = "https://evil.example"
				b := f.validBody(t)
				b["url"] = "https://evil.example/?utm_source=mail"
				reqBody = MustJSON(t, b)
			}
			store.fault = tt.fault
			rec := f.doFrom(t, client+":51234", tt.method, tt.path, reqBody, header)
			store.fault = nil
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			id := rec.Header().Get("X-Request-Id")
			switch {
			case tt.kept && id != tt.sentID:
				t.Errorf("X-Request-Id %q, want the one sent, %q", id, tt.sentID)
			case !tt.kept && !generatedID.MatchString(id):
				t.Errorf("X-Request-Id %q, want one made by consentd for %q", id, tt.sentID)
			}
			lines := log.MustLines(t, id)
			var info []map[string]any
			for _, l := range lines {
				if l["level"] == "INFO" {
					info = append(info, l)
				}
			}
			if len(info) != 1 {
				t.Fatalf("%d INFO lines with the request id, want 1: %v", len(info), lines)
			}
			l := info[0]
			method := tt.method
			if method == "BREW" {
				method = "other"
			}
			if l["msg"] != "request" || l["route"] != tt.route || l["method"] != method || l["status"] != float64(tt.status) || l["bytes"] != float64(rec.Body.Len()) {
				t.Errorf("line %v, want route %s, method %s, status %d, bytes %d", l, tt.route, method, tt.status, rec.Body.Len())
			}
			if d, ok := l["duration_ms"].(float64); !ok || d < 0 {
				t.Errorf("duration_ms %v, want a number of milliseconds", l["duration_ms"])
			}
			if tt.status >= 500 && len(lines) != 2 {
				t.Errorf("a failure's lines: %v, want its ERROR line with the same request id", lines)
			}
			for _, never := range []string{tt.secret, client, forwarded, "utm_source", "Bearer"} {
				if never != "" && strings.Contains(strings.ToLower(log.String()), strings.ToLower(never)) {
					t.Errorf("the log has %q: %s", never, log)
				}
			}
		})
	}
}

// TestRequestMetrics: each request is timed by its route pattern, never its path,
// and a decision recorded is counted by site and action.
func TestRequestMetrics(t *testing.T) {
	f := MustFixture(t, false)
	const (
		posted   = `consentd_http_request_duration_seconds_count{code_class="2xx",method="POST",route="/v1/consents"}`
		refusals = `consentd_records_total{action="reject_all",site="mixvoip.com"}`
		read     = `consentd_http_request_duration_seconds_count{code_class="2xx",method="GET",route="/v1/consents/:consent_id"}`
		lost     = `consentd_http_request_duration_seconds_count{code_class="4xx",method="GET",route="unmatched"}`
	)
	before := map[string]float64{}
	for _, s := range []string{posted, refusals, read, lost} {
		before[s] = f.metric(t, s)
	}
	body := f.validBody(t)
	if rec := f.post(t, body, nil); rec.Code != http.StatusCreated {
		t.Fatalf("post: %d %s", rec.Code, rec.Body)
	}
	id := body["consent_id"].(string)
	if rec := f.do(t, http.MethodGet, "/v1/consents/"+id, "", nil); rec.Code != http.StatusOK {
		t.Fatalf("get: %d", rec.Code)
	}
	f.do(t, http.MethodGet, "/no/such/"+id, "", nil)
	for _, s := range []string{posted, refusals, read, lost} {
		if got := f.metric(t, s); got != before[s]+1 {
			t.Errorf("%s = %v, want %v", s, got, before[s]+1)
		}
	}
	if m := f.do(t, http.MethodGet, "/metrics", "", nil).Body.String(); strings.Contains(m, id) {
		t.Errorf("the metrics name the consent id %s", id)
	}
}
