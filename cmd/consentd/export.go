package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/mixvoip/consentd/internal/durable"
)

// export streams the records the filters select to stdout or to --out as they
// arrive: memory stays flat however many there are.
func export(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	query := addFilterFlags(fs, "site", "from", "to", "action", "fingerprint", "language")
	format := fs.String("format", "ndjson", "csv or ndjson")
	out := fs.String("out", "", "write to this file (mode 0600) instead of stdout; it appears only once the export is complete")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	q := query()
	q.Set("format", *format)
	resp, err := c.Get(ctx, "v1/dpo/export", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var m *meter
	// Progress only for a person watching: in a log file or a pipe it is noise, and
	// records printed to the terminal show it themselves, which a meter would garble.
	if isTerminal(stderr) && (*out != "" || !isTerminal(stdout)) {
		m = newMeter(stderr, resp.ContentLength)
	}
	if *out == "" {
		return copyExport(stdout, resp.Body, *format == "csv", m)
	}
	return writeWhole(*out, func(w io.Writer) error {
		return copyExport(w, resp.Body, *format == "csv", m)
	})
}

// writeWhole writes the file at path with write, through a temporary file renamed at
// the end: a file at path is always whole, never the start of a copy that failed.
// Mode 0600, as records hold personal data (IP prefixes, user agents).
func writeWhole(path string, write func(w io.Writer) error) error {
	return writeChecked(context.Background(), path, write, nil)
}

// unverifiedError is a file written whole that failed its check, kept at path for
// analysis.
type unverifiedError struct {
	path string
	err  error
}

func (e *unverifiedError) Error() string { return e.err.Error() + " (kept as " + e.path + ")" }
func (e *unverifiedError) Unwrap() error { return e.err }

// writeChecked is writeWhole that runs check on the whole temporary file before it
// takes path's name, so that a file at path has always passed its check, even after
// a crash. A file that fails its check goes to path+unverifiedSuffix, an
// *unverifiedError, unless ctx ended first: a check cut short proves nothing.
func writeChecked(ctx context.Context, path string, write func(w io.Writer) error, check func(tmp string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(f.Name()); err != nil {
			if ctx.Err() != nil {
				return err
			}
			kept := path + unverifiedSuffix
			if renameErr := os.Rename(f.Name(), kept); renameErr != nil {
				return errors.Join(err, renameErr)
			}
			return &unverifiedError{path: kept, err: err}
		}
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	// The new name is durable before anything relies on it (a prune of older copies).
	return durable.SyncDir(dir)
}

// copyExport copies an export from body to dst, showing progress on m if it is not
// nil, and fails if the export was cut short.
func copyExport(dst io.Writer, body io.Reader, csv bool, m *meter) error {
	t := &tally{w: dst, csv: csv, meter: m}
	_, err := io.Copy(t, body)
	if m != nil {
		m.show(t, true)
	}
	if err != nil {
		return fmt.Errorf("export cut short after %d records: %w", t.records(), err)
	}
	// consentd has sent its 200 before it reads the records: a failure after that
	// can only end the stream early, mid-record, and is told by the missing newline.
	if t.bytes > 0 && t.last != '\n' {
		return fmt.Errorf("export cut short after %d records: consentd stopped mid-record (its log says why)", t.records())
	}
	return nil
}

// tally writes an export through to w and counts its bytes and records.
type tally struct {
	w      io.Writer
	csv    bool // a CSV export starts with a header, and a quoted field may hold a newline
	quoted bool // inside a quoted CSV field
	bytes  int64
	lines  int64 // newlines that end a record (or the CSV header)
	last   byte
	meter  *meter // nil when nobody watches
}

func (t *tally) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	p = p[:n]
	if !t.csv {
		// JSON escapes newlines within strings: every newline ends a record.
		t.lines += int64(bytes.Count(p, []byte{'\n'}))
	} else {
		// A quote within a quoted field is doubled: it toggles t.quoted twice and
		// leaves it as it was.
		for _, b := range p {
			switch {
			case b == '"':
				t.quoted = !t.quoted
			case b == '\n' && !t.quoted:
				t.lines++
			}
		}
	}
	if n > 0 {
		t.bytes += int64(n)
		t.last = p[n-1]
	}
	if t.meter != nil {
		t.meter.show(t, false)
	}
	return n, err
}

func (t *tally) records() int64 {
	if t.csv && t.lines > 0 {
		return t.lines - 1
	}
	return t.lines
}

// meter shows an export's progress on one line of a terminal.
type meter struct {
	w            io.Writer
	total        int64 // the Content-Length, -1 when consentd streams without one
	start, shown time.Time
}

// meterEvery is how often the progress line is redrawn: often enough to look alive,
// rarely enough to cost nothing at hundreds of thousands of records a second.
const meterEvery = 100 * time.Millisecond

// newMeter returns a meter that draws on w.
func newMeter(w io.Writer, total int64) *meter {
	now := time.Now()
	return &meter{w: w, total: total, start: now, shown: now}
}

// isTerminal reports whether stream (stdin, stdout or stderr) is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// show redraws the progress line if it is due; final draws it once more and ends it.
func (m *meter) show(t *tally, final bool) {
	now := time.Now()
	if !final && now.Sub(m.shown) < meterEvery {
		return
	}
	m.shown = now
	elapsed := now.Sub(m.start)
	line := fmt.Sprintf("%d records, %.1f MB", t.records(), float64(t.bytes)/1e6)
	if m.total > 0 {
		line = fmt.Sprintf("%3.0f%%  %s of %.1f MB", 100*float64(t.bytes)/float64(m.total), line, float64(m.total)/1e6)
	}
	if elapsed > 0 {
		line += fmt.Sprintf(", %.0f records/s", float64(t.records())/elapsed.Seconds())
	}
	// \r and "erase to the end of the line" redraw in place.
	fmt.Fprintf(m.w, "\r%s\x1b[K", line)
	if final {
		fmt.Fprintf(m.w, " in %s\n", elapsed.Round(time.Millisecond))
	}
}
