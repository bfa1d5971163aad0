package server_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/server"
)

// BenchmarkCreateConsent measures the handler's own cost per durable record, without
// the network: decoding, validation, the group-committed bbolt write, the answer.
func BenchmarkCreateConsent(b *testing.B) {
	f := MustFixture(b, false)
	b.SetParallelism(32) // 64 concurrent requests on 2 cores, as in the budget
	b.ReportAllocs()
	b.ResetTimer()
	// CPU time is a steadier measure of a request's cost than the time it takes
	// on a shared machine.
	cpu := processCPU(b)
	defer func() { b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(b.N), "cpu-µs/op") }()
	b.RunParallel(func(pb *testing.PB) {
		body := f.validBody(b)
		template := MustJSON(b, body)
		id := body["consent_id"].(string)
		for pb.Next() {
			raw := strings.Replace(template, id, uuid.NewString(), 1)
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

// BenchmarkRefusedDPOCall measures what a call to the DPO API without a token costs,
// from one client and from a new one each call, with 16 KiB of query as an attacker
// sends it: compared with BenchmarkCreateConsent, what a flood of them takes from the
// visitors' decisions. Nothing of it reaches the store but one write a minute.
func BenchmarkRefusedDPOCall(b *testing.B) {
	base := MustFixture(b, false)
	f, _, _ := MustServerWith(b, MustFreshStore(b), base.cfg, server.Options{AuthFailureLimit: server.DefaultAuthFailureLimit})
	path := "/v1/dpo/records?x=" + strings.Repeat("a", 16<<10)
	for _, clients := range []int{1, 1 << 20} {
		b.Run(map[int]string{1: "one client", 1 << 20: "new clients"}[clients], func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.RemoteAddr = fmt.Sprintf("10.%d.%d.1:4000", i%clients>>8&255, i%clients&255)
				rec := httptest.NewRecorder()
				f.srv.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusTooManyRequests {
					b.Fatalf("status %d", rec.Code)
				}
				i++
			}
		})
	}
}

// BenchmarkLoad measures a reload of sites.yaml as consentd does one, parsing and
// loading: unchanged, with a partner switched on one site (its banner built again),
// and with every site changed. Without demo pages, as in production.
func BenchmarkLoad(b *testing.B) {
	data, err := os.ReadFile("../sites.yaml")
	if err != nil {
		b.Fatal(err)
	}
	original := string(data)
	switched := strings.Replace(original, `meta-pixel: { enabled: true, account: "000000000000001" }`, `meta-pixel: { enabled: false, account: "000000000000001" }`, 1)
	if switched == original {
		b.Fatal("fixture: meta-pixel line not found")
	}
	tests := []struct {
		name string
		file func(i int) string
	}{
		{"unchanged", func(int) string { return original }},
		{"one partner switched", func(i int) string { return []string{switched, original}[i%2] }},
		{"every site changed", func(i int) string {
			return strings.ReplaceAll(original, `version: "`, `version: "`+[]string{"a", "b"}[i%2])
		}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			srv, _ := MustLoadedServer(b, MustConfig(b), false)
			for i := 0; b.Loop(); i++ {
				cfg, err := config.Parse("sites.yaml", []byte(tt.file(i)))
				if err != nil {
					b.Fatal(err)
				}
				if err := srv.Load(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
