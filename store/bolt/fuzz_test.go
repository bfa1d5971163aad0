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
	v, err := encodeRecord(r, uuid.MustParse(r.ConsentID), r.Receipt, [32]byte{1})
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
	f.Add([]byte{recordFormat})

	f.Fuzz(func(t *testing.T, b []byte) {
		if sr, err := splitRecord(b); err == nil {
			if len(sr.reference) < referenceFixed || len(sr.core)+len(sr.ident) > len(b) {
				t.Fatalf("parts out of the value: reference %d, core %d, ident %d of %d bytes", len(sr.reference), len(sr.core), len(sr.ident), len(b))
			}
			_, _, _ = sr.reference.site(), sr.reference.recordedAt(), sr.reference.snapshot()
			_ = link(nil, sr.seq, b[:min(16, len(b))], sr.digests())
		}
		if d, err := splitTombstone(b); err == nil {
			if len(d.core) != 32 || len(d.ident) != 32 || int(d.reference[referenceFixed-1]) != len(d.reference)-(referenceFixed) {
				t.Fatalf("a tombstone taken apart wrongly: %d %d %d", len(d.core), len(d.ident), len(d.reference))
			}
			_, _, _ = d.reference.site(), d.reference.recordedAt(), d.reference.snapshot()
		}
	})
}
