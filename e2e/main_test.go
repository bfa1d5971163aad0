package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/chromium"
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
	cfg, err := config.Load(sitesFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	if proxyTLS, err = newProxyCert(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the reverse proxy's certificate: %v\n", err)
		return 1
	}
	ctx, stop, err := chromium.Start(chromedp.Flag("host-resolver-rules", hostResolverRules(cfg.SiteKeys())),
		// The reverse proxy's certificate (proxy_test.go), self-signed, and no other: the
		// other tests' pages and backend are plain HTTP.
		chromedp.Flag("ignore-certificate-errors-spki-list", proxyTLS.spki))
	if err != nil {
		fmt.Fprintf(os.Stderr, "\n*** e2e: %v\n*** Install Debian's chromium (apt-get install -y chromium), or set %s=1 to skip the browser tests. ***\n\n", err, skipEnv)
		return 1
	}
	defer stop()
	browserCtx = ctx
	return m.Run()
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

// MustBrowser skips tb when the browser tests are switched off, and returns the
// browser's context otherwise.
func MustBrowser(tb testing.TB) context.Context {
	tb.Helper()
	if browserCtx == nil {
		tb.Skipf("%s=1: browser test skipped", skipEnv)
	}
	return browserCtx
}
