package translog_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/store/storetest"
	"github.com/mixvoip/consentd/translog"
)

// TestAppendRecordCSV: a row holds the record's fields, as encoding/csv reads them
// back, whatever quotes, commas, escapes, line breaks or leading spaces they hold; a
// cell a visitor chose never starts a formula; an erased record has empty cells for
// what identified its visitor; a decision part in another member order than the
// canonical one gives the same row.
func TestAppendRecordCSV(t *testing.T) {
	tests := map[string]func(r *consent.Record){
		"plain": func(*consent.Record) {},
		"quotes, commas and escapes": func(r *consent.Record) {
			r.UserAgent = "Agent \"quoted\", with commas; \x01 \\ ünïcödé\n\r second line"
			r.PolicyVersion = "v1,\"beta\""
		},
		"leading space":          func(r *consent.Record) { r.Language, r.URL = " de", "\thttps://x.example/" },
		"a formula in a cell":    func(r *consent.Record) { r.UserAgent, r.URL = "=HYPERLINK(\"https://evil.example\")", "+1" },
		"erased":                 func(r *consent.Record) { r.IPPrefix, r.URL, r.UserAgent = "", "", "" },
		"no choices":             func(r *consent.Record) { r.Choices = consent.Choices{} },
		"a backslash only (\\.)": func(r *consent.Record) { r.Fingerprint = `\.` },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			r := testRecord()
			edit(r)
			leaf, decision, identifying := parts(t, r)
			if name == "erased" {
				identifying = nil
			}
			row := mustRow(t, leaf, 42, decision, identifying)
			r.LogIndex = 42
			if want := storetest.CSVRow(r); !slices.Equal(row, want) {
				t.Errorf("row\n%q\nwant\n%q", row, want)
			}
			var members map[string]any
			if err := json.Unmarshal(decision, &members); err != nil {
				t.Fatal(err)
			}
			reordered, err := json.Marshal(members) // sorted again, but HTML-escaped
			if err != nil {
				t.Fatal(err)
			}
			if other := mustRow(t, leaf, 42, reordered, identifying); !slices.Equal(other, row) {
				t.Errorf("from a decision part in another shape:\n%q\nwant\n%q", other, row)
			}
		})
	}
}

// FuzzAppendRecordCSV: whatever the strings of a record, its row reads back as its
// fields; whatever bytes stand for a decision part, the row is an error or the row
// that decoding them as JSON gives.
func FuzzAppendRecordCSV(f *testing.F) {
	f.Add("Mozilla/5.0", "https://x.example/", "2026-01", []byte(`{"action":"custom"}`))
	f.Add("=cmd|' /C calc'!A0", " a,b", "\"", []byte(`{"action":"custom","choices":{"categories":{},"partners":{}}}`))
	f.Fuzz(func(t *testing.T, userAgent, url, policy string, decision []byte) {
		r := testRecord()
		r.UserAgent, r.URL, r.PolicyVersion = strings.ToValidUTF8(userAgent, "?"), strings.ToValidUTF8(url, "?"), strings.ToValidUTF8(policy, "?")
		leaf, canonical, identifying := parts(t, r)
		r.LogIndex = 7
		if row := mustRow(t, leaf, 7, canonical, identifying); !slices.Equal(row, storetest.CSVRow(r)) {
			t.Errorf("row\n%q\nwant\n%q", row, storetest.CSVRow(r))
		}
		got, err := translog.AppendRecordCSV(nil, leaf, 7, decision, identifying)
		var decoded consent.Record
		if errDecode := translog.ParseDecisionPart(decision, &decoded); errDecode != nil {
			if err == nil {
				t.Errorf("a row from a decision part that is no JSON: %q", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("a decision part that decodes: %v", err)
		}
		fields, err := csv.NewReader(bytes.NewReader(got)).Read()
		if err != nil || fields[4] != string(decoded.Action) || fields[9] != strconv.FormatBool(decoded.GPC) {
			t.Errorf("row %q of %s: %v", got, decision, err)
		}
	})
}

func BenchmarkAppendRecord(b *testing.B) {
	leaf, decision, identifying := parts(b, testRecord())
	for _, format := range []consent.ExportFormat{consent.ExportNDJSON, consent.ExportCSV} {
		b.Run(string(format), func(b *testing.B) {
			var dst []byte
			for b.Loop() {
				var err error
				if dst, err = translog.AppendRecord(dst[:0], format, leaf, 42, decision, identifying); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// parts returns r's leaf, decision part and identifying part, as a store keeps them.
func parts(tb testing.TB, r *consent.Record) (*translog.Leaf, []byte, []byte) {
	tb.Helper()
	decision, err := translog.DecisionPart(r)
	if err != nil {
		tb.Fatal(err)
	}
	identifying, err := translog.IdentifyingPart(r)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := translog.NewLeaf(r, [32]byte{}, decision, identifying)
	if err != nil {
		tb.Fatal(err)
	}
	return leaf, decision, identifying
}

// mustRow returns the cells of the row AppendRecordCSV writes, as encoding/csv
// reads them, and fails tb unless it is one line.
func mustRow(tb testing.TB, leaf *translog.Leaf, index int64, decision, identifying []byte) []string {
	tb.Helper()
	line, err := translog.AppendRecordCSV([]byte("kept"), leaf, index, decision, identifying)
	if err != nil {
		tb.Fatal(err)
	}
	line, ok := bytes.CutPrefix(line, []byte("kept"))
	if !ok || !bytes.HasSuffix(line, []byte("\n")) {
		tb.Fatalf("AppendRecordCSV did not append one line: %q", line)
	}
	rows, err := csv.NewReader(bytes.NewReader(line)).ReadAll()
	if err != nil || len(rows) != 1 || len(rows[0]) != len(translog.CSVHeader) {
		tb.Fatalf("not one row of %d cells: %q, %v", len(translog.CSVHeader), line, err)
	}
	return rows[0]
}
