// Package metrics is consentd's one use of Prometheus: the series an operator
// watches and alerts on (deploy/alerts.yaml), set through typed methods that the
// server and the wiring in cmd/consentd call. Labels take only values from small
// fixed sets (a route pattern, a site of sites.yaml, a status class), never input.
package metrics

import (
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The files consentd reloads, as Reloaded names them.
const (
	FileConfig = "config" // sites.yaml
	FileTokens = "tokens" // the DPO API's token file
	FileKeys   = "keys"   // the signing key directory
)

// The rate limits, as RateLimited names them.
const (
	LimitConsent     = "consent"      // decisions posted per client
	LimitAuthFailure = "auth_failure" // DPO calls with a missing or wrong token per client
)

// Metrics holds the series of one consentd. Each has its own registry, so that
// tests can run several.
type Metrics struct {
	registry           *prometheus.Registry
	requests           *prometheus.HistogramVec
	records            *prometheus.CounterVec
	errors             *prometheus.CounterVec
	untrustedForwarded prometheus.Counter
	rateLimited        *prometheus.CounterVec
	commitRecords      prometheus.Histogram
	commitDuration     prometheus.Histogram
	reloads            *prometheus.CounterVec
	reloadedAt         *prometheus.GaugeVec
	reloadOK           *prometheus.GaugeVec
	backups            *prometheus.CounterVec

	backupsOnce    sync.Once
	backupAt       prometheus.Gauge
	backupDuration prometheus.Gauge
	backupSize     prometheus.Gauge
}

// New returns the metrics of a consentd of the given version, with the Go and
// process collectors.
func New(version string) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "consentd_http_request_duration_seconds",
			Help: "Time from a request's arrival to its answer, by route pattern (\"unmatched\" for none), method and status class.",
			// A banner from memory takes well under a millisecond, a decision a
			// commit of a few, an export or a backup seconds.
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "code_class"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentd_records_total", Help: "Consent records durably stored, by site and action.",
		}, []string{"site", "action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentd_http_errors_total", Help: "Error answers, by status and error code.",
		}, []string{"status", "code"}),
		untrustedForwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentd_untrusted_forwarded_total",
			Help: "Requests with X-Forwarded-For from a peer that --trusted-proxies does not list: their client is the peer.",
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentd_rate_limited_total", Help: "Requests answered 429 because their client went over a limit, by limit.",
		}, []string{"limit"}),
		commitRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "consentd_commit_batch_records",
			Help:    "Records in each transaction of the store's writer.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1024: a batch holds 1000 at most
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "consentd_commit_duration_seconds",
			Help:    "Time of each transaction of the store's writer, its fdatasyncs included.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentd_config_reloads_total",
			Help: "Loads of a watched file (config, tokens, keys), at start and on change, by result (success, failure).",
		}, []string{"file", "result"}),
		reloadedAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consentd_config_last_reload_success_timestamp_seconds",
			Help: "When a watched file last loaded, by file.",
		}, []string{"file"}),
		reloadOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "consentd_config_last_reload_successful",
			Help: "1 if the last load of a watched file succeeded, 0 if it failed and the previous version serves, by file.",
		}, []string{"file"}),
		backups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentd_backups_total", Help: "Scheduled backups of the store, by result (success, failure).",
		}, []string{"result"}),
		backupAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "consentd_backup_last_success_timestamp_seconds", Help: "When the last scheduled backup that succeeded started.",
		}),
		backupDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "consentd_backup_last_duration_seconds", Help: "How long the last scheduled backup took, whether it succeeded or not.",
		}),
		backupSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "consentd_backup_last_size_bytes", Help: "Size of the last scheduled backup that succeeded.",
		}),
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "consentd_build_info", Help: "Always 1; its labels name the version of consentd and of Go that built it.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	// Every value of a label from a fixed set is there from the start, at 0: rate()
	// and increase() need a series before its first event.
	for _, file := range []string{FileConfig, FileTokens, FileKeys} {
		m.reloads.WithLabelValues(file, "success")
		m.reloads.WithLabelValues(file, "failure")
	}
	m.rateLimited.WithLabelValues(LimitConsent)
	m.rateLimited.WithLabelValues(LimitAuthFailure)
	m.backups.WithLabelValues("success")
	m.backups.WithLabelValues("failure")
	m.registry.MustRegister(m.requests, m.records, m.errors, m.untrustedForwarded, m.rateLimited,
		m.commitRecords, m.commitDuration, m.reloads, m.reloadedAt, m.reloadOK, m.backups, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Request counts an answered request: route is its route pattern ("unmatched" for
// none), never its path, which may hold a consent id.
func (m *Metrics) Request(route, method string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status/100)+"xx").Observe(took.Seconds())
}

// Recorded counts a decision durably stored.
func (m *Metrics) Recorded(site, action string) { m.records.WithLabelValues(site, action).Inc() }

// ErrorAnswered counts an error answer with its status and error code.
func (m *Metrics) ErrorAnswered(status int, code string) {
	m.errors.WithLabelValues(strconv.Itoa(status), code).Inc()
}

