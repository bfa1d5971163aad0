package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/scrape"
)

// MustScrape returns the /metrics of the consentd at addr.
func MustScrape(tb testing.TB, addr string) string {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("/metrics: %d, %v", resp.StatusCode, err)
	}
	return string(body)
}

// MustPost records a refusal on mixvoip.com at the consentd at addr.
func MustPost(tb testing.TB, addr string) {
	tb.Helper()
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	if status, err := postConsent(addr, cfg, "mixvoip.com", consent.ActionRejectAll, uuid.NewString()); err != nil || status != http.StatusCreated {
		tb.Fatalf("post: %d, %v", status, err)
	}
}

// TestServeMetrics: what consentd serve wires into the metrics moves with what it
// does: the files loaded at start, the store's queue, commits and checkpoints, the
// disk, and reloads that fail.
func TestServeMetrics(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sites.yaml")
	if err := os.WriteFile(path, []byte(MustRead(t, "../../sites.yaml")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr, _ := mustServeIn(t, path, dir)
	started := MustScrape(t, addr)
	loaded, _ := scrape.Value(started, `consentd_config_last_reload_success_timestamp_seconds{file="config"}`)
	if age := time.Since(time.Unix(int64(loaded), 0)); age < 0 || age > time.Hour {
		t.Errorf("the configuration loaded at start %v ago, want just now", age)
	}
	mustMetrics(t, started, map[string]func(float64) bool{
		`consentd_build_info{goversion="` + runtime.Version() + `",version="` + version() + `"}`: is(1),
		`consentd_config_last_reload_successful{file="config"}`:                                  is(1),
		`consentd_config_last_reload_successful{file="tokens"}`:                                  is(1),
		`consentd_config_last_reload_successful{file="keys"}`:                                    is(1),
		`consentd_config_reloads_total{file="tokens",result="success"}`:                          is(1),
		`consentd_write_queue_capacity`:                                                          is(4096),
		`consentd_write_queue_depth`:                                                             is(0),
		`consentd_log_leaves`:                                                                    is(0),
		`consentd_store_size_bytes`:                                                              above(0),
		`consentd_disk_free_bytes`:                                                               above(0),
		`consentd_commit_duration_seconds_count`:                                                 is(0),
	})

	MustPost(t, addr)
	mustMetrics(t, MustScrape(t, addr), map[string]func(float64) bool{
		`consentd_log_leaves`: is(1),
		`consentd_records_total{action="reject_all",site="mixvoip.com"}`:                                               is(1),
		`consentd_http_request_duration_seconds_count{code_class="2xx",method="POST",route="/v1/consents"}`:            is(1),
		`consentd_commit_duration_seconds_count`:                                                                       is(1),
		`consentd_commit_batch_records_sum`:                                                                            is(1),
		`consentd_commit_batch_records_bucket{le="1"}`:                                                                 is(1),
		`consentd_http_request_duration_seconds_count{code_class="2xx",method="GET",route="/metrics"}`:                 above(0),
		`consentd_http_request_duration_seconds_bucket{code_class="2xx",method="POST",route="/v1/consents",le="+Inf"}`: is(1),
	})

	writeLater(t, path, "sites: [")
	if err := MustReloaded(t, path); err == nil {
		t.Fatal("a broken sites.yaml reloaded")
	}
	mustMetrics(t, MustScrape(t, addr), map[string]func(float64) bool{
		`consentd_config_reloads_total{file="config",result="failure"}`:        is(1),
		`consentd_config_reloads_total{file="config",result="success"}`:        is(1),
		`consentd_config_last_reload_successful{file="config"}`:                is(0),
		`consentd_config_last_reload_success_timestamp_seconds{file="config"}`: is(loaded),
		`consentd_config_last_reload_successful{file="tokens"}`:                is(1),
		`consentd_config_reloads_total{file="tokens",result="failure"}`:        is(0),
		`consentd_config_last_reload_success_timestamp_seconds{file="tokens"}`: above(0),
	})

	writeLater(t, path, MustRead(t, "../../sites.yaml"))
	if err := MustReloaded(t, path); err != nil {
		t.Fatal(err)
	}
	mustMetrics(t, MustScrape(t, addr), map[string]func(float64) bool{
		`consentd_config_reloads_total{file="config",result="success"}`:        is(2),
		`consentd_config_last_reload_successful{file="config"}`:                is(1),
		`consentd_config_last_reload_success_timestamp_seconds{file="config"}`: above(loaded),
	})
}

func is(want float64) func(float64) bool   { return func(v float64) bool { return v == want } }
func above(min float64) func(float64) bool { return func(v float64) bool { return v > min } }

// mustMetrics checks that each series of want is in text with a value that holds.
func mustMetrics(tb testing.TB, text string, want map[string]func(float64) bool) {
	tb.Helper()
	for series, ok := range want {
		if v, found := scrape.Value(text, series); !found || !ok(v) {
			tb.Errorf("%s = %v (present %t): not what it should be", series, v, found)
		}
	}
}

// metricName is a metric's name in a query: consentd's own, or of the Go and
// process collectors.
var metricName = regexp.MustCompile(`\b(?:consentd|go|process)_[a-z0-9_]*[a-z0-9]\b`)

// TestDeployNamesServedMetrics: every metric that deploy/alerts.yaml and the Grafana
// dashboard query is one that a running consentd serves, so that a rename cannot
// leave an alert that never fires or an empty panel.
func TestDeployNamesServedMetrics(t *testing.T) {
	m, addr, _ := mustServeIn(t, "../../sites.yaml", t.TempDir())
	MustPost(t, addr)
	if got := getStatus(t, "http://"+addr+"/v1/consents/not-an-id", ""); got != http.StatusBadRequest {
		t.Fatalf("a bad consent id: %d", got) // an error answer, counted
	}
	// Standing in for the scheduled backups, whose series appear with the first.
	m.metrics.BackupDone(time.Now(), time.Second, 1<<20, nil)
	m.metrics.BackupDone(time.Now(), time.Second, 0, errors.New("disk full"))
	served := scrape.Names(MustScrape(t, addr))

	for _, file := range []string{"../../deploy/alerts.yaml", "../../deploy/grafana-dashboard.json"} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			names := metricName.FindAllString(MustRead(t, file), -1)
			if len(names) < 10 {
				t.Fatalf("%s names %d metrics: %v", file, len(names), names)
			}
			var unknown []string
			for _, name := range names {
				if !served[name] && !slices.Contains(unknown, name) {
					unknown = append(unknown, name)
				}
			}
			if len(unknown) > 0 {
				t.Errorf("%s queries metrics that consentd does not serve: %s", file, strings.Join(unknown, ", "))
			}
		})
	}
}
