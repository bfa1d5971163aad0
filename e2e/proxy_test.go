package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/internal/deploytest"
	"github.com/mixvoip/consentd/internal/wait"
)

// caddyfile is the shipped configuration of the reverse proxy, which the test runs as
// it is, its placeholders set in Caddy's environment.
const caddyfile = "../deploy/Caddyfile"

// proxyTLS is the reverse proxy's certificate for backendHost. TestMain makes it, as
// the browser it starts accepts it by its key.
var proxyTLS *proxyCert

// proxyCert is a self-signed certificate for backendHost, with its key.
type proxyCert struct {
	certPEM, keyPEM []byte
	spki            string // base64 of the SHA-256 of its public key, as Chromium takes it
	pool            *x509.CertPool
}

func newProxyCert() (*proxyCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: backendHost},
		DNSNames:     []string{backendHost},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &proxyCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		spki:    base64.StdEncoding.EncodeToString(spki[:]),
		pool:    pool,
	}, nil
}

// Proxy is Debian's Caddy running the Caddyfile on loopback, for backendHost.
type Proxy struct {
	HTTPSPort, HTTPPort string
	log                 string // the file of what Caddy writes (its log)
}

// NewProxy picks the proxy's ports, which the Env behind it must know before Caddy
// can start.
func NewProxy(tb testing.TB) *Proxy {
	tb.Helper()
	return &Proxy{HTTPSPort: deploytest.MustFreePort(tb), HTTPPort: deploytest.MustFreePort(tb)}
}

// URL returns the address of path at the proxy, as the browser reaches it.
func (p *Proxy) URL(path string) string {
	return "https://" + backendHost + ":" + p.HTTPSPort + path
}

// MustStart runs caddy in front of upstream (host:port) until tb ends, and waits
// until it answers. Its admin API is off, its storage in a directory of tb's.
func (p *Proxy) MustStart(tb testing.TB, upstream string) {
	tb.Helper()
	caddy := deploytest.MustProgram(tb, "caddy", "caddy")
	dir := tb.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if strings.ContainsAny(dir, " \t") {
		tb.Fatalf("%s: CONSENTD_TLS takes file names without spaces", dir)
	}
	if err := os.WriteFile(certFile, proxyTLS.certPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, proxyTLS.keyPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	p.log = filepath.Join(dir, "caddy.log")
	log, err := os.Create(p.log)
	if err != nil {
		tb.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(),
		"CONSENTD_HOST="+backendHost,
		"CONSENTD_TLS="+certFile+" "+keyFile,
		"CONSENTD_UPSTREAM="+upstream,
		"CADDY_ADMIN=off",
		"CADDY_HTTP_PORT="+p.HTTPPort,
		"CADDY_HTTPS_PORT="+p.HTTPSPort,
		"CADDY_BIND=127.0.0.1",
		"HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"),
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-wait.Timeout(tb):
			cmd.Process.Kill()
			tb.Errorf("caddy did not stop on SIGINT")
		}
	})
	client := p.Client(tb, "")
	wait.MustUntil(tb, "Caddy answers on port "+p.HTTPSPort, func() (bool, string) {
		select {
		case err := <-exited:
			tb.Fatalf("caddy run exited: %v\n%s", err, p.Log(tb))
		default:
		}
		resp, err := client.Get(p.URL("/healthz"))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return true, ""
	})
}