// UntrustedForwarded counts a request with X-Forwarded-For from a peer that is not
// a trusted proxy.
func (m *Metrics) UntrustedForwarded() { m.untrustedForwarded.Inc() }

// RateLimited counts a request refused by the limit LimitConsent or
// LimitAuthFailure.
func (m *Metrics) RateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// Committed observes a transaction of the store's writer (bolt.OnCommit).
func (m *Metrics) Committed(records int, took time.Duration) {
	m.commitRecords.Observe(float64(records))
	m.commitDuration.Observe(took.Seconds())
}

// Reloaded counts a load of the watched file FileConfig, FileTokens or FileKeys at
// at, at start or on change; err is why it failed, nil if it now serves.
func (m *Metrics) Reloaded(file string, at time.Time, err error) {
	if err != nil {
		m.reloads.WithLabelValues(file, "failure").Inc()
		m.reloadOK.WithLabelValues(file).Set(0)
		return
	}
	m.reloads.WithLabelValues(file, "success").Inc()
	m.reloadOK.WithLabelValues(file).Set(1)
	m.reloadedAt.WithLabelValues(file).Set(seconds(at))
}

// BackupDone records a scheduled backup of the store that started at start and
// took took: size is the bytes written when err is nil, err why it failed
// otherwise. The counter of backups is there from the start, at 0, so that the
// first failure counts as one; the gauges appear with the first call, so that a
// consentd without scheduled backups has no last backup to alert on, and from then
// on a last success at 0 says that none succeeded since the start.
func (m *Metrics) BackupDone(start time.Time, took time.Duration, size int64, err error) {
	m.registerBackups()
	m.backupDuration.Set(took.Seconds())
	if err != nil {
		m.backups.WithLabelValues("failure").Inc()
		return
	}
	m.backups.WithLabelValues("success").Inc()
	m.backupAt.Set(seconds(start))
	m.backupSize.Set(float64(size))
}

// BackupFound records the newest backup that scheduled backups find at start, taken
// at start, of size bytes: its age, not the restart, tells whether one is due, and
// a last success at 0 would say that none was ever taken.
func (m *Metrics) BackupFound(start time.Time, size int64) {
	m.registerBackups()
	m.backupAt.Set(seconds(start))
	m.backupSize.Set(float64(size))
}

func (m *Metrics) registerBackups() {
	m.backupsOnce.Do(func() {
		m.registry.MustRegister(m.backupAt, m.backupDuration, m.backupSize)
	})
}

// Store is what the metrics read of the store at each scrape; store/bolt's Store
// has it.
type Store interface {
	QueueDepth() int
	QueueCapacity() int
	LogSize() int64           // leaves in the log's tree, as its newest checkpoint signs it
	FileSize() (int64, error) // of the store's file
}

// WatchStore reads the store's write queue, log size and file size at each scrape.
// Call it once.
func (m *Metrics) WatchStore(s Store) {
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "consentd_write_queue_depth", Help: "Appends waiting for the store's writer.",
		}, func() float64 { return float64(s.QueueDepth()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "consentd_write_queue_capacity", Help: "Appends that may wait for the store's writer; beyond, decisions are answered 503.",
		}, func() float64 { return float64(s.QueueCapacity()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "consentd_log_leaves",
			Help: "Leaves in the transparency log's tree, as its newest signed checkpoint says: every decision ever recorded.",
		}, func() float64 { return float64(s.LogSize()) }),
		optionalGauge{
			desc: prometheus.NewDesc("consentd_store_size_bytes", "Size of the store's file.", nil, nil),
			read: func() (float64, bool) { n, err := s.FileSize(); return float64(n), err == nil },
		},
	)
}

// WatchDiskFree reads the bytes left where the store lives at each scrape: free
// returns them, or an error if it cannot tell. Call it once.
func (m *Metrics) WatchDiskFree(free func() (uint64, error)) {
	m.registry.MustRegister(optionalGauge{
		desc: prometheus.NewDesc("consentd_disk_free_bytes", "Bytes consentd may still write on the file system of the store.", nil, nil),
		read: func() (float64, bool) { n, err := free(); return float64(n), err == nil },
	})
}

// WatchTokenFile reads whether the token file last read loaded at each scrape.
// Call it once.
func (m *Metrics) WatchTokenFile(loaded func() bool) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "consentd_token_file_loaded",
		Help: "1 when the token file last read loaded; 0 when it did not: the DPO API then serves the previous one, or refuses every call without one.",
	}, func() float64 {
		if loaded() {
			return 1
		}
		return 0
	}))
}

// optionalGauge is a gauge read at each scrape that may have no value: one that
// cannot be read is left out rather than shown as 0, which would look like a full
// disk.
type optionalGauge struct {
	desc *prometheus.Desc
	read func() (float64, bool)
}

func (g optionalGauge) Describe(ch chan<- *prometheus.Desc) { ch <- g.desc }

func (g optionalGauge) Collect(ch chan<- prometheus.Metric) {
	if v, ok := g.read(); ok {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, v)
	}
}

// seconds is t as a Prometheus timestamp value: seconds since the Unix epoch.
func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
