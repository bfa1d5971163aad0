package metrics_test

import (
	"errors"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/mixvoip/consentd/internal/scrape"
	"github.com/mixvoip/consentd/metrics"
)

// MustScrape returns what m's handler answers.
func MustScrape(tb testing.TB, m *metrics.Metrics) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		tb.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// series is a series' name with labels and the value it must have, or absent.
type series struct {
	name   string
	value  float64
	absent bool
}

func mustHave(tb testing.TB, text string, want []series) {
	tb.Helper()
	for _, s := range want {
		v, ok := scrape.Value(text, s.name)
		switch {
		case s.absent && ok:
			tb.Errorf("%s = %v, want none", s.name, v)
		case !s.absent && (!ok || v != s.value):
			tb.Errorf("%s = %v (present %t), want %v", s.name, v, ok, s.value)
		}
	}
}

func TestMetrics(t *testing.T) {
	at := time.Unix(1_800_000_000, 500_000_000)
	tests := []struct {
		name string
		do   func(m *metrics.Metrics)
		want []series
	}{
		{"fresh", func(*metrics.Metrics) {}, []series{
			{name: `consentd_build_info{goversion="` + runtime.Version() + `",version="1.2.3"}`, value: 1},
			{name: `consentd_config_reloads_total{file="tokens",result="failure"}`, value: 0},
			{name: `consentd_rate_limited_total{limit="auth_failure"}`, value: 0},
			{name: `consentd_config_last_reload_successful{file="config"}`, absent: true},
			{name: `consentd_backups_total{result="failure"}`, value: 0},
			{name: `consentd_backup_last_success_timestamp_seconds`, absent: true},
			{name: `consentd_backup_last_duration_seconds`, absent: true},
		}},
		{"requests by status class", func(m *metrics.Metrics) {
			m.Request("/v1/consents", "POST", 201, 3*time.Millisecond)
			m.Request("/v1/consents", "POST", 499, time.Millisecond)
			m.Request("/v1/consents", "POST", 429, time.Millisecond)
		}, []series{
			{name: `consentd_http_request_duration_seconds_count{code_class="2xx",method="POST",route="/v1/consents"}`, value: 1},
			{name: `consentd_http_request_duration_seconds_bucket{code_class="2xx",method="POST",route="/v1/consents",le="0.0025"}`, value: 0},
			{name: `consentd_http_request_duration_seconds_bucket{code_class="2xx",method="POST",route="/v1/consents",le="0.005"}`, value: 1},
			{name: `consentd_http_request_duration_seconds_count{code_class="4xx",method="POST",route="/v1/consents"}`, value: 2},
		}},
		{"a reload that fails keeps the last success", func(m *metrics.Metrics) {
			m.Reloaded(metrics.FileConfig, at, nil)
			m.Reloaded(metrics.FileConfig, at.Add(time.Hour), errors.New("broken"))
		}, []series{
			{name: `consentd_config_reloads_total{file="config",result="success"}`, value: 1},
			{name: `consentd_config_reloads_total{file="config",result="failure"}`, value: 1},
			{name: `consentd_config_last_reload_successful{file="config"}`, value: 0},
			{name: `consentd_config_last_reload_success_timestamp_seconds{file="config"}`, value: 1_800_000_000.5},
		}},
		{"a reload after a failure", func(m *metrics.Metrics) {
			m.Reloaded(metrics.FileKeys, at, errors.New("broken"))
			m.Reloaded(metrics.FileKeys, at, nil)
		}, []series{
			{name: `consentd_config_last_reload_successful{file="keys"}`, value: 1},
			{name: `consentd_config_last_reload_success_timestamp_seconds{file="keys"}`, value: 1_800_000_000.5},
		}},
		{"commits", func(m *metrics.Metrics) {
			m.Committed(1, time.Millisecond)
			m.Committed(700, 20*time.Millisecond)
		}, []series{
			{name: `consentd_commit_batch_records_count`, value: 2},
			{name: `consentd_commit_batch_records_sum`, value: 701},
			{name: `consentd_commit_batch_records_bucket{le="512"}`, value: 1},
			{name: `consentd_commit_duration_seconds_bucket{le="0.02"}`, value: 2},
			{name: `consentd_commit_duration_seconds_bucket{le="0.01"}`, value: 1},
		}},
		{"rate limits", func(m *metrics.Metrics) {
			m.RateLimited(metrics.LimitConsent)
			m.RateLimited(metrics.LimitConsent)
		}, []series{
			{name: `consentd_rate_limited_total{limit="consent"}`, value: 2},
			{name: `consentd_rate_limited_total{limit="auth_failure"}`, value: 0},
		}},
		{"a backup that failed first", func(m *metrics.Metrics) {
			m.BackupDone(at, 3*time.Second, 0, errors.New("disk full"))
		}, []series{
			{name: `consentd_backups_total{result="failure"}`, value: 1},
			{name: `consentd_backups_total{result="success"}`, value: 0},
			{name: `consentd_backup_last_success_timestamp_seconds`, value: 0},
			{name: `consentd_backup_last_duration_seconds`, value: 3},
		}},
		{"a backup that failed after one that succeeded", func(m *metrics.Metrics) {
			m.BackupDone(at, 2*time.Second, 1<<20, nil)
			m.BackupDone(at.Add(24*time.Hour), 5*time.Second, 0, errors.New("disk full"))
		}, []series{
			{name: `consentd_backups_total{result="success"}`, value: 1},
			{name: `consentd_backups_total{result="failure"}`, value: 1},
			{name: `consentd_backup_last_success_timestamp_seconds`, value: 1_800_000_000.5},
			{name: `consentd_backup_last_size_bytes`, value: 1 << 20},
			{name: `consentd_backup_last_duration_seconds`, value: 5},
		}},
		{"a restart finds the newest backup", func(m *metrics.Metrics) {
			m.BackupFound(at, 1<<20)
		}, []series{
			{name: `consentd_backups_total{result="success"}`, value: 0},
			{name: `consentd_backup_last_success_timestamp_seconds`, value: 1_800_000_000.5},
			{name: `consentd_backup_last_size_bytes`, value: 1 << 20},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New("1.2.3")
			tt.do(m)
			mustHave(t, MustScrape(t, m), tt.want)
		})
	}
}

