package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// BenchmarkCreateConsent measures the handler's own cost per durable record, without
// the network: decoding, validation, the group-committed bbolt write, the answer.
func BenchmarkCreateConsent(b *testing.B) {
	f := MustFixture(b, false)
	b.SetParallelism(32) // 64 concurrent requests on 2 cores, as in the budget
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := f.validBody(b)
		for pb.Next() {
			body["consent_id"] = uuid.NewString()
			raw := MustJSON(b, body)
			req := httptest.NewRequest(http.MethodPost, "/v1/consents", strings.NewReader(raw))
			req.Header.Set("Origin", testOrigin)
			req.Header.Set("Content-Type", "text/plain")
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
}
