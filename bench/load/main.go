// Command load measures consentd on loopback: durable POST /v1/consents throughput
// and latency at several concurrencies, in short rounds alternating with a bare Echo
// handler (the machines here are shared and noisy: what else runs falls on both alike,
// and the medians and the ratio per pair of rounds are what to compare); then what an
// anonymous flood of the DPO API and a client over its limit cost the visitors. Run
// it with `make bench`; it stops by itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/localserver"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/server"
)

func main() {
	duration := flag.Duration("duration", 2*time.Second, "how long each round runs")
	levels := flag.String("clients", "1,16,64", "concurrency levels")
	rounds := flag.Int("rounds", 5, "rounds per level of consentd, each followed by one of the bare handler")
	attack := flag.Duration("attack", 30*time.Second, "how long each attack runs (0: none)")
	configPath := flag.String("config", "sites.yaml", "sites configuration")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of one more round of consentd, at the last level, to this file")
	store := flag.String("store", "bolt", "where consentd records: bolt (a file), or postgres (a throwaway cluster of Debian's postgresql, fsync on)")
	instances := flag.Bool("instances", false, "instead: bbolt, PostgreSQL with one instance and PostgreSQL with three instances side by side, at the last -clients level")
	flag.Parse()
	var err error
	if *instances {
		err = runInstances(*configPath, *levels, *rounds, *duration)
	} else {
		err = run(*configPath, *levels, *rounds, *duration, *attack, *cpuProfile, *store)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(configPath, levels string, rounds int, duration, attack time.Duration, cpuProfile, store string) error {
	if rounds < 1 {
		return fmt.Errorf("bad -rounds %d", rounds)
	}
	var postgresURL string
	switch store {
	case "bolt":
	case "postgres":
		cluster, err := pgtest.Start(pgtest.Durable)
		if err != nil {
			return err
		}
		defer cluster.Stop()
		if postgresURL, err = cluster.NewDatabase(context.Background()); err != nil {
			return err
		}
	default:
		return fmt.Errorf("bad -store %q: bolt or postgres", store)
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	printMachine()

	// As in production behind a proxy: the limits of consentd serve, and the client
	// taken from X-Forwarded-For, which the load generator sets (a visitor each).
	srv, err := localserver.New(cfg, server.Options{
		TrustedProxies:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		ConsentLimit:     server.DefaultConsentLimit,
		AuthFailureLimit: server.DefaultAuthFailureLimit,
		LimitDelay:       server.DefaultLimitDelay,
	}, postgresURL)
	if err != nil {
		return err
	}
	defer srv.Close()
	consentURL, stop, err := localserver.Listen(srv)
	if err != nil {
		return err
	}
	defer stop()
	bareURL, stopBare, err := localserver.Listen(bareEcho())
	if err != nil {
		return err
	}
	defer stopBare()

	site := cfg.Sites[cfg.SiteKeys()[0]]
	body := consentBody(site)
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("the load test needs wrk (apt-get install wrk)")
	}
	visitors := func(url string, clients int) load {
		return load{url: url + "/v1/consents", method: "POST", origin: site.Origins[0], body: body, xff: "random", clients: clients}
	}
	fmt.Printf("POST /v1/consents on loopback with wrk; every 201 is durable in %s. Per level, %d rounds of %s of consentd,\n", store, rounds, duration)
	fmt.Printf("each followed by one of the bare Echo handler; medians over the rounds, the ratio consentd/bare per pair of rounds\n")
	fmt.Printf("%-8s %12s %10s %10s %14s %8s %12s\n", "clients", "durable/s", "p50", "p99", "bare Echo/s", "ratio", "ratio range")
	var clients int
	for _, n := range strings.Split(levels, ",") {
		if _, err := fmt.Sscan(n, &clients); err != nil || clients < 1 {
			return fmt.Errorf("bad -clients %q", levels)
		}
		if err := alternate(visitors(consentURL, clients), visitors(bareURL, clients), rounds, duration); err != nil {
			return fmt.Errorf("%d clients: %w", clients, err)
		}
	}
	if cpuProfile != "" {
		if err := profile(cpuProfile, visitors(consentURL, clients), duration); err != nil {
			return err
		}
	}
	if attack <= 0 {
		return nil
	}
	return underAttack(srv, consentURL, visitors(consentURL, 64), attack)
}

// printMachine says what the numbers were measured on, and when.
func printMachine() {
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d cores, %s/%s, %s, %s\n\n", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format(time.RFC3339))
}

// consentBody is the body of a visitor's decision on site, with CONSENT_ID where
// the load puts a new consent id each time.
func consentBody(site *consent.Site) string {
	body, _ := json.Marshal(map[string]any{
		"site": site.Key, "consent_id": "CONSENT_ID", "action": "reject_all",
		"fingerprint": banner.Fingerprint(site),
		"choices":     site.AllChoices(false),
		"language":    site.Languages[0], "url": site.Origins[0] + "/", "surface": "banner",
	})
	return string(body)
}

// alternate runs rounds of consentd, each followed by one of the bare handler, and
// prints their medians: a pair of rounds seconds apart shares the machine's state,
// which a level measured once, minutes away from its bare counterpart, does not.
func alternate(consentd, bare load, rounds int, d time.Duration) error {
	var rates, p50s, p99s, bareRates, ratios []float64
	for range rounds {
		got, err := mustSucceed(hammer(consentd, d))
		if err != nil {
			return fmt.Errorf("consentd: %w", err)
		}
		ceiling, err := mustSucceed(hammer(bare, d))
		if err != nil {
			return fmt.Errorf("bare handler: %w", err)
		}
		rates = append(rates, got.rate)
		p50s = append(p50s, float64(got.p50))
		p99s = append(p99s, float64(got.p99))
		bareRates = append(bareRates, ceiling.rate)
		ratios = append(ratios, got.rate/ceiling.rate)
	}
	latency := func(xs []float64) time.Duration { return time.Duration(median(xs)).Round(time.Microsecond) }
	spread := fmt.Sprintf("%.0f–%.0f%%", 100*slices.Min(ratios), 100*slices.Max(ratios))
	fmt.Printf("%-8d %12.0f %10s %10s %14.0f %7.0f%% %12s\n", consentd.clients, median(rates), latency(p50s), latency(p99s), median(bareRates), 100*median(ratios), spread)
	return nil
}

// profile writes to path a CPU profile of consentd (this process) while l runs for d.
func profile(path string, l load, d time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	_, err = mustSucceed(hammer(l, d))
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	fmt.Printf("CPU profile of a round of %d clients: %s\n", l.clients, path)
	return f.Close()
}

// median is the middle value of xs, or the mean of the two middle ones.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

// underAttack measures what two attacks cost the visitors: 32 connections calling
// the DPO API without a token, with 16 KiB of query each, from one client and from
// ever new ones; and one client posting decisions as fast as it can.
func underAttack(srv *localserver.Server, url string, visitors load, d time.Duration) error {
	fmt.Printf("\nUnder attack, %s each; 64 connections of visitors post decisions meanwhile, each request from another /24\n", d)
	alone, err := mustSucceed(hammer(visitors, d))
	if err != nil {
		return err
	}
	fmt.Printf("visitors alone: %.0f decisions/s\n", alone.rate)
	for _, from := range []string{"198.51.100.9", "random"} {
		before, err := auditBytes(srv)
		if err != nil {
			return err
		}
		sizeBefore, _ := srv.Store().FileSize()
		flood := load{url: url + "/v1/dpo/records?x=" + strings.Repeat("a", 16<<10), method: "GET", xff: from, clients: 32}
		results, err := together(d, visitors, flood)
		if err != nil {
			return err
		}
		after, err := auditBytes(srv)
		if err != nil {
			return err
		}
		who := "one client"
		if from == "random" {
			who = "a new /24 each call"
		}
		fmt.Printf("anonymous DPO flood from %s: %.0f calls/s answered, %d of them 401 or 429\n", who, results[1].rate, results[1].failed)
		fmt.Printf("  visitors meanwhile: %.0f decisions/s, ratio %.2f to alone (target 0.9)\n", results[0].rate, results[0].rate/alone.rate)
		sizeAfter, _ := srv.Store().FileSize()
		fmt.Printf("  audit log grew %d bytes (target under 1 MB); the store %d bytes (bbolt grows its file in steps of 16 MiB), with the decisions stored\n",
			after-before, sizeAfter-sizeBefore)
	}

	const hotClient = "198.51.100.7"
	hot := load{url: url + "/v1/consents", method: "POST", origin: visitors.origin, body: visitors.body, xff: hotClient, clients: 8}
	visitors.clients = 56
	results, err := together(d, visitors, hot)
	if err != nil {
		return err
	}
	stored, err := recordsOf(srv, hotClient+"/24")
	if err != nil {
		return err
	}
	fmt.Printf("one client over its limit (%g/s, burst %d): %.0f decisions/s sent, %d answered 429, %d stored\n",
		server.DefaultConsentLimit.Rate, server.DefaultConsentLimit.Burst, results[1].rate, results[1].failed, stored)
	fmt.Printf("  the others meanwhile: %.0f decisions/s, %d refused\n", results[0].rate, results[0].failed)
	return nil
}

// recordsOf counts the records whose IP prefix is the one of addr/24.
func recordsOf(srv *localserver.Server, cidr string) (int, error) {
	prefix := netip.MustParsePrefix(cidr).Masked().String()
	n, after := 0, ""
	for {
		page, err := srv.Store().Records(context.Background(), consent.Filter{}, after, 1000)
		if err != nil {
			return 0, err
		}
		for _, r := range page {
			if r.IPPrefix == prefix {
				n++
			}
			after = r.ID
		}
		if len(page) < 1000 {
			return n, nil
		}
	}
}

// together runs the loads at the same time, for d.
func together(d time.Duration, loads ...load) ([]result, error) {
	results := make([]result, len(loads))
	errs := make([]error, len(loads))
	var wg sync.WaitGroup
	for i, l := range loads {
		wg.Go(func() { results[i], errs[i] = hammer(l, d) })
	}
	wg.Wait()
	return results, errors.Join(errs...)
}

// auditBytes is the size of the audit log, as the store keeps it (JSON), after
// the server wrote what it counted so far.
func auditBytes(srv *localserver.Server) (int, error) {
	if err := srv.Server.Close(); err != nil {
		return 0, err
	}
	n, after := 0, ""
	for {
		page, err := srv.Store().Audit(context.Background(), after, 1000)
		if err != nil {
			return 0, err
		}
		for _, e := range page {
			b, _ := json.Marshal(e)
			n += len(b)
			after = e.ID
		}
		if len(page) < 1000 {
			return n, nil
		}
	}
}

// bareEcho answers like consentd does, minus validation and storage: the ceiling
// that consentd's throughput is compared with.
func bareEcho() http.Handler {
	e := echo.New()
	e.POST("/v1/consents", func(c echo.Context) error {
		var v map[string]any
		if err := json.NewDecoder(c.Request().Body).Decode(&v); err != nil {
			return err
		}
		return c.JSON(http.StatusCreated, map[string]any{"record_id": uuid.NewString(), "consent_id": v["consent_id"], "recorded_at": time.Now().UTC()})
	})
	return e
}

type result struct {
	rate     float64
	p50, p99 time.Duration
	failed   int // answers other than 2xx and 3xx, and requests without an answer
}

func mustSucceed(r result, err error) (result, error) {
	if err == nil && r.failed > 0 {
		err = fmt.Errorf("wrk: %d requests failed", r.failed)
	}
	return r, err
}

// load is what wrk sends: a fresh consent id in each body, and X-Forwarded-For
// "random" (another /24 each request), a fixed address, or none.
type load struct {
	url, method, origin, body, xff string
	clients                        int
}

// wrkScript sends a load; wrk reports through done(). A load with the same request
// each time is set up once, so that wrk sends it at its full speed, without Lua on
// the way.
const wrkScript = `
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local function hex(n)
  local t = {}
  for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end
local headers = {}
if ORIGIN ~= "" then
  headers["Origin"] = ORIGIN
  headers["Content-Type"] = "text/plain;charset=UTF-8"
end
if XFF ~= "" and XFF ~= "random" then
  headers["X-Forwarded-For"] = XFF
end
if XFF == "random" or BODY:find("CONSENT_ID") then
  request = function()
    if XFF == "random" then
      headers["X-Forwarded-For"] = math.random(1, 223).."."..math.random(0, 255).."."..math.random(0, 255)..".7"
    end
    local body = nil
    if BODY ~= "" then
      local id = hex(8).."-"..hex(4).."-4"..hex(3).."-a"..hex(3).."-"..hex(12)
      body = BODY:gsub("CONSENT_ID", id)
    end
    return wrk.format(METHOD, nil, headers, body)
  end
else
  wrk.method = METHOD
  wrk.headers = headers
  if BODY ~= "" then wrk.body = BODY end
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
`

// hammer runs wrk with l for d: a load generator in its own process, written in C,
// so that it costs the server as little CPU as possible.
func hammer(l load, d time.Duration) (result, error) {
	dir, err := os.MkdirTemp("", "consentd-wrk-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	script := fmt.Sprintf("METHOD = %q\nORIGIN = %q\nBODY = %q\nXFF = %q\n%s", l.method, l.origin, l.body, l.xff, wrkScript)
	path := filepath.Join(dir, "load.lua")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		return result{}, err
	}
	threads := min(l.clients, 2)
	out, err := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(l.clients), "-d", d.String(), "-s", path, l.url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	var r result
	var p50, p99 float64
	for _, line := range strings.Split(string(out), "\n") {
		if _, err := fmt.Sscanf(line, "RESULT %f %f %f %d", &r.rate, &p50, &p99, &r.failed); err == nil {
			r.p50, r.p99 = time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond
			return r, nil
		}
	}
	return result{}, fmt.Errorf("wrk printed no result:\n%s", out)
}
