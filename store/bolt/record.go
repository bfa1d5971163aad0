package bolt

import (
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/translog"
)

// A record is stored in two places. Its leaf, in bucketLog (leafKey), names it and holds the digests of its parts (see translog.Leaf); the leaf
// stays forever, as the record's tombstone once a purge removed the record. The
// record itself, in bucketRecords under its id, holds the parts:
//
//	[0]          format (5)
//	[1:17]       consent id, to rebuild the consent index without decoding JSON
//	[17:25]      index of its leaf in the log (uint64, big-endian), set by the writer
//	[25:29]      length n of the decision part (uint32, big-endian)
//	[29:29+n]    the decision part, byte for byte as its leaf's digest covers it
//	then         the identifying part: salt and JSON, empty once erased
//
// Verification hashes the parts as stored; nothing is encoded again.
const (
	recordFormat   = 5
	offsetIndex    = 17
	offsetDecision = 29
)

// encodeRecord returns the stored value of a record of consentID with the parts
// decision and identifying; the writer sets its index.
func encodeRecord(consentID uuid.UUID, decision, identifying []byte) []byte {
	v := make([]byte, offsetDecision, offsetDecision+len(decision)+len(identifying))
	v[0] = recordFormat
	copy(v[1:offsetIndex], consentID[:])
	binary.BigEndian.PutUint32(v[25:offsetDecision], uint32(len(decision)))
	v = append(v, decision...)
	return append(v, identifying...)
}

// storedRecord is a stored value taken apart, without copying.
type storedRecord struct {
	consentID   uuid.UUID
	index       int64
	decision    []byte
	identifying []byte
}

// splitRecord takes a stored value apart.
func splitRecord(v []byte) (storedRecord, error) {
	if len(v) > 0 && v[0] < recordFormat {
		return storedRecord{}, fmt.Errorf("record format %d, written by a consentd before the transparency log: this one reads format %d", v[0], recordFormat)
	}
	if len(v) < offsetDecision || v[0] != recordFormat {
		return storedRecord{}, fmt.Errorf("unknown record format")
	}
	end := offsetDecision + int(binary.BigEndian.Uint32(v[25:offsetDecision]))
	if end > len(v) || end < offsetDecision {
		return storedRecord{}, fmt.Errorf("record shorter than its header says")
	}
	return storedRecord{
		consentID:   uuid.UUID(v[1:offsetIndex]),
		index:       int64(binary.BigEndian.Uint64(v[offsetIndex:25])),
		decision:    v[offsetDecision:end],
		identifying: v[end:],
	}, nil
}

// decode returns the record of leaf whose parts sr holds.
func (sr storedRecord) decode(leaf *translog.Leaf) (*consent.Record, error) {
	r := &consent.Record{ID: leaf.RecordID.String(), Site: leaf.Site, RecordedAt: leaf.RecordedAt, LogIndex: sr.index}
	if err := translog.ParseDecisionPart(sr.decision, r); err != nil {
		return nil, err
	}
	if len(sr.identifying) > 0 {
		if err := translog.ParseIdentifyingPart(sr.identifying, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}
