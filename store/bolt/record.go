package bolt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// A record is stored in two parts, so that an erasure can remove what identifies a
// visitor while the decision, its time and its place in the hash chain stay provable:
//
//	[0]      format (2)
//	[1:17]   consent id, to rebuild the consent index without decoding JSON
//	[17:25]  place in the chain (uint64, big-endian), set by the writer
//	[25:57]  SHA-256 of the identifying part, kept after an erasure
//	[57:61]  length of the decision part (uint32, big-endian)
//	[61:]    the decision part: the record as JSON without IP prefix, user agent and
//	         URL; then the identifying part: those three as JSON (empty once erased)
const (
	formatV2       = 2
	offsetSeq      = 17
	offsetIdentSum = 25
	offsetCoreLen  = 57
	headerSize     = 61
)

// identifying is the part of a record that an erasure removes.
type identifying struct {
	IPPrefix  string `json:"ip_prefix"`
	UserAgent string `json:"user_agent"`
	URL       string `json:"url"`
}

func encodeRecord(r *consent.Record, consentID uuid.UUID) ([]byte, error) {
	core := *r
	core.IPPrefix, core.UserAgent, core.URL = "", "", ""
	coreJSON, err := json.Marshal(&core)
	if err != nil {
		return nil, err
	}
	identJSON, err := json.Marshal(identifying{r.IPPrefix, r.UserAgent, r.URL})
	if err != nil {
		return nil, err
	}
	v := make([]byte, headerSize, headerSize+len(coreJSON)+len(identJSON))
	v[0] = formatV2
	copy(v[1:offsetSeq], consentID[:])
	sum := sha256.Sum256(identJSON)
	copy(v[offsetIdentSum:offsetCoreLen], sum[:])
	binary.BigEndian.PutUint32(v[offsetCoreLen:headerSize], uint32(len(coreJSON)))
	v = append(v, coreJSON...)
	return append(v, identJSON...), nil
}

// storedRecord is a stored value taken apart, without copying.
type storedRecord struct {
	consentID uuid.UUID
	seq       uint64
	identSum  []byte
	core      []byte
	ident     []byte
}

func splitRecord(v []byte) (storedRecord, error) {
	if len(v) < headerSize || v[0] != formatV2 {
		return storedRecord{}, fmt.Errorf("unknown record format")
	}
	n := int(binary.BigEndian.Uint32(v[offsetCoreLen:headerSize]))
	if headerSize+n > len(v) {
		return storedRecord{}, fmt.Errorf("record shorter than its header says")
	}
	return storedRecord{
		consentID: uuid.UUID(v[1:offsetSeq]),
		seq:       binary.BigEndian.Uint64(v[offsetSeq:offsetIdentSum]),
		identSum:  v[offsetIdentSum:offsetCoreLen],
		core:      v[headerSize : headerSize+n],
		ident:     v[headerSize+n:],
	}, nil
}

func (sr storedRecord) decode() (*consent.Record, error) {
	r := new(consent.Record)
	if err := json.Unmarshal(sr.core, r); err != nil {
		return nil, err
	}
	if len(sr.ident) > 0 {
		var id identifying
		if err := json.Unmarshal(sr.ident, &id); err != nil {
			return nil, err
		}
		r.IPPrefix, r.UserAgent, r.URL = id.IPPrefix, id.UserAgent, id.URL
	}
	return r, nil
}

// link returns the chain link of a record: it covers the previous link, the record's
// place and id, its decision part byte for byte and the digest of its identifying
// part. Changing, removing or adding a record changes every link after it.
func link(prev []byte, seq uint64, recordID []byte, sr storedRecord) [32]byte {
	h := sha256.New()
	h.Write(prev)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	h.Write(recordID)
	core := sha256.Sum256(sr.core)
	h.Write(core[:])
	h.Write(sr.identSum)
	var out [32]byte
	h.Sum(out[:0])
	return out
}
