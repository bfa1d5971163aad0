// Command banner measures what a visitor pays for the banner: the bytes of each
// site's first-view bundle (raw, gzip, brotli) next to vanilla-cookieconsent 3.1
// (JS + CSS, from node_modules, compressed the same way), and the time from
// navigation to the banner being visible in headless Chromium, median of several
// runs. Run it with `make bench`.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/chromium"
	"github.com/mixvoip/consentd/internal/localserver"
	"github.com/mixvoip/consentd/server"
)

// peer is the smallest full-featured open-source banner, as installed by npm ci.
var peer = []string{
	"node_modules/vanilla-cookieconsent/dist/cookieconsent.umd.js",
	"node_modules/vanilla-cookieconsent/dist/cookieconsent.css",
}

// visible records, at the first animation frame in which the "Accept all" button
// has a size, the time since navigation started.
const visible = `(() => {
  const check = () => {
    const host = document.querySelector('consent-banner');
    const b = host && host.shadowRoot && host.shadowRoot.querySelector('[data-action="accept-all"]');
    if (b && b.getBoundingClientRect().height > 0) window.bannerVisibleAt = performance.now();
    else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();`

func main() {
	runs := flag.Int("runs", 9, "page loads per site (after 2 warm-ups)")
	configPath := flag.String("config", "sites.yaml", "sites configuration")
	flag.Parse()
	if err := run(*configPath, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "banner:", err)
		os.Exit(1)
	}
}

func run(configPath string, runs int) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	fmt.Printf("%-28s %8s %8s %8s\n", "first view", "raw", "gzip", "brotli")
	for _, key := range cfg.SiteKeys() {
		b, err := banner.Build(cfg.Sites[key], banner.Options{})
		if err != nil {
			return err
		}
		if err := printSizes(key, b.JS); err != nil {
			return err
		}
	}
	var js []byte
	for _, f := range peer {
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("%w (run npm ci first)", err)
		}
		js = append(js, data...)
	}
	if err := printSizes("vanilla-cookieconsent 3.1.0", js); err != nil {
		return err
	}
	fmt.Println()
	return timeToVisible(cfg, runs)
}

// printSizes compresses data as the server does for the banner (best gzip, best
// brotli), so the comparison is like for like.
func printSizes(name string, data []byte) error {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		return err
	}
	var br bytes.Buffer
	bw := brotli.NewWriterLevel(&br, brotli.BestCompression)
	bw.Write(data)
	if err := bw.Close(); err != nil {
		return err
	}
	fmt.Printf("%-28s %8d %8d %8d\n", name, len(data), gz.Len(), br.Len())
	return nil
}

func timeToVisible(cfg *config.Config, runs int) error {
	srv, err := localserver.New(cfg, server.Options{Demo: true})
	if err != nil {
		return err
	}
	defer srv.Close()
	base, stopServer, err := localserver.Listen(srv)
	if err != nil {
		return err
	}
	defer stopServer()

	browser, stop, err := chromium.Start()
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("navigation to banner visible, headless Chromium, demo page on loopback, median of %d\n", runs)
	for _, key := range cfg.SiteKeys() {
		var times []float64
		for i := range runs + 2 {
			ms, err := loadOnce(browser, base+"/demo/"+key)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			if i >= 2 {
				times = append(times, ms)
			}
		}
		slices.Sort(times)
		fmt.Printf("%-14s %6.0f ms  (min %.0f, max %.0f)\n", key, times[len(times)/2], times[0], times[len(times)-1])
	}
	return nil
}

// loadOnce opens url in a fresh browser context (no cookie: the banner shows) and
// returns the milliseconds from navigation start to the banner being visible.
func loadOnce(browser context.Context, url string) (float64, error) {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 20*time.Second)
	defer cancelTimeout()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: visible}); err != nil {
		return 0, err
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return 0, err
	}
	for {
		ms, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`window.bannerVisibleAt || 0`))
		if err != nil {
			return 0, err
		}
		if ms > 0 {
			return ms, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}
