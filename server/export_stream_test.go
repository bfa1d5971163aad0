package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/store/storetest"
)

// slowStore is the real store reading each page of an export slowly, as from a
// large file on a busy disk.
type slowStore struct {
	consent.Store
	delay time.Duration
}

func (s slowStore) AppendExport(ctx context.Context, f consent.Filter, after string, limit int, format consent.ExportFormat, dst []byte) ([]byte, int, string, error) {
	// Not a wait: the slowness is the condition under test (an export that
	// outlives the server's write timeout).
	time.Sleep(s.delay)
	return s.Store.AppendExport(ctx, f, after, limit, format, dst)
}

// failingStore is the real store failing every export page after the first, as a
// disk that fails while an export runs.
type failingStore struct{ consent.Store }

func (s failingStore) AppendExport(ctx context.Context, f consent.Filter, after string, limit int, format consent.ExportFormat, dst []byte) ([]byte, int, string, error) {
	if after != "" {
		return dst, 0, "", errors.New("read error")
	}
	return s.Store.AppendExport(ctx, f, after, limit, format, dst)
}

// exportRecords is how many records MustExportServer stores: three pages.
const exportRecords = 2500

// MustExportServer serves over HTTP, with a write timeout, a server whose store is
// wrap around a bbolt store of exportRecords records, and returns the URL of the
// export and a token for it.
func MustExportServer(tb testing.TB, writeTimeout time.Duration, wrap func(consent.Store) consent.Store) (url, token string) {
	tb.Helper()
	cfg, err := config.Load("../sites.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	db := MustFreshStore(tb)
	for range exportRecords {
		r := storetest.NewRecord(tb, uuid.NewString(), storetest.Now())
		r.Site = testSite
		storetest.MustAppend(tb, db, r)
	}
	f, token, _ := MustServerOn(tb, wrap(db), cfg)
	ts := httptest.NewUnstartedServer(f.srv)
	ts.Config.WriteTimeout = writeTimeout
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.Start()
	tb.Cleanup(ts.Close)
	return ts.URL + "/v1/dpo/export", token
}

// MustGetLines sends a GET with token and counts the lines of the answer's body, and
// the error that reading it ended with.
func MustGetLines(tb testing.TB, url, token string) (status, lines int, err error) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines++
	}
	return resp.StatusCode, lines, sc.Err()
}

// TestExportOutlivesWriteTimeout: an export that takes longer than the HTTP server's
// write timeout still arrives whole, as each page has a deadline of its own.
func TestExportOutlivesWriteTimeout(t *testing.T) {
	url, token := MustExportServer(t, 150*time.Millisecond, func(s consent.Store) consent.Store {
		return slowStore{Store: s, delay: 100 * time.Millisecond}
	})
	if status, lines, err := MustGetLines(t, url, token); status != http.StatusOK || lines != exportRecords || err != nil {
		t.Errorf("export: status %d, %d lines, %v; want 200 and %d lines", status, lines, err, exportRecords)
	}
}

// TestExportCutShort: an export that fails after its first page ends in an error the
// client sees, never in a short answer that looks whole.
func TestExportCutShort(t *testing.T) {
	url, token := MustExportServer(t, time.Minute, func(s consent.Store) consent.Store { return failingStore{s} })
	status, lines, err := MustGetLines(t, url, token)
	if status != http.StatusOK || lines >= exportRecords || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("export: status %d, %d lines, %v; want 200, fewer lines than %d, and an unexpected EOF", status, lines, err, exportRecords)
	}
}
