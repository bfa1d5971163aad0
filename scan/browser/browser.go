// Package browser scans sites with headless Chromium: it opens each site's pages in
// fresh browser profiles, chooses in consentd's banner as a visitor would, and
// records the cookies, storage keys and requests to other hosts it meets, for
// package scan to judge.
package browser

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/internal/chromium"
	"github.com/mixvoip/consentd/scan"
)

// Options bound and describe a scan. Zero values take the defaults.
type Options struct {
	Pages int           // pages per site besides the start page; default 10
	Time  time.Duration // the whole scan; default 15 minutes
	// Quiet is how long a page must make no request before it is recorded;
	// default 1.5 s. Trackers that wait longer than that are not seen.
	Quiet time.Duration
	// PageTimeout bounds loading one page, and settling after it; default 30 s.
	PageTimeout time.Duration
	// HostRules are Chromium's --host-resolver-rules, to scan a staging server
	// under the sites' names ("MAP www.example.com 10.0.0.5"); "" for none.
	HostRules string
	Version   string // consentd's, for the report
	Config    string // the sites.yaml the sites come from, for the report
	// Progress, if not nil, is told of each page visited.
	Progress func(format string, args ...any)
}

const (
	defaultPages       = 10
	defaultTime        = 15 * time.Minute
	defaultQuiet       = 1500 * time.Millisecond
	defaultPageTimeout = 30 * time.Second
	maxLinksPerPage    = 2000
	maxSitemapBytes    = 5 << 20
	// parallelSites is how many sites are scanned at once, each a page at a time.
	parallelSites = 4
)

func (o *Options) defaults() {
	if o.Pages <= 0 {
		o.Pages = defaultPages
	}
	if o.Time <= 0 {
		o.Time = defaultTime
	}
	if o.Quiet <= 0 {
		o.Quiet = defaultQuiet
	}
	if o.PageTimeout <= 0 {
		o.PageTimeout = defaultPageTimeout
	}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
}

// Scan visits each site's pages in the three states and returns what it found. It
// stops at the time limit and says so in the report; it fails only if the browser
// cannot start or ctx is cancelled.
func Scan(ctx context.Context, sites []*consent.Site, opts Options) (*scan.Report, error) {
	opts.defaults()
	started := time.Now()
	flags := []chromedp.ExecAllocatorOption{
		// Out-of-process frames are targets of their own, whose requests the tab
		// would not see; in one process, every frame's requests are the page's.
		chromedp.Flag("disable-site-isolation-trials", true),
		chromedp.Flag("disable-features", "IsolateOrigins,site-per-process"),
	}
	if opts.HostRules != "" {
		flags = append(flags, chromedp.Flag("host-resolver-rules", opts.HostRules))
	}
	browserCtx, stop, err := chromium.Start(flags...)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	defer stop()
	v, err := chromedp.CallBrowser(browserCtx, cdpbrowser.GetVersion, cdp.Empty{})
	if err != nil {
		return nil, fmt.Errorf("scan: the browser: %w", err)
	}
	r := &scan.Report{
		Started: started.UTC(), Version: opts.Version, Browser: v.Product, Config: opts.Config,
		Limits: scan.Limits{Pages: opts.Pages, Time: scan.Seconds(opts.Time), Quiet: scan.Seconds(opts.Quiet)},
	}
	s := &scanner{opts: opts, browser: browserCtx, userAgent: strings.ReplaceAll(v.UserAgent, "HeadlessChrome", "Chrome"), deadline: started.Add(opts.Time)}
	r.Sites = make([]*scan.Site, len(sites))
	var wg sync.WaitGroup
	slots := make(chan struct{}, parallelSites)
	for i, site := range sites {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			r.Sites[i] = s.site(ctx, site)
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	r.Finished = time.Now().UTC()
	return r, nil
}

type scanner struct {
	opts      Options
	browser   context.Context
	userAgent string // the browser's, without "Headless": sites may treat a headless browser differently
	deadline  time.Time
}

func (s *scanner) timeLeft() bool { return time.Now().Before(s.deadline) }

// site visits the site's start page and the pages it links to before any choice,
// then each of those pages after each choice.
func (s *scanner) site(ctx context.Context, site *consent.Site) *scan.Site {
	pages := []string{strings.TrimSuffix(site.Origins[0], "/") + "/"}
	var visits []scan.Visit
	incomplete := ""
	for i := 0; i < len(pages); i++ {
		if !s.timeLeft() || ctx.Err() != nil {
			pages = pages[:i]
			incomplete = fmt.Sprintf("the time limit of %s ran out while following the site's links", s.opts.Time)
			break
		}
		v, links := s.visit(ctx, site, pages[i], scan.NoChoice, i == 0)
		visits = append(visits, v)
		for _, raw := range links {
			if len(pages) > s.opts.Pages {
				break
			}
			if l, ok := sameSite(site, raw); ok && !slices.Contains(pages, l) {
				pages = append(pages, l)
			}
		}
	}
	for _, state := range []scan.State{scan.Rejected, scan.Accepted} {
		for _, p := range pages {
			if !s.timeLeft() || ctx.Err() != nil {
				incomplete = fmt.Sprintf("the time limit of %s ran out: not every page was visited after both choices", s.opts.Time)
				break
			}
			v, _ := s.visit(ctx, site, p, state, false)
			visits = append(visits, v)
		}
	}
	out := scan.Analyze(site, pages, visits)
	out.Incomplete = incomplete
	return out
}

// sameSite returns link as a page of site to visit: an http(s) URL on one of its
// origins, without its fragment, and not a download. ok is false for any other.
func sameSite(site *consent.Site, link string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !site.HasOrigin(u.Scheme+"://"+u.Host) {
		return "", false
	}
	switch strings.ToLower(path.Ext(u.Path)) {
	case ".pdf", ".zip", ".gz", ".tar", ".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".ico",
		".mp3", ".mp4", ".webm", ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".exe", ".dmg", ".xml", ".json", ".txt":
		return "", false
	}
	u.Fragment, u.RawFragment = "", ""
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String(), true
}

// sitemapPages returns the pages a sitemap (https://www.sitemaps.org) lists; a
// sitemap index, which lists other sitemaps, gives none.
func sitemapPages(text string) []string {
	var doc struct {
		URLs []struct {
			Loc string `xml:"loc"`
		} `xml:"url"`
	}
	if xml.Unmarshal([]byte(text), &doc) != nil {
		return nil
	}
	var out []string
	for _, u := range doc.URLs {
		out = append(out, strings.TrimSpace(u.Loc))
	}
	return out
}
