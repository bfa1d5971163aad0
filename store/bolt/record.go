package bolt

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// A record is stored in parts, so that an erasure can remove what identifies a
// visitor, and a retention purge the whole record, while the chain of what remains
// still verifies:
//
//	[0]         format (4)
//	[1:17]      consent id, to rebuild the consent index without decoding JSON
//	[17:25]     place in the chain (uint64, big-endian), set by the writer
//	[25:57]     SHA-256 of the identifying part, kept after an erasure
//	[57:98+n]   the reference part, kept after a purge: the time recorded (Unix
//	            microseconds, int64, big-endian), the SHA-256 of the stored snapshot
//	            of what the visitor was shown (zeros if none is stored), the length
//	            n of the site, the site
//	[98+n:102+n] length of the decision part (uint32, big-endian)
//	then        the decision part: the record as JSON without IP prefix, user agent and
//	            URL; then the identifying part: a random salt (16 bytes) and those
//	            three as JSON, empty once erased
//
// The chain covers the snapshot's digest, so a snapshot changed or removed after its
// records shows in verification. The salt goes with the identifying part: without
// it, the digest that stays after an erasure or a purge could be matched against
// guesses (a /24 prefix, a common user agent, a page of the site).
const (
	recordFormat    = 4
	offsetSeq       = 17
	offsetIdentSum  = 25
	offsetReference = 57
	offsetSnapshot  = offsetReference + 8
	offsetSite      = offsetSnapshot + 32 + 1 // after the site's length
	saltSize        = 16

	// referenceFixed is the length of the reference part without its site.
	referenceFixed = offsetSite - offsetReference
)

// identifying is the part of a record that an erasure removes.
type identifying struct {
	IPPrefix  string `json:"ip_prefix"`
	UserAgent string `json:"user_agent"`
	URL       string `json:"url"`
}

