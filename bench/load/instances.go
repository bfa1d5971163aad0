package main

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/localserver"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/postgres"
)

// setup is consentd on one store, served by one or more instances, and the
// integration latencies its PostgreSQL stores report while a round runs.
type setup struct {
	name      string
	urls      []string
	servers   []*localserver.Server
	mu        sync.Mutex
	recording bool
	latencies []time.Duration
}

func (s *setup) answered(took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recording {
		s.latencies = append(s.latencies, took)
	}
}

func (s *setup) close() {
	for _, srv := range s.servers {
		srv.Close()
	}
}

// runInstances is load -instances: compareInstances at the last of levels.
func runInstances(configPath, levels string, rounds int, d time.Duration) error {
	all := strings.Split(levels, ",")
	clients, err := strconv.Atoi(all[len(all)-1])
	if err != nil || clients < 3 || rounds < 1 {
		return fmt.Errorf("bad -clients %q or -rounds %d: -instances needs at least 3 clients and 1 round", levels, rounds)
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	printMachine()
	return compareInstances(cfg, clients, rounds, d)
}

// compareInstances measures durable POST /v1/consents at clients clients on bbolt,
// on PostgreSQL with one instance, and on PostgreSQL with three instances sharing
// the database, the clients spread over them: in rounds of d that alternate the
// three, so that what else runs on the machine falls on all alike.
func compareInstances(cfg *config.Config, clients, rounds int, d time.Duration) error {
	cluster, err := pgtest.Start(pgtest.Durable)
	if err != nil {
		return err
	}
	defer cluster.Stop()
	opts := server.Options{
		TrustedProxies:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		ConsentLimit:     server.DefaultConsentLimit,
		AuthFailureLimit: server.DefaultAuthFailureLimit,
		LimitDelay:       server.DefaultLimitDelay,
	}
	bolt, err := localserver.New(cfg, opts, "")
	if err != nil {
		return err
	}
	setups := []*setup{{name: "bbolt, 1 instance", servers: []*localserver.Server{bolt}}}
	defer func() {
		for _, s := range setups {
			s.close()
		}
	}()
	for _, instances := range []int{1, 3} {
		s, err := postgresSetup(cluster, cfg, opts, instances)
		if err != nil {
			return err
		}
		setups = append(setups, s)
	}
	for _, s := range setups {
		for _, srv := range s.servers {
			url, stop, err := localserver.Listen(srv)
			if err != nil {
				return err
			}
			defer stop()
			s.urls = append(s.urls, url)
		}
	}

	site := cfg.Sites[cfg.SiteKeys()[0]]
	body := consentBody(site)
	rates, p50s, p99s := map[*setup][]float64{}, map[*setup][]float64{}, map[*setup][]float64{}
	for range rounds {
		for _, s := range setups {
			var loads []load
			for i, url := range s.urls {
				// The clients spread over the instances, as a load balancer would.
				n := clients / len(s.urls)
				if i < clients%len(s.urls) {
					n++
				}
				loads = append(loads, load{url: url + "/v1/consents", method: "POST", origin: site.Origins[0], body: body, xff: "random", clients: n})
			}
			s.mu.Lock()
			s.recording = true
			s.mu.Unlock()
			results, err := together(d, loads...)
			s.mu.Lock()
			s.recording = false
			s.mu.Unlock()
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			var rate float64
			var p50, p99 time.Duration
			for _, r := range results {
				if r.failed > 0 {
					return fmt.Errorf("%s: %d requests failed", s.name, r.failed)
				}
				rate += r.rate
				p50, p99 = max(p50, r.p50), max(p99, r.p99)
			}
			rates[s] = append(rates[s], rate)
			p50s[s] = append(p50s[s], float64(p50))
			p99s[s] = append(p99s[s], float64(p99))
		}
	}

	fmt.Printf("POST /v1/consents at %d clients on loopback with wrk, every 201 durable; %d rounds of %s alternating the setups, medians\n", clients, rounds, d)
	fmt.Printf("(with several instances, the slowest instance's latency). Integration: from the write as pending to the answer, over all rounds\n")
	fmt.Printf("%-28s %12s %10s %10s %16s %16s\n", "setup", "durable/s", "p50", "p99", "integration p50", "integration p99")
	latency := func(xs []float64) time.Duration { return time.Duration(median(xs)).Round(time.Microsecond) }
	for _, s := range setups {
		integration := fmt.Sprintf("%16s %16s", "-", "-")
		if len(s.latencies) > 0 {
			slices.Sort(s.latencies)
			at := func(q float64) time.Duration {
				return s.latencies[int(q*float64(len(s.latencies)-1))].Round(time.Microsecond)
			}
			integration = fmt.Sprintf("%16s %16s", at(0.5), at(0.99))
		}
		fmt.Printf("%-28s %12.0f %10s %10s %s\n", s.name, median(rates[s]), latency(p50s[s]), latency(p99s[s]), integration)
	}
	return nil
}

// postgresSetup serves a new database of cluster with instances instances, each
// with a store of its own on the database and the same key.
func postgresSetup(cluster *pgtest.Cluster, cfg *config.Config, opts server.Options, instances int) (*setup, error) {
	ctx := context.Background()
	url, err := cluster.NewDatabase(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := postgres.Migrate(ctx, url); err != nil {
		return nil, err
	}
	if opts.Keys, err = proof.NewEphemeralKeyring(); err != nil {
		return nil, err
	}
	opts.Origin = localserver.Origin
	s := &setup{name: fmt.Sprintf("PostgreSQL, %d instance(s)", instances)}
	for range instances {
		store, err := postgres.Open(ctx, url, postgres.Options{Origin: opts.Origin, Keys: opts.Keys, OnAnswered: s.answered})
		if err != nil {
			s.close()
			return nil, err
		}
		srv, err := localserver.Serve(cfg, opts, store)
		if err != nil {
			store.Close()
			s.close()
			return nil, err
		}
		s.servers = append(s.servers, srv)
	}
	return s, nil
}
