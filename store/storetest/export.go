package storetest

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// testExport: the export's lines hold, page by page, exactly the records Records
// returns for the same filter: as NDJSON, each a JSON object that decodes to the
// record; as CSV, each a row of the record's fields. Quotes, commas, control and
// non-ASCII characters stay intact, a cell a visitor chose never starts a formula,
// and an erased record comes without what identified its visitor.
func testExport[S Erasure](t *testing.T, open func() S) {
	s := MustOpen(t, open)
	ctx := context.Background()
	base := Now().Add(-time.Hour)
	MustPutSnapshot(t, s, NewRecord(t, uuid.NewString(), base))
	for i := range 25 {
		at := base.Add(time.Duration(i) * time.Minute)
		r := NewRecord(t, uuid.NewString(), at)
		r.ID = IDAt(t, at)
		r.Language = []string{"de", "fr"}[i%2]
		r.UserAgent = "Agent \"quoted\", with commas; ünïcödé \u2028 \x01 " + fmt.Sprint(i)
		if i == 5 {
			r.UserAgent, r.URL = "=HYPERLINK(\"https://evil.example\")", "https://shop.example/a,b"
		}
		MustAppend(t, s, r)
		if i == 3 {
			if _, err := s.Erase(ctx, r.ConsentID, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, format := range []consent.ExportFormat{consent.ExportNDJSON, consent.ExportCSV} {
		t.Run(string(format), func(t *testing.T) {
			for _, f := range []consent.Filter{{}, {Language: "fr"}, {From: base.Add(5 * time.Minute), To: base.Add(20 * time.Minute)}} {
				mustExportRecords(t, s, f, format)
			}
		})
	}
}

// mustExportRecords fails t unless the export of s in format holds what Records
// returns for f, paging 4 records at a time.
func mustExportRecords(t *testing.T, s consent.RecordStore, f consent.Filter, format consent.ExportFormat) {
	t.Helper()
	ctx := context.Background()
	var want []*consent.Record
	for after := ""; ; {
		page, err := s.Records(ctx, f, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, page...)
		if len(page) < 4 {
			break
		}
		after = page[len(page)-1].ID
	}
	var got []string // the lines
	for after := ""; ; {
		buf, n, last, err := s.AppendExport(ctx, f, after, 4, format, []byte("kept"))
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		lines := strings.SplitAfter(strings.TrimPrefix(string(buf), "kept"), "\n")
		if lines = lines[:len(lines)-1]; len(lines) != n {
			t.Fatalf("AppendExport said %d records and appended %d lines", n, len(lines))
		}
		got = append(got, lines...)
		if want := want[min(len(got), len(want))-1].ID; last != want {
			t.Errorf("AppendExport's last id is %s, want %s", last, want)
		}
		if n < 4 {
			break
		}
		after = last
	}
	if len(got) != len(want) {
		t.Fatalf("filter %+v: %d lines, want %d records", f, len(got), len(want))
	}
	for i, r := range want {
		switch format {
		case consent.ExportNDJSON:
			line := new(consent.Record)
			if err := json.Unmarshal([]byte(got[i]), line); err != nil {
				t.Fatalf("a line is not a JSON record: %v\n%s", err, got[i])
			}
			if line.Receipt != nil || line.LogIndex != r.LogIndex {
				t.Errorf("record %s: the line has log index %d and receipt %v, want %d and none", r.ID, line.LogIndex, line.Receipt, r.LogIndex)
			}
			MustEqualRecord(t, line, r)
		case consent.ExportCSV:
			row, err := csv.NewReader(strings.NewReader(got[i])).Read()
			if err != nil {
				t.Fatalf("a line is not a CSV row: %v\n%s", err, got[i])
			}
			if want := CSVRow(r); !slices.Equal(row, want) {
				t.Errorf("record %s: the row\n%q\nwant\n%q", r.ID, row, want)
			}
		}
	}
}

// CSVRow returns the cells of r's row in a CSV export, whose columns
// translog.CSVHeader names, as encoding/csv reads them back.
func CSVRow(r *consent.Record) []string {
	choices := func(m map[string]bool) string {
		var cells []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			cells = append(cells, k+"="+strconv.FormatBool(m[k]))
		}
		return strings.Join(cells, ";")
	}
	inert := func(cell string) string {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			cell = "'" + cell
		}
		return strings.ReplaceAll(cell, "\r\n", "\n") // as encoding/csv reads it
	}
	return []string{r.ID, r.ConsentID, r.Site, r.RecordedAt.UTC().Format(time.RFC3339Nano), string(r.Action), string(r.Surface),
		strings.ReplaceAll(r.Language, "\r\n", "\n"), r.Fingerprint, strings.ReplaceAll(r.PolicyVersion, "\r\n", "\n"),
		strconv.FormatBool(r.GPC), choices(r.Choices.Categories), choices(r.Choices.Partners), inert(r.URL), r.IPPrefix,
		inert(r.UserAgent), r.ExpiresAt.UTC().Format(time.RFC3339Nano), strconv.FormatInt(r.LogIndex, 10)}
}
