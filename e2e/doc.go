// Package e2e tests the consent banner end to end: the real consentd handler and
// bbolt store behind a local HTTP server, and the real banner in a headless Chromium
// that resolves the sites', the backend's and the partners' host names to that server.
//
// The tests need Debian's chromium (/usr/bin/chromium or chromium on PATH). Set
// CONSENTD_SKIP_BROWSER=1 to skip them where no browser can be installed. TestProxy
// also needs Debian's caddy, which runs deploy/Caddyfile in front of consentd;
// CONSENTD_SKIP_DEPLOY=1 skips it.
package e2e
