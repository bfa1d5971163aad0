package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the counters an operator watches: decisions recorded and error
// answers. Each Server has its own registry, so tests can run several.
type metrics struct {
	registry            *prometheus.Registry
	recorded            *prometheus.CounterVec
	errors              *prometheus.CounterVec
	untrustedForwarding prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentd_records_total", Help: "Consent records durably stored, by site and action.",
		}, []string{"site", "action"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consentd_http_errors_total", Help: "Error answers, by status and error code.",
		}, []string{"status", "code"}),
		untrustedForwarding: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consentd_untrusted_forwarded_total",
			Help: "Requests with X-Forwarded-For from a peer that --trusted-proxies does not list: their client is the peer.",
		}),
	}
	m.registry.MustRegister(m.recorded, m.errors, m.untrustedForwarding, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
