package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/scan"
	"github.com/mixvoip/consentd/scan/browser"
)

// scanFlags are the flags of a scan, shared by `consentd scan` and `serve --scan-every`.
type scanFlags struct {
	pages     int
	limit     time.Duration
	settle    time.Duration
	keep      int
	hostRules string
}

func (f *scanFlags) register(fs *flag.FlagSet, prefix string) {
	fs.IntVar(&f.pages, prefix+"pages", 10, "pages per site besides the start page, found by its links and /sitemap.xml")
	fs.DurationVar(&f.limit, prefix+"time", 15*time.Minute, "time limit of the whole scan; what is left out is said in the report")
	fs.DurationVar(&f.settle, prefix+"settle", 1500*time.Millisecond, "how long a page must make no request before it is recorded; longer for tags that wait")
	fs.IntVar(&f.keep, prefix+"keep", 30, "reports kept in the directory, the newest; 0 keeps all")
	fs.StringVar(&f.hostRules, prefix+"host-resolver-rules", "", `Chromium's host resolver rules, to scan a server under the sites' names, e.g. "MAP www.example.com 10.0.0.5"`)
}

func (f *scanFlags) check(prefix string) error {
	switch {
	case f.pages < 0 || f.pages > 1000:
		return fmt.Errorf("--%spages %d: from 0 to 1000", prefix, f.pages)
	case f.limit < time.Minute:
		return fmt.Errorf("--%stime %s: at least 1m", prefix, f.limit)
	case f.settle < 100*time.Millisecond || f.settle > time.Minute:
		return fmt.Errorf("--%ssettle %s: from 100ms to 1m", prefix, f.settle)
	case f.keep < 0:
		return fmt.Errorf("--%skeep %d: 0 (all) or more", prefix, f.keep)
	}
	return nil
}

// scanSites scans sites, keeps the reports in dir and returns the report with its
// name there.
func scanSites(ctx context.Context, sites []*consent.Site, f scanFlags, configPath string, dir *scan.Dir, progress func(string, ...any)) (*scan.Report, string, error) {
	r, err := browser.Scan(ctx, sites, browser.Options{
		Pages: f.pages, Time: f.limit, Quiet: f.settle, HostRules: f.hostRules,
		Version: version(), Config: configPath, Progress: progress,
	})
	if err != nil {
		return nil, "", err
	}
	name, err := dir.Save(r)
	if err != nil {
		return nil, "", err
	}
	if f.keep > 0 {
		if err := dir.Prune(f.keep); err != nil {
			return nil, "", err
		}
	}
	return r, name, nil
}

// scanCommand is `consentd scan`: it opens each site's pages in headless Chromium
// before any choice, after "Reject all" and after "Accept all", and reports what
// they set and contacted against sites.yaml; it exits 1 on a violation.
func scanCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd scan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", envOr("CONSENTD_CONFIG", "sites.yaml"), "the sites configuration to scan and measure against ($CONSENTD_CONFIG)")
	var only []string
	fs.Func("site", "a site of --config to scan (repeat it for several); default: every site", func(s string) error {
		only = append(only, s)
		return nil
	})
	out := fs.String("out", ".", "the directory for the reports, scan-TIME.html and scan-TIME.json")
	quiet := fs.Bool("quiet", false, "do not list the pages as they are visited")
	var f scanFlags
	f.register(fs, "")
	if arg, err := parseArgs(fs, args); err != nil {
		return err
	} else if arg != "" {
		return fmt.Errorf("consentd scan: unexpected argument %q (a site is given with --site)", arg)
	}
	if err := f.check(""); err != nil {
		return err
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		return err
	}
	sites, err := chooseSites(cfg, only)
	if err != nil {
		return err
	}
	progress := func(format string, args ...any) { fmt.Fprintf(stderr, "scan: "+format+"\n", args...) }
	if *quiet {
		progress = nil
	}
	dir := scan.NewDir(*out)
	r, name, err := scanSites(ctx, sites, f, *configPath, dir, progress)
	if err != nil {
		return err
	}
	for _, s := range r.Sites {
		v, w := s.Counts()
		fmt.Fprintf(stdout, "%s: %s, %s, %s", s.Site, count(len(s.Pages), "page"), count(v, "violation"), count(w, "warning"))
		if s.Incomplete != "" {
			fmt.Fprintf(stdout, " (incomplete: %s)", s.Incomplete)
		}
		fmt.Fprintln(stdout)
		for _, fd := range s.Findings {
			fmt.Fprintf(stdout, "  %s, %s: %s\n", fd.Severity, fd.State.Title(), fd.Message)
		}
	}
	report := filepath.Join(dir.Path(), name)
	fmt.Fprintf(stdout, "report: %s.html (and .json)\n", report)
	// exit 1, so that a site's CI or the timer notices; an incomplete scan proves
	// nothing of what it left out
	if v, _ := r.Counts(); v > 0 {
		return fmt.Errorf("consentd scan: %s, see %s.html", count(v, "violation"), report)
	}
	for _, s := range r.Sites {
		if s.Incomplete != "" {
			return fmt.Errorf("consentd scan: %s was not scanned completely (%s), see %s.html", s.Site, s.Incomplete, report)
		}
	}
	return nil
}

// chooseSites returns the sites of cfg named in only, or all of them.
func chooseSites(cfg *config.Config, only []string) ([]*consent.Site, error) {
	keys := cfg.SiteKeys()
	if len(only) == 0 {
		only = keys
	}
	var sites []*consent.Site
	for _, k := range only {
		if !slices.Contains(keys, k) {
			return nil, fmt.Errorf("--site %s: not a site of %s (%s)", k, cfg.File, strings.Join(keys, ", "))
		}
		sites = append(sites, cfg.Sites[k])
	}
	return sites, nil
}

// scanRetry is how long serve waits after a scan that failed, at most.
const scanRetry = time.Hour

// scans runs a scan of the sites served at the time every ScanEvery, timed from
// the newest report kept, so that a restart neither skips nor repeats one, until
// ctx is done.
func (m *Main) scans(ctx context.Context, sites func() map[string]*consent.Site) {
	var failed time.Time
	for {
		now := time.Now()
		next := now
		list, err := m.scanReports.List()
		if err != nil {
			m.logger.Error("cannot read the scan reports; trying again later", "dir", m.ScanDir, "err", err)
			next = now.Add(min(scanRetry, m.ScanEvery))
		}
		for _, r := range list {
			if r.Error != "" {
				m.logger.Warn("a scan report cannot be read", "report", r.Name, "err", r.Error)
				continue
			}
			started := r.Started
			if started.After(now) {
				started = now // a report dated ahead (a clock set back) counts as taken now
			}
			next = started.Add(m.ScanEvery)
			break
		}
		if retry := failed.Add(min(scanRetry, m.ScanEvery)); !failed.IsZero() && retry.After(next) {
			next = retry
		}
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		served := sites()
		targets := make([]*consent.Site, 0, len(served))
		for _, k := range slices.Sorted(maps.Keys(served)) {
			targets = append(targets, served[k])
		}
		r, name, err := scanSites(ctx, targets, m.Scan, m.ConfigPath, m.scanReports, nil)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			failed = time.Now()
			m.logger.Error("the scan of the sites failed; trying again later", "err", err)
		default:
			failed = time.Time{}
			v, w := r.Counts()
			log := m.logger.Info
			if v > 0 {
				log = m.logger.Warn
			}
			log("scanned the sites", "report", filepath.Join(m.ScanDir, name+".html"), "violations", v, "warnings", w)
		}
		if m.scanned != nil {
			m.scanned(name, err)
		}
	}
}
