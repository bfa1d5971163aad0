package bolt

import (
	"testing"

	"github.com/google/uuid"

	"github.com/mixvoip/consentd/store/storetest"
)

// FuzzStoredBytes feeds verification's decoders what someone with access to the disk
// could write: they must refuse or take apart any bytes, never panic, and a record
// they take apart must give back its parts within the value.
func FuzzStoredBytes(f *testing.F) {
	r := storetest.NewRecord(f, uuid.NewString(), storetest.Now())
	v, err := encodeRecord(r, uuid.MustParse(r.ConsentID), r.Receipt)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v)
	sr, err := splitRecord(v)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sr.digests().tombstone())
	f.Add(v[:offsetSite])
	f.Add([]byte{formatV3})

	f.Fuzz(func(t *testing.T, b []byte) {
		if sr, err := splitRecord(b); err == nil {
			if len(sr.retention) < 9 || len(sr.core)+len(sr.ident) > len(b) {
				t.Fatalf("parts out of the value: retention %d, core %d, ident %d of %d bytes", len(sr.retention), len(sr.core), len(sr.ident), len(b))
			}
			_, _ = sr.retention.site(), sr.retention.recordedAt()
			_ = link(nil, sr.seq, b[:min(16, len(b))], sr.digests())
		}
		if d, err := splitTombstone(b); err == nil {
			if len(d.core) != 32 || len(d.ident) != 32 || int(d.retention[8]) != len(d.retention)-9 {
				t.Fatalf("a tombstone taken apart wrongly: %d %d %d", len(d.core), len(d.ident), len(d.retention))
			}
			_, _ = d.retention.site(), d.retention.recordedAt()
		}
	})
}