// storedCore is how a record's decision part is stored: without the identifying
// fields, which go to the identifying part, and with its receipt sealed when it can
// be rebuilt. The outer fields hide the record's own of the same names.
type storedCore struct {
	*consent.Record
	URL       string `json:"url,omitempty"`
	IPPrefix  string `json:"ip_prefix,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	Receipt   any    `json:"receipt,omitempty"` // *seal or *consent.Receipt
}

// encodeRecord returns r as stored, with receipt (see sealed) in place of its
// receipt, and naming the snapshot with the digest snapshot.
func encodeRecord(r *consent.Record, consentID uuid.UUID, receipt any, snapshot [32]byte) ([]byte, error) {
	if len(r.Site) > 255 {
		return nil, consent.Errorf(consent.EInvalid, "site %q is longer than 255 bytes", r.Site)
	}
	coreJSON, err := json.Marshal(&storedCore{Record: r, Receipt: receipt})
	if err != nil {
		return nil, err
	}
	identJSON, err := json.Marshal(identifying{r.IPPrefix, r.UserAgent, r.URL})
	if err != nil {
		return nil, err
	}
	ident := make([]byte, saltSize, saltSize+len(identJSON))
	rand.Read(ident) // never fails, says crypto/rand
	ident = append(ident, identJSON...)
	v := make([]byte, offsetSite, offsetSite+len(r.Site)+4+len(coreJSON)+len(ident))
	v[0] = recordFormat
	copy(v[1:offsetSeq], consentID[:])
	sum := sha256.Sum256(ident)
	copy(v[offsetIdentSum:offsetReference], sum[:])
	binary.BigEndian.PutUint64(v[offsetReference:], uint64(r.RecordedAt.UnixMicro()))
	copy(v[offsetSnapshot:], snapshot[:])
	v[offsetSite-1] = byte(len(r.Site))
	v = append(v, r.Site...)
	v = binary.BigEndian.AppendUint32(v, uint32(len(coreJSON)))
	v = append(v, coreJSON...)
	return append(v, ident...), nil
}

// storedRecord is a stored value taken apart, without copying.
type storedRecord struct {
	consentID uuid.UUID
	seq       uint64
	identSum  []byte
	reference reference
	core      []byte
	ident     []byte
}

// splitRecord takes a stored value apart. It refuses a value whose parts could not
// be what encodeRecord wrote: the export copies them into JSON as they are.
func splitRecord(v []byte) (storedRecord, error) {
	if len(v) > 0 && v[0] < recordFormat {
		return storedRecord{}, fmt.Errorf("record format %d, written by an older consentd: this one reads format %d", v[0], recordFormat)
	}
	if len(v) < offsetSite || v[0] != recordFormat {
		return storedRecord{}, fmt.Errorf("unknown record format")
	}
	coreLenAt := offsetSite + int(v[offsetSite-1])
	if coreLenAt+4 > len(v) {
		return storedRecord{}, fmt.Errorf("record shorter than its header says")
	}
	coreAt := coreLenAt + 4
	n := int(binary.BigEndian.Uint32(v[coreLenAt:coreAt]))
	if coreAt+n > len(v) {
		return storedRecord{}, fmt.Errorf("record shorter than its header says")
	}
	sr := storedRecord{
		consentID: uuid.UUID(v[1:offsetSeq]),
		seq:       binary.BigEndian.Uint64(v[offsetSeq:offsetIdentSum]),
		identSum:  v[offsetIdentSum:offsetReference],
		reference: v[offsetReference:coreLenAt],
		core:      v[coreAt : coreAt+n],
		ident:     v[coreAt+n:],
	}
	if !isObject(sr.core) || len(sr.ident) > 0 && (len(sr.ident) < saltSize || !isObject(sr.identJSON())) {
		return storedRecord{}, fmt.Errorf("record parts are not JSON objects")
	}
	return sr, nil
}

// isObject reports whether b looks like one JSON object: the export splices the
// parts of a record at their braces.
func isObject(b []byte) bool {
	return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}'
}

// identJSON returns the identifying fields as JSON, without the salt.
func (sr storedRecord) identJSON() []byte { return sr.ident[saltSize:] }

// decodeSealed returns the record as stored: a sealed receipt is not rebuilt (see
// Store.decode, which does).
func (sr storedRecord) decodeSealed() (*consent.Record, error) {
	r := new(consent.Record)
	if err := json.Unmarshal(sr.core, r); err != nil {
		return nil, err
	}
	if len(sr.ident) > 0 {
		var id identifying
		if err := json.Unmarshal(sr.identJSON(), &id); err != nil {
			return nil, err
		}
		r.IPPrefix, r.UserAgent, r.URL = id.IPPrefix, id.UserAgent, id.URL
	}
	return r, nil
}

// digests returns what the chain link of the record covers besides its place and id:
// the digests of its decision and identifying parts, and its reference part.
func (sr storedRecord) digests() digests {
	core := sha256.Sum256(sr.core)
	return digests{core: core[:], ident: sr.identSum, reference: sr.reference}
}

// reference is the part of a record a purge keeps: when it was recorded, after which
// snapshot, and where.
type reference []byte

func (r reference) recordedAt() time.Time {
	return time.UnixMicro(int64(binary.BigEndian.Uint64(r))).UTC()
}

func (r reference) snapshot() []byte {
	return r[offsetSnapshot-offsetReference : referenceFixed-1]
}

func (r reference) site() string { return string(r[referenceFixed:]) }

// digests is what a chain link covers of a record. A purged record leaves exactly
// this in its chain entry (see tombstone), so the chain still verifies without it.
type digests struct {
	core, ident []byte // SHA-256 each
	reference   reference
}

// tombstone is the chain entry of a purged record after its id and link.
func (d digests) tombstone() []byte {
	return append(append(append(make([]byte, 0, 64+len(d.reference)), d.core...), d.ident...), d.reference...)
}

func splitTombstone(t []byte) (digests, error) {
	const fixed = 64 + referenceFixed // the digests and the reference part up to its site
	if len(t) < fixed || len(t) != fixed+int(t[fixed-1]) {
		return digests{}, fmt.Errorf("malformed purge tombstone")
	}
	return digests{core: t[:32], ident: t[32:64], reference: t[64:]}, nil
}

// link returns the chain link of a record: it covers the previous link, the record's
// place and id, and its digests. Changing, removing or adding a record changes every
// link after it.
func link(prev []byte, seq uint64, recordID []byte, d digests) [32]byte {
	h := sha256.New()
	h.Write(prev)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	h.Write(recordID)
	h.Write(d.core)
	h.Write(d.ident)
	h.Write(d.reference)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
