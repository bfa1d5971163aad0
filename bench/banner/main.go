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
	"os"
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

// probe records, at the first animation frame in which the "Accept all" button has
// a size, the time since navigation started and the share of the screen the first
// layer covers; and, from the start, the long tasks (over 50 ms) of the main thread.
const probe = `(() => {
  window.longTasks = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.longTasks.push(e.duration); })
    .observe({ type: 'longtask', buffered: true });
  const check = () => {
    const host = document.querySelector('consent-banner');
    const b = host && host.shadowRoot && host.shadowRoot.querySelector('[data-action="accept-all"]');
    if (b && b.getBoundingClientRect().height > 0) {
      const r = b.closest('[role=region]').getBoundingClientRect();
      window.banner = { at: performance.now(), share: r.width * r.height / (innerWidth * innerHeight) };
    } else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();`

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
	visible, blocking, share float64 // ms, ms, fraction of the screen
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
	fmt.Printf("demo page on loopback, headless Chromium, %d×%d phone screen, browser and page in the language, median of %d\n", phone.Width, phone.Height, runs)
	fmt.Printf("%-14s %-4s %12s %20s %14s\n", "site", "lang", "visible (ms)", "blocking, 4× CPU (ms)", "screen share")
	for _, key := range cfg.SiteKeys() {
		for _, lang := range cfg.Sites[key].Languages {
			var all []measurement
			for i := range runs + 1 {
				m, err := loadOnce(browser, base+"/demo/"+key+"?lang="+lang, lang)
				if err != nil {
					return fmt.Errorf("%s %s: %w", key, lang, err)
				}
				if i > 0 {
					all = append(all, m)
				}
			}
			median := func(f func(measurement) float64) float64 {
				v := make([]float64, len(all))
				for i, m := range all {
					v[i] = f(m)
				}
				slices.Sort(v)
				return v[len(v)/2]
			}
			fmt.Printf("%-14s %-4s %12.0f %20.0f %13.0f%%\n", key, lang,
				median(func(m measurement) float64 { return m.visible }),
				median(func(m measurement) float64 { return m.blocking }),
				100*median(func(m measurement) float64 { return m.share }))
		}
	}
	return nil
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
	var m measurement
	for m.visible == 0 {
		time.Sleep(20 * time.Millisecond)
		b, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
			At    float64 `json:"at"`
			Share float64 `json:"share"`
		}](`window.banner || { at: 0, share: 0 }`))
		if err != nil {
			return measurement{}, err
		}
		m.visible, m.share = b.At, b.Share
	}
	// a second for the tasks that the banner's first frame left to run
	time.Sleep(time.Second)
	tasks, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.longTasks`))
	if err != nil {
		return measurement{}, err
	}
	for _, d := range tasks {
		m.blocking += max(0, d-50)
	}
	return m, nil
}
