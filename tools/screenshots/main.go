// Command screenshots renders the banner of every site, in every language of the
// site, on a desktop and a phone, first and second layer, into PNG files:
//
//	go run ./tools/screenshots [-config sites.yaml] [-out docs/screenshots]
//
// It runs consentd in-process (demo pages on, a bbolt store in a temporary
// directory) on 127.0.0.1 and Debian's headless Chromium. Files are named
// <site>-<lang>-<desktop|mobile>-<layer1|layer2>.png.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/chromium"
	"github.com/mixvoip/consentd/internal/localserver"
	"github.com/mixvoip/consentd/server"
)

// device is one screen the banner is rendered on.
type device struct {
	name          string
	width, height int64
	mobile        bool
}

var devices = []device{{"desktop", 1280, 800, false}, {"mobile", 390, 844, true}}

func main() {
	cfgPath := flag.String("config", "sites.yaml", "the sites.yaml to render")
	out := flag.String("out", "docs/screenshots", "directory for the PNG files")
	flag.Parse()
	if err := run(*cfgPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func run(cfgPath, out string) error {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	srv, err := localserver.New(cfg, server.Options{Demo: true}, "")
	if err != nil {
		return err
	}
	defer srv.Close()
	base, stopServer, err := localserver.Listen(withLang(srv))
	if err != nil {
		return err
	}
	defer stopServer()

	browserCtx, stop, err := chromium.Start(chromedp.Flag("hide-scrollbars", true))
	if err != nil {
		return err
	}
	defer stop()

	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n := 0
	for _, site := range cfg.SiteKeys() {
		for _, lang := range cfg.Sites[site].Languages {
			for _, d := range devices {
				shots, err := render(browserCtx, base+"/shot/"+site+"/"+lang, d)
				if err != nil {
					return fmt.Errorf("%s %s %s: %w", site, lang, d.name, err)
				}
				for i, png := range shots {
					name := filepath.Join(out, fmt.Sprintf("%s-%s-%s-layer%d.png", site, lang, d.name, i+1))
					if err := os.WriteFile(name, png, 0o644); err != nil {
						return err
					}
					n++
				}
			}
		}
	}
	fmt.Printf("screenshots: wrote %d files to %s\n", n, out)
	return nil
}

// render opens url in a fresh browser context on device d and returns the screen
// with the first layer, then with the second (opened by "Customize").
func render(parent context.Context, url string, d device) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(parent, 30*time.Second)
	defer cancel()
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelTab()
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
		Width: d.width, Height: d.height, DeviceScaleFactor: 1, Mobile: d.mobile,
	}); err != nil {
		return nil, err
	}
	// No transitions: the pictures show the final state.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{
		{Name: "prefers-reduced-motion", Value: "reduce"}, {Name: "prefers-color-scheme", Value: "light"},
	}}); err != nil {
		return nil, err
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		return nil, err
	}
	const button = `document.querySelector('consent-banner') && document.querySelector('consent-banner').shadowRoot.querySelector('[data-action="%s"]')`
	var shots [][]byte
	for _, step := range []struct{ wait, click string }{
		{fmt.Sprintf(button, "accept-all"), ""},
		{`!!(document.querySelector('consent-banner').shadowRoot.querySelector('dialog[open]'))`, fmt.Sprintf(button, "customize") + `.click()`},
	} {
		if step.click != "" {
			if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](step.click)); err != nil {
				return nil, err
			}
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(`+step.wait+`)`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
			return nil, fmt.Errorf("wait for %s: %w", step.wait, err)
		}
		// Let fonts and layout settle.
		if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.fonts.ready`, chromedp.EvalAwaitPromise), chromedp.Sleep(150*time.Millisecond)); err != nil {
			return nil, err
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			return nil, err
		}
		shots = append(shots, png)
	}
	return shots, nil
}

var shotPath = regexp.MustCompile(`^/shot/([a-z0-9.-]+)/([a-z]{2})$`)

var htmlLang = regexp.MustCompile(`<html lang="[^"]*">`)

// withLang adds /shot/<site>/<lang>: the demo page of the site with <html lang>
// set to lang, so that the banner shows that language.
func withLang(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := shotPath.FindStringSubmatch(r.URL.Path)
		if m == nil {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, httptest.NewRequestWithContext(r.Context(), http.MethodGet, "/demo/"+m[1], nil))
		if rec.Code != http.StatusOK {
			http.Error(w, strings.TrimSpace(rec.Body.String()), rec.Code)
			return
		}
		page := htmlLang.ReplaceAll(rec.Body.Bytes(), []byte(`<html lang="`+m[2]+`">`))
		if bytes.Equal(page, rec.Body.Bytes()) && !bytes.Contains(page, []byte(`<html lang="`+m[2]+`">`)) {
			http.Error(w, "the demo page has no <html lang>", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(page)
	})
}
