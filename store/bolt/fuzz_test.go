package bolt

import (
	"testing"

	"github.com/google/uuid"
)

// FuzzStoredRecord feeds the record decoder what someone with access to the disk could
// write: it must refuse or take apart any bytes, never panic, and a record it takes
// apart must give back its parts within the value.
func FuzzStoredRecord(f *testing.F) {
	v := encodeRecord(uuid.New(), []byte(`{"action":"accept_all"}`), []byte("0123456789abcdef{}"))
	f.Add(v)
	f.Add(v[:offsetDecision])
	f.Add([]byte{recordFormat})
	f.Fuzz(func(t *testing.T, b []byte) {
		sr, err := splitRecord(b)
		if err != nil {
			return
		}
		if offsetDecision+len(sr.decision)+len(sr.identifying) != len(b) {
			t.Fatalf("parts out of the value: decision %d, identifying %d of %d bytes", len(sr.decision), len(sr.identifying), len(b))
		}
	})
}