// Log returns what Caddy has written so far.
func (p *Proxy) Log(tb testing.TB) string {
	tb.Helper()
	data, err := os.ReadFile(p.log)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// Client returns an HTTP client that reaches the proxy at backendHost, on 127.0.0.1
// as the browser does, from the local address from (any if empty), trusting its
// certificate. It follows no redirect and leaves the encoding as it comes.
func (p *Proxy) Client(tb testing.TB, from string) *http.Client {
	dialer := &net.Dialer{}
	if from != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		TLSClientConfig:    &tls.Config{RootCAs: proxyTLS.pool},
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// proxyResponse is what the browser got from backendHost for one URL.
type proxyResponse struct {
	status   int64
	protocol string
	headers  network.Headers
}

// TestProxy runs the banner end to end through deploy/Caddyfile as production runs
// it: TLS and HTTP/2 from the browser to Caddy, consentd's precompressed banner passed
// through as it is, X-Forwarded-For from Caddy alone, and neither the DPO API, nor
// /metrics, nor the demo pages served. Nor do consent ids reach Caddy's log.
func TestProxy(t *testing.T) {
	MustBrowser(t)
	t.Parallel()
	const site = "mixvoip.com"
	proxy := NewProxy(t)
	env := MustEnvBehindProxy(t, site, proxy.URL(""))
	proxy.MustStart(t, "127.0.0.1:"+env.Port)
	client := proxy.Client(t, "")

	t.Run("banner", func(t *testing.T) {
		p := MustOpenPage(t, env, site)
		var mu sync.Mutex
		responses := map[string]proxyResponse{} // by path
		err := chromedp.Listen(p.ctx, func(ev any) {
			if ev, ok := ev.(*network.EventResponseReceived); ok && strings.HasPrefix(ev.Response.URL, proxy.URL("/")) {
				mu.Lock()
				responses[strings.TrimPrefix(ev.Response.URL, proxy.URL(""))] = proxyResponse{ev.Response.Status, ev.Response.Protocol, ev.Response.Headers}
				mu.Unlock()
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		mark := env.Requests.Mark()
		p.MustNavigate()
		p.MustBannerVisible()
		p.MustClick(`"Accept all"`, `layer1('accept-all')`)
		enabled := EnabledPartners(env.Config, site)
		p.MustPartnerHosts(mark, TagHosts(env.Config, site, enabled))
		s := p.MustCookie(nil)
		recs := env.MustRecords(t, s.ID, 1)
		MustRecord(t, p, recs[0], consent.ActionAcceptAll, consent.SurfaceBanner, s.Fingerprint, map[string]bool{"advertising": true}, allPartners(enabled, true))

		var script, decision proxyResponse
		wait.MustUntil(t, "the browser has the answers to the script and the decision", func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			script, decision = responses["/v1/banner/"+site+".js"], responses["/v1/consents"]
			return script.status != 0 && decision.status != 0, strings.Join(slices.Sorted(maps.Keys(responses)), ", ")
		})
		direct := mustDirectBanner(t, env, site, "br", p.Site.Languages[0])
		encoding, etag := headerValue(script.headers, "Content-Encoding"), headerValue(script.headers, "ETag")
		if script.status != 200 || script.protocol != "h2" || encoding != "br" || etag != direct.Header.Get("ETag") {
			t.Errorf("the banner through Caddy: %d over %s, encoding %q, ETag %s; want 200 over h2, br, consentd's ETag %s", script.status, script.protocol, encoding, etag, direct.Header.Get("ETag"))
		}
		if decision.status != 201 || decision.protocol != "h2" {
			t.Errorf("the decision through Caddy: %d over %s, want 201 over h2", decision.status, decision.protocol)
		}
	})

	t.Run("precompressed", func(t *testing.T) {
		// "": no Accept-Encoding at all, which Caddy's own compression would fill in with
		// gzip, and answer with the plain script under gzip's ETag.
		for _, encoding := range []string{"br", "gzip", ""} {
			direct := mustDirectBanner(t, env, site, encoding, "en")
			want, _ := io.ReadAll(direct.Body)
			req := mustBannerRequest(t, proxy.URL("/v1/banner/"+site+".js"), encoding, "en")
			resp := mustDo(t, client, req)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Proto != "HTTP/2.0" || resp.Header.Get("Content-Encoding") != direct.Header.Get("Content-Encoding") ||
				resp.Header.Get("ETag") != direct.Header.Get("ETag") || !bytes.Equal(body, want) {
				t.Errorf("Accept-Encoding %q through Caddy: %s, Content-Encoding %q, ETag %s, %d bytes; want HTTP/2.0 and consentd's %q, %s, %d bytes as they are",
					encoding, resp.Proto, resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"), len(body), direct.Header.Get("Content-Encoding"), direct.Header.Get("ETag"), len(want))
			}
			if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
				t.Errorf("Strict-Transport-Security: %q", hsts)
			}
		}
	})

	t.Run("not public", func(t *testing.T) {
		tests := []struct {
			path           string
			servedDirectly bool // by consentd behind Caddy: then the 404 is Caddy's
		}{
			{"/metrics", true},
			{"/v1/dpo/verify", true},
			{"/v1/dpo/audit", true},
			{"/dpo/", true},
			{"/dpo/signin", true},
			{"/demo/" + site, true},
			{"/metrics/", false},
			{"/v1/dpo", false},
			{"/dpo", false},
			{"/DPO/signin", false},
			{"//v1/dpo/verify", false},
			{"/v1//dpo/verify", false},
			{"/v1/x/../dpo/verify", false},
			{"/v1/dpo%2fverify", false},
			{"/V1/DPO/verify", false},
			{"/%6detrics", false},
		}
		for _, tt := range tests {
			req, _ := http.NewRequest(http.MethodGet, proxy.URL(tt.path), nil)
			req.Header.Set("Authorization", "Bearer cdt_not-a-token")
			resp := mustDo(t, client, req)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s through Caddy: %d, want 404", tt.path, resp.StatusCode)
			}
			if !tt.servedDirectly {
				continue
			}
			req, _ = http.NewRequest(http.MethodGet, "http://127.0.0.1:"+env.Port+tt.path, nil)
			req.Host = backendHost
			resp = mustDo(t, http.DefaultClient, req)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				t.Errorf("GET %s from consentd directly: 404, so the test cannot tell Caddy's", tt.path)
			}
		}
	})

	t.Run("forwarded for", func(t *testing.T) {
		// From 127.1.2.3, which loopback also is: its prefix is none that Caddy (from
		// 127.0.0.1) or the forged address has.
		from := proxy.Client(t, "127.1.2.3")
		cfg := env.Config.Sites[site]
		id := uuid.NewString()
		body, _ := json.Marshal(map[string]any{
			"site": site, "consent_id": id, "action": consent.ActionRejectAll, "fingerprint": banner.Fingerprint(cfg),
			"choices": cfg.AllChoices(false), "language": cfg.Languages[0], "url": env.PageURL(site), "surface": "banner",
		})
		req, _ := http.NewRequest(http.MethodPost, proxy.URL("/v1/consents"), bytes.NewReader(body))
		req.Header.Set("Origin", env.Origin(site))
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		resp := mustDo(t, from, req)
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /v1/consents through Caddy: %s %s", resp.Status, answer)
		}
		if got := env.MustRecords(t, id, 1)[0].IPPrefix; got != "127.1.2.0/24" {
			t.Errorf("recorded from %s, want the client's 127.1.2.0/24 (not Caddy's 127.0.0.0/24 nor the forged 203.0.113.0/24)", got)
		}
	})

	t.Run("redirect", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+proxy.HTTPPort+"/v1/banner/"+site+".js", nil)
		req.Host = backendHost
		resp := mustDo(t, client, req)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(loc, "https://"+backendHost) {
			t.Errorf("plain HTTP: %s to %q, want 308 to https://%s", resp.Status, loc, backendHost)
		}
	})

	t.Run("log", func(t *testing.T) {
		// A second Caddy in front of nothing: it answers 502, and writes the error
		// log, with the request.
		down := NewProxy(t)
		down.MustStart(t, "127.0.0.1:"+deploytest.MustFreePort(t))
		id := uuid.NewString()
		for _, p := range []*Proxy{proxy, down} {
			resp := mustDo(t, p.Client(t, ""), mustRequest(t, p.URL("/v1/consents/"+id)))
			resp.Body.Close()
		}
		wait.MustUntil(t, "Caddy logs the 502", func() (bool, string) {
			log := down.Log(t)
			return strings.Contains(log, `"uri":"/v1/consents/{consent_id}"`), log
		})
		for _, p := range []*Proxy{proxy, down} {
			if log := p.Log(t); strings.Contains(log, id) {
				t.Errorf("Caddy's log names the consent id %s:\n%s", id, log)
			}
		}
	})
}

// headerValue returns the value of the header name in h, whose names are in lower
// case over HTTP/2 and as the server wrote them over HTTP/1.1.
func headerValue(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// mustDirectBanner returns consentd's own answer, not through the proxy, to the
// banner script for encoding and lang.
func mustDirectBanner(tb testing.TB, env *Env, site, encoding, lang string) *http.Response {
	tb.Helper()
	req := mustBannerRequest(tb, "http://127.0.0.1:"+env.Port+"/v1/banner/"+site+".js", encoding, lang)
	req.Host = backendHost
	tr := &http.Transport{DisableCompression: true}
	resp := mustDo(tb, &http.Client{Transport: tr}, req)
	tb.Cleanup(func() { resp.Body.Close(); tr.CloseIdleConnections() })
	return resp
}

// mustBannerRequest returns a GET of the banner script at url that accepts encoding
// (none if empty) and lang.
func mustBannerRequest(tb testing.TB, url, encoding, lang string) *http.Request {
	tb.Helper()
	req := mustRequest(tb, url)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	req.Header.Set("Accept-Language", lang)
	return req
}

func mustRequest(tb testing.TB, url string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

func mustDo(tb testing.TB, c *http.Client, req *http.Request) *http.Response {
	tb.Helper()
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}
