package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// testNDJSON: the export's lines hold, page by page, exactly the records Records
// returns for the same filter, each a JSON object that decodes to the record, with
// quotes, commas, control and non-ASCII characters intact, and an erased record
// without what identified its visitor: through the store's own AppendNDJSON if it
// has one, and through the encoding of consent.AppendNDJSON without it.
func testNDJSON[S Erasure](t *testing.T, open func() S) {
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
		MustAppend(t, s, r)
		if i == 3 {
			if _, err := s.Erase(ctx, r.ConsentID, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, records := range map[string]consent.RecordStore{
		"store":             s,
		"without fast path": struct{ consent.RecordStore }{s},
	} {
		t.Run(name, func(t *testing.T) {
			for _, f := range []consent.Filter{{}, {Language: "fr"}, {From: base.Add(5 * time.Minute), To: base.Add(20 * time.Minute)}} {
				mustExportRecords(t, records, f)
			}
		})
	}
}

// mustExportRecords fails t unless the NDJSON export of s holds what Records
// returns for f, paging 4 records at a time.
func mustExportRecords(t *testing.T, s consent.RecordStore, f consent.Filter) {
	t.Helper()
	ctx := context.Background()
	var want, got []*consent.Record
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
	for after := ""; ; {
		buf, n, last, err := consent.AppendNDJSON(ctx, s, f, after, 4, []byte("kept"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(strings.TrimPrefix(string(buf), "kept"), "\n"), "\n")
		if n == 0 {
			break
		}
		if len(lines) != n {
			t.Fatalf("AppendNDJSON said %d records and appended %d lines", n, len(lines))
		}
		for _, line := range lines {
			r := new(consent.Record)
			if err := json.Unmarshal([]byte(line), r); err != nil {
				t.Fatalf("a line is not a JSON record: %v\n%s", err, line)
			}
			got = append(got, r)
		}
		if last != got[len(got)-1].ID {
			t.Errorf("AppendNDJSON's last id is %s, its last line's %s", last, got[len(got)-1].ID)
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
		if got[i].Receipt != nil || got[i].LogIndex != r.LogIndex {
			t.Errorf("record %s: the line has log index %d and receipt %v, want %d and none", r.ID, got[i].LogIndex, got[i].Receipt, r.LogIndex)
		}
		MustEqualRecord(t, got[i], r)
	}
}
