// Command load measures consentd on loopback: durable POST /v1/consents throughput
// and latency at several concurrencies, next to a bare Echo handler measured in the
// same run (the machines here are shared and noisy: compare the ratio). Run it with
// `make bench`; it stops by itself.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/localserver"
)

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long each concurrency level runs")
	levels := flag.String("clients", "1,8,64", "concurrency levels")
	configPath := flag.String("config", "sites.yaml", "sites configuration")
	flag.Parse()
	if err := run(*configPath, *levels, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(configPath, levels string, duration time.Duration) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d cores, %s/%s, %s, %s\n\n", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), time.Now().UTC().Format(time.RFC3339))

	srv, err := localserver.New(cfg, false)
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
	body, _ := json.Marshal(map[string]any{
		"site": site.Key, "consent_id": "CONSENT_ID", "action": "reject_all",
		"fingerprint": banner.Fingerprint(site),
		"choices":     site.AllChoices(false),
		"language":    site.Languages[0], "url": site.Origins[0] + "/", "surface": "banner",
	})
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("the load test needs wrk (apt-get install wrk)")
	}
	fmt.Printf("POST /v1/consents on loopback with wrk, %s per level; every 201 is fsynced in bbolt\n", duration)
	fmt.Printf("%-8s %12s %10s %10s %14s %8s\n", "clients", "durable/s", "p50", "p99", "bare Echo/s", "ratio")
	for _, n := range strings.Split(levels, ",") {
		var clients int
		if _, err := fmt.Sscan(n, &clients); err != nil || clients < 1 {
			return fmt.Errorf("bad -clients %q", levels)
		}
		got, err := hammer(consentURL+"/v1/consents", site.Origins[0], clients, duration, body)
		if err != nil {
			return err
		}
		bare, err := hammer(bareURL+"/v1/consents", site.Origins[0], clients, duration, body)
		if err != nil {
			return err
		}
		fmt.Printf("%-8d %12.0f %10s %10s %14.0f %7.0f%%\n", clients, got.rate, got.p50, got.p99, bare.rate, 100*got.rate/bare.rate)
	}
	return nil
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
}

// wrkScript posts a fresh, valid consent each time; wrk reports through done().
const wrkScript = `
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local function hex(n)
  local t = {}
  for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end
wrk.method = "POST"
wrk.headers["Origin"] = ORIGIN
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
request = function()
  local id = hex(8).."-"..hex(4).."-4"..hex(3).."-a"..hex(3).."-"..hex(12)
  return wrk.format(nil, nil, nil, (BODY:gsub("CONSENT_ID", id)))
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %f %f %f %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect + summary.errors.timeout))
end
`

// hammer runs wrk with n connections for d against url: a load generator in its own
// process, written in C, so that it costs the server as little CPU as possible.
func hammer(url, origin string, n int, d time.Duration, body []byte) (result, error) {
	dir, err := os.MkdirTemp("", "consentd-wrk-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	script := fmt.Sprintf("ORIGIN = %q\nBODY = %q\n%s", origin, body, wrkScript)
	path := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		return result{}, err
	}
	threads := min(n, 2)
	out, err := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(n), "-d", d.String(), "-s", path, url).CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w\n%s", err, out)
	}
	var r result
	var p50, p99 float64
	var failed int
	for _, line := range strings.Split(string(out), "\n") {
		if _, err := fmt.Sscanf(line, "RESULT %f %f %f %d", &r.rate, &p50, &p99, &failed); err == nil {
			if failed > 0 {
				return result{}, fmt.Errorf("wrk: %d requests failed against %s", failed, url)
			}
			r.p50, r.p99 = time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond
			return r, nil
		}
	}
	return result{}, fmt.Errorf("wrk printed no result:\n%s", out)
}
