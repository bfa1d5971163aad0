// Command banner measures what a visitor pays for the banner: the bytes of each
// site's first view in each of its languages (raw, gzip, brotli) and of the second
// layer, next to vanilla-cookieconsent 3.1 (JS + CSS, from node_modules, compressed
// the same way); and in headless Chromium on a 390×844 phone screen, per site and
// language, the time from navigation to the banner being visible, the total blocking
// time with the CPU slowed down four times, and the share of the screen the first
// layer covers (medians of several runs). Run it with `make bench`.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/andybalholm/brotli"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
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

// probe records, from the start, the long tasks (over 50 ms) of the main thread, the
// longest run of a banner script (from the long animation frames, which name their
// scripts) and, at the first animation frame in which the "Accept all" button has a size, the time
// since navigation started and the share of the screen the first layer covers.
const probe = `(() => {
  window.longTasks = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.longTasks.push(e.duration); })
    .observe({ type: 'longtask', buffered: true });
  // the banner's own work: its scripts' runs, with the style and layout they force
  window.bannerTask = 0;
  new PerformanceObserver((list) => {
    for (const f of list.getEntries()) for (const s of f.scripts)
      if (s.sourceURL.includes('/banner')) window.bannerTask = Math.max(window.bannerTask, s.duration);
  }).observe({ type: 'long-animation-frame', buffered: true });
  window.shown = new Promise((resolve) => {
    const check = () => {
      const host = document.querySelector('consent-banner');
      const b = host && host.shadowRoot && host.shadowRoot.querySelector('[data-action="accept-all"]');
      if (!b || b.getBoundingClientRect().height == 0) return requestAnimationFrame(check);
      const r = b.closest('[role=region]').getBoundingClientRect();
      resolve({ at: performance.now(), share: r.width * r.height / (innerWidth * innerHeight) });
    };
    requestAnimationFrame(check);
  });
})();`

// measure waits in the page, without polling it, until the banner shows (or, with no
// banner, the page has loaded), then for a second of the tasks that left, and gives
// the measurement.
const measure = `(async () => {
  const m = document.querySelector('script[src*="banner.js"]') ? await window.shown
    : await new Promise((resolve) => document.readyState == 'complete' ? resolve({}) : addEventListener('load', () => resolve({})));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  return { at: m.at || 0, share: m.share || 0, task: window.bannerTask, blocking: window.longTasks.reduce((sum, d) => sum + Math.max(0, d - 50), 0) };
})()`

// phone is the screen the browser measurements emulate.
var phone = emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true}

// slowdown is the CPU throttling under which total blocking time is measured, as
// Lighthouse does for phones.
const slowdown = 4

func main() {
	runs := flag.Int("runs", 5, "page loads per site and language (after a warm-up)")
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
	fmt.Printf("%-28s %8s %8s %8s\n", "first view (second layer)", "raw", "gzip", "brotli")
	for _, key := range cfg.SiteKeys() {
		b, err := banner.Build(cfg.Sites[key], banner.Options{})
		if err != nil {
			return err
		}
		for i, script := range b.Scripts {
			if err := printSizes(key+" "+b.Languages[i], script.Raw); err != nil {
				return err
			}
			if err := printSizes("  (second layer)", b.Prefs[i].Raw); err != nil {
				return err
			}
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

// measurement is what one page load shows.
type measurement struct {
	Visible  float64 `json:"at"`       // ms since navigation start
	Share    float64 `json:"share"`    // of the screen the first layer covers
	Blocking float64 `json:"blocking"` // ms: the long tasks' time over 50 ms each
	Task     float64 `json:"task"`     // ms: the longest run of a banner script
}

func timeToVisible(cfg *config.Config, runs int) error {
	srv, err := localserver.New(cfg, server.Options{Demo: true}, "")
	if err != nil {
		return err
	}
	defer srv.Close()
	base, stopServer, err := localserver.Listen(srv)
	if err != nil {
		return err
	}
	defer stopServer()
	// the same demo pages without the banner's script tag: what the page costs alone
	bare, stopBare, err := localserver.Listen(withoutBanner(base))
	if err != nil {
		return err
	}
	defer stopBare()

	browser, stop, err := chromium.Start()
	if err != nil {
		return err
	}
	defer stop()
	median := func(url, lang string) (measurement, error) {
		var all []measurement
		for i := range runs + 1 {
			m, err := loadOnce(browser, url, lang)
			if err != nil {
				return m, err
			}
			if i > 0 { // the first warms the browser up
				all = append(all, m)
			}
		}
		mid := func(f func(measurement) float64) float64 {
			v := make([]float64, len(all))
			for i, m := range all {
				v[i] = f(m)
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		return measurement{
			Visible:  mid(func(m measurement) float64 { return m.Visible }),
			Share:    mid(func(m measurement) float64 { return m.Share }),
			Blocking: mid(func(m measurement) float64 { return m.Blocking }),
			Task:     mid(func(m measurement) float64 { return m.Task }),
		}, nil
	}
	fmt.Printf("demo page on loopback, headless Chromium, %d×%d phone screen, browser and page in the language, median of %d\n", phone.Width, phone.Height, runs)
	fmt.Printf("%-14s %-4s %12s %17s %16s %16s %13s\n", "site", "lang", "visible (ms)", "banner task (ms)", "TBT 4× CPU (ms)", "without banner", "screen share")
	for _, key := range cfg.SiteKeys() {
		for _, lang := range cfg.Sites[key].Languages {
			path := "/demo/" + key + "?lang=" + lang
			with, err := median(base+path, lang)
			if err != nil {
				return fmt.Errorf("%s %s: %w", key, lang, err)
			}
			without, err := median(bare+path, lang)
			if err != nil {
				return fmt.Errorf("%s %s without the banner: %w", key, lang, err)
			}
			fmt.Printf("%-14s %-4s %12.0f %17.0f %16.0f %16.0f %12.0f%%\n", key, lang, with.Visible, with.Task, with.Blocking, without.Blocking, 100*with.Share)
		}
	}
	return nil
}

// withoutBanner serves the pages of base with the banner's script tag taken out.
func withoutBanner(base string) http.Handler {
	client := &http.Client{Timeout: 10 * time.Second}
	tag := regexp.MustCompile(`<script src="[^"]*banner\.js" async></script>`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := client.Get(base + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		page, err := io.ReadAll(res.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
		w.WriteHeader(res.StatusCode)
		_, _ = w.Write(tag.ReplaceAll(page, nil)) // a page cut short fails its measurement
	})
}

// loadOnce opens url in a fresh browser context (no cookie: the banner shows) with
// the browser's language set to lang and the CPU slowed down, and measures it.
func loadOnce(browser context.Context, url, lang string) (measurement, error) {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 30*time.Second)
	defer cancelTimeout()
	v, err := chromedp.CallBrowser(ctx, cdpbrowser.GetVersion, cdp.Empty{})
	if err != nil {
		return measurement{}, err
	}
	setup := []func() error{
		func() error {
			_, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: v.UserAgent, AcceptLanguage: lang})
			return err
		},
		func() error { _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, phone); return err },
		func() error {
			_, err := chromedp.Call(ctx, emulation.SetCPUThrottlingRate, emulation.SetCPUThrottlingRateParams{Rate: slowdown})
			return err
		},
		func() error {
			_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: probe})
			return err
		},
	}
	for _, f := range setup {
		if err := f(); err != nil {
			return measurement{}, err
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return measurement{}, err
	}
	return chromedp.Run(ctx, chromedp.Evaluate[measurement](measure, chromedp.EvalAwaitPromise))
}
