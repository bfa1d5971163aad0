// Command load measures consentd on loopback: durable POST /v1/consents throughput
// and latency at several concurrencies, next to a bare Echo handler measured in the
// same run (the machines here are shared and noisy: compare the ratio), and the size
// of every site's banner. Run it with `make bench`; it stops by itself.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/server"
	"github.com/mixvoip/consentd/store/bolt"
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
	if err := printBundleSizes(cfg); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "consentd-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	store, err := bolt.Open(filepath.Join(dir, "consent.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	srv := server.New(store, server.Options{})
	if err := srv.Load(cfg); err != nil {
		return err
	}
	consentURL, stop, err := listen(srv)
	if err != nil {
		return err
	}
	defer stop()
	bareURL, stopBare, err := listen(bareEcho())
	if err != nil {
		return err
	}
	defer stopBare()

	site := cfg.Sites[cfg.SiteKeys()[0]]
	body := func() []byte {
		b, _ := json.Marshal(map[string]any{
			"site": site.Key, "consent_id": uuid.NewString(), "action": "reject_all",
			"fingerprint": banner.Fingerprint(site),
			"choices":     map[string]any{"categories": map[string]bool{"technical": true, "advertising": false}},
			"language":    site.Languages[0], "url": site.Origins[0] + "/", "surface": "banner",
		})
		return b
	}
	fmt.Printf("POST /v1/consents on loopback, %s per level; every 201 is fsynced in bbolt\n", duration)
	fmt.Printf("%-8s %12s %10s %10s %14s %8s\n", "clients", "durable/s", "p50", "p99", "bare Echo/s", "ratio")
	for _, n := range strings.Split(levels, ",") {
		var clients int
		if _, err := fmt.Sscan(n, &clients); err != nil || clients < 1 {
			return fmt.Errorf("bad -clients %q", levels)
		}
		got, err := hammer(consentURL+"/v1/consents", site.Origins[0], clients, duration, body, http.StatusCreated)
		if err != nil {
			return err
		}
		bare, err := hammer(bareURL+"/v1/consents", site.Origins[0], clients, duration, body, http.StatusCreated)
		if err != nil {
			return err
		}
		fmt.Printf("%-8d %12.0f %10s %10s %14.0f %7.0f%%\n", clients, got.rate, got.p50, got.p99, bare.rate, 100*got.rate/bare.rate)
	}
	return nil
}

func printBundleSizes(cfg *config.Config) error {
	fmt.Printf("%-14s %8s %8s %8s\n", "banner", "raw", "gzip", "brotli")
	for _, key := range cfg.SiteKeys() {
		b, err := banner.Build(cfg.Sites[key], banner.Options{})
		if err != nil {
			return err
		}
		fmt.Printf("%-14s %8d %8d %8d\n", key, len(b.JS), len(b.Gzip), len(b.Brotli))
		if err := checkDecompresses(b); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	fmt.Println()
	return nil
}

func checkDecompresses(b *banner.Bundle) error {
	zr, err := gzip.NewReader(bytes.NewReader(b.Gzip))
	if err != nil {
		return err
	}
	gz, err := io.ReadAll(zr)
	if err != nil {
		return err
	}
	br, err := io.ReadAll(brotli.NewReader(bytes.NewReader(b.Brotli)))
	if err != nil || !bytes.Equal(gz, b.JS) || !bytes.Equal(br, b.JS) {
		return fmt.Errorf("precompressed variants differ from the bundle")
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

func listen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go s.Serve(ln)
	return "http://" + ln.Addr().String(), func() { s.Shutdown(context.Background()) }, nil
}

type result struct {
	rate     float64
	p50, p99 time.Duration
}

// hammer posts with n clients for d, each client one keep-alive connection sending
// its next request when the last one is answered.
func hammer(url, origin string, n int, d time.Duration, body func() []byte, want int) (result, error) {
	transport := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	deadline := time.Now().Add(d)
	var (
		mu        sync.Mutex
		latencies []time.Duration
		firstErr  error
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body()))
				req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
				req.Header.Set("Origin", origin)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return result{}, firstErr
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		return latencies[int(p*float64(len(latencies)-1))].Round(10 * time.Microsecond)
	}
	return result{rate: float64(len(latencies)) / elapsed.Seconds(), p50: pct(0.50), p99: pct(0.99)}, nil
}
