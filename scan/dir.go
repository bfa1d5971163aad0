package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// nameLayout names a report by when its scan started, so that names sort by time.
const nameLayout = "scan-20060102T150405Z"

var namePattern = regexp.MustCompile(`^scan-[0-9]{8}T[0-9]{6}Z$`)

// ErrNoReport is returned for a report name that is not in the directory.
var ErrNoReport = errors.New("no such scan report")

// Dir keeps reports in a directory, each as NAME.json and NAME.html.
type Dir struct {
	path string
	mu   sync.Mutex
	// summaries of the reports read so far, by name: a report never changes once
	// written, and the console lists them on every view.
	summaries map[string]Summary
}

// NewDir returns the reports kept in the directory path.
func NewDir(path string) *Dir { return &Dir{path: path, summaries: map[string]Summary{}} }

// Path returns the directory.
func (d *Dir) Path() string { return d.path }

// Summary is what a list of reports shows of one.
type Summary struct {
	Name     string        `json:"name"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Sites    []SiteSummary `json:"sites"`
	Error    string        `json:"error,omitempty"` // why the report could not be read
}

// SiteSummary is what a list of reports shows of one site's scan.
type SiteSummary struct {
	Site       string `json:"site"`
	Violations int    `json:"violations"`
	Warnings   int    `json:"warnings"`
	Incomplete bool   `json:"incomplete"`
}

func summarize(name string, r *Report) Summary {
	s := Summary{Name: name, Started: r.Started, Finished: r.Finished}
	for _, site := range r.Sites {
		v, w := site.Counts()
		s.Sites = append(s.Sites, SiteSummary{Site: site.Site, Violations: v, Warnings: w, Incomplete: site.Incomplete != ""})
	}
	return s
}

// Save writes r as NAME.html and NAME.json, each complete or not at all, and
// returns NAME; the JSON last, as List goes by it.
func (d *Dir) Save(r *Report) (string, error) {
	name := r.Started.UTC().Format(nameLayout)
	if err := os.MkdirAll(d.path, 0o750); err != nil {
		return "", fmt.Errorf("scan: reports: %w", err)
	}
	var page, doc bytes.Buffer
	if err := WriteHTML(&page, r); err != nil {
		return "", err
	}
	if err := WriteJSON(&doc, r); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(d.path, name+".html"), page.Bytes()); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(d.path, name+".json"), doc.Bytes()); err != nil {
		return "", err
	}
	d.mu.Lock()
	d.summaries[name] = summarize(name, r)
	d.mu.Unlock()
	return name, nil
}

// writeFile writes data to path through a temporary file, so that a reader never
// sees half a report.
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("scan: reports: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("scan: reports: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("scan: reports: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("scan: reports: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("scan: reports: %w", err)
	}
	return nil
}

// names returns the names of the reports in the directory, newest first.
func (d *Dir) names() ([]string, error) {
	entries, err := os.ReadDir(d.path)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan: reports: %w", err)
	}
	var names []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".json"); ok && namePattern.MatchString(name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	slices.Reverse(names)
	return names, nil
}

// List returns the summaries of the reports, newest first; one that cannot be read
// has its Error set.
func (d *Dir) List() ([]Summary, error) {
	names, err := d.names()
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(names))
	for _, name := range names {
		d.mu.Lock()
		s, ok := d.summaries[name]
		d.mu.Unlock()
		if !ok {
			r, err := d.Load(name)
			if err != nil {
				// one damaged report must not hide the others
				out = append(out, Summary{Name: name, Error: err.Error()})
				continue
			}
			s = summarize(name, r)
			d.mu.Lock()
			d.summaries[name] = s
			d.mu.Unlock()
		}
		out = append(out, s)
	}
	return out, nil
}

// Load returns the report called name.
func (d *Dir) Load(name string) (*Report, error) {
	if !namePattern.MatchString(name) {
		return nil, ErrNoReport
	}
	path := filepath.Join(d.path, name+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, ErrNoReport
	}
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("scan: %s is not a scan report: %w", path, err)
	}
	return &r, nil
}

// Prune removes all but the newest keep reports.
func (d *Dir) Prune(keep int) error {
	names, err := d.names()
	if err != nil || len(names) <= keep {
		return err
	}
	for _, name := range names[keep:] {
		for _, ext := range []string{".json", ".html"} {
			if err := os.Remove(filepath.Join(d.path, name+ext)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
				return fmt.Errorf("scan: reports: %w", err)
			}
		}
		d.mu.Lock()
		delete(d.summaries, name)
		d.mu.Unlock()
	}
	return nil
}
