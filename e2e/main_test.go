package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mixvoip/consentd/config"
)

// sitesFile is the shipped configuration that every test starts from.
const sitesFile = "../sites.yaml"

// skipEnv names the variable that skips the browser tests where no browser exists.
const skipEnv = "CONSENTD_SKIP_BROWSER"

// browserCtx is the one browser of this test binary; each case opens its own browser
// context (incognito-like) under it. Nil when the browser tests are skipped.
var browserCtx context.Context

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Getenv(skipEnv) == "1" {
		fmt.Fprintf(os.Stderr, "\n*** e2e: %s=1: SKIPPING every browser test (nothing in a real browser was checked) ***\n\n", skipEnv)
		return m.Run() // each test calls t.Skip, so -v lists them as SKIP
	}
	execPath, err := findChromium()
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n*** e2e: %v\n*** Install Debian's chromium (apt-get install -y chromium), or set %s=1 to skip the browser tests. ***\n\n", err, skipEnv)
		return 1
	}
	cfg, err := config.Load(sitesFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "consentd-e2e-chromium")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer removeAllRetry(dir)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.Flag("host-resolver-rules", hostResolverRules(cfg.SiteKeys())),
	)
	defer cancelAlloc()
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	// Start the browser without a deadline: the first Run binds its life to ctx.
	if err := chromedp.Do(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: start %s: %v\n", execPath, err)
		return 1
	}
	browserCtx = ctx
	code := m.Run()
	cancelBrowser()
	cancelAlloc()
	return code
}

// findChromium returns Debian's chromium, or the one on PATH.
func findChromium() (string, error) {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium", nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no browser: neither /usr/bin/chromium nor chromium on PATH exists, so the end-to-end banner tests cannot run")
}

// hostResolverRules sends the backend, the fake partners and every site (www and
// apex) to the local test servers; the port stays the one in the URL.
func hostResolverRules(sites []string) string {
	rules := []string{"MAP consent.test 127.0.0.1", "MAP *.partner.test 127.0.0.1"}
	for _, s := range sites {
		rules = append(rules, "MAP www."+s+" 127.0.0.1", "MAP "+s+" 127.0.0.1")
	}
	return strings.Join(rules, ", ")
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

// MustBrowser skips tb when the browser tests are switched off, and returns the
// browser's context otherwise.
func MustBrowser(tb testing.TB) context.Context {
	tb.Helper()
	if browserCtx == nil {
		tb.Skipf("%s=1: browser test skipped", skipEnv)
	}
	return browserCtx
}
