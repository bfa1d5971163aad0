package translog

import (
	"errors"
	"strconv"
	"time"
)

// AppendRecordJSON appends to dst the record whose leaf, at index, is l and whose
// parts are decision and identifying (empty once erased), as one JSON object and a
// newline: the members consent.Record encodes, but its receipt. The parts, JSON
// objects as stored, are spliced in without being decoded: what an export of many
// records spends its time on otherwise.
func AppendRecordJSON(dst []byte, l *Leaf, index int64, decision, identifying []byte) ([]byte, error) {
	if !isObject(decision) {
		return dst, errors.New("its decision part is not a JSON object")
	}
	dst = append(dst, `{"record_id":"`...)
	dst = append(dst, l.RecordID.String()...)
	dst = append(dst, `","site":`...)
	dst = strconv.AppendQuote(dst, l.Site)
	dst = append(dst, `,"recorded_at":"`...)
	dst = l.RecordedAt.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","log_index":`...)
	dst = strconv.AppendInt(dst, index, 10)
	dst = append(append(dst, ','), decision[1:]...)
	if len(identifying) > SaltSize && isObject(identifying[SaltSize:]) {
		dst = append(append(dst[:len(dst)-1], ','), identifying[SaltSize+1:]...)
	} else {
		dst = append(dst[:len(dst)-1], `,"ip_prefix":"","url":"","user_agent":""}`...)
	}
	return append(dst, '\n'), nil
}

// isObject reports whether b looks like one JSON object: AppendRecordJSON splices
// the parts of a record at their braces.
func isObject(b []byte) bool {
	return len(b) >= 2 && b[0] == '{' && b[len(b)-1] == '}'
}