// fakeStore is a store as the metrics read it.
type fakeStore struct {
	depth   int
	leaves  int64
	sizeErr error
}

func (s fakeStore) QueueDepth() int          { return s.depth }
func (s fakeStore) QueueCapacity() int       { return 4096 }
func (s fakeStore) LogSize() int64           { return s.leaves }
func (s fakeStore) FileSize() (int64, error) { return 32768, s.sizeErr }

// TestWatch: the gauges read at each scrape, and left out when they cannot be read.
func TestWatch(t *testing.T) {
	tests := []struct {
		name    string
		store   fakeStore
		freeErr error
		want    []series
	}{
		{"all read", fakeStore{depth: 7, leaves: 1234}, nil, []series{
			{name: "consentd_write_queue_depth", value: 7},
			{name: "consentd_write_queue_capacity", value: 4096},
			{name: "consentd_log_leaves", value: 1234},
			{name: "consentd_store_size_bytes", value: 32768},
			{name: "consentd_disk_free_bytes", value: 1 << 30},
			{name: "consentd_token_file_loaded", value: 1},
		}},
		{"unreadable", fakeStore{leaves: 1234, sizeErr: errors.New("gone")}, errors.New("statfs failed"), []series{
			{name: "consentd_store_size_bytes", absent: true},
			{name: "consentd_disk_free_bytes", absent: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := metrics.New("1.2.3")
			m.WatchStore(tt.store)
			m.WatchDiskFree(func() (uint64, error) { return 1 << 30, tt.freeErr })
			m.WatchTokenFile(func() bool { return true })
			mustHave(t, MustScrape(t, m), tt.want)
		})
	}
}
