// Package chromium starts Debian's headless Chromium the one way this project runs
// it (end-to-end tests, screenshots, benchmarks): with the flags that keep it off
// the network it cannot reach, in a fresh profile.
package chromium

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/chromedp/chromedp"
)

// Find returns Debian's chromium, or the one on PATH.
func Find() (string, error) {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium", nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no browser: neither /usr/bin/chromium nor chromium on PATH exists (apt-get install -y chromium)")
}

// Start launches the browser with a fresh profile and returns its context. Without
// the background-networking flags Chromium keeps dialling Google's hosts, which this
// machine refuses. Cancel the context to stop the browser and remove the profile.
func Start(extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc, error) {
	path, err := Find()
	if err != nil {
		return nil, nil, err
	}
	profile, err := os.MkdirTemp("", "consentd-chromium-")
	if err != nil {
		return nil, nil, err
	}
	opts := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
	}, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	stop := func() {
		cancelBrowser()
		cancelAlloc()
		removeAllRetry(profile)
	}
	// Start the browser without a deadline: the first action binds its life to ctx.
	if err := chromedp.Do(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("start %s: %w", path, err)
	}
	return ctx, stop, nil
}

// removeAllRetry removes dir; Chromium's child processes may still write in it for
// a moment after the browser exits.
func removeAllRetry(dir string) {
	for range 50 {
		if err := os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
