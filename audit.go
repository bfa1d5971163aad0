package consent

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

// AuditEntry is one call to the DPO API: who looked at what, from where, when, and
// with which result. The audit log is itself kept as a record of access to the
// proofs.
//
// Calls refused before a token was accepted are not recorded one by one: anyone can
// make them, so each client's refusals of a minute become one entry with their Count
// and the time of the Last one, and an entry never grows with what a client sends.
type AuditEntry struct {
	ID     string    `json:"id"` // UUIDv7, time-ordered
	At     time.Time `json:"at"`
	Token  string    `json:"token"`            // the token's name; "" when none was accepted
	Client string    `json:"client,omitempty"` // the caller's IP prefix, as TruncateIP gives it
	Method string    `json:"method"`
	// Path is the request's path and query, at most MaxAuditPath bytes, with a
	// consent id replaced by "{consent_id}": a consent id is the visitor's key to
	// their records (GET /v1/consents/{id}), so the log names it by Subject only.
	Path    string    `json:"path"`
	Subject string    `json:"subject,omitempty"` // ConsentDigest of the consent id the call was about
	Status  int       `json:"status"`            // 0 while a call that changes something is under way
	Count   int       `json:"count,omitempty"`   // refused calls this entry stands for, when more than one
	Last    time.Time `json:"last,omitzero"`     // the last of those calls
}

// Outcome says how the call ended: its status, "under way" for a call that changes
// something and has not answered yet, and how many refused calls the entry stands
// for.
func (e *AuditEntry) Outcome() string {
	if e.Status == 0 {
		return "under way"
	}
	s := fmt.Sprintf("%d %s", e.Status, http.StatusText(e.Status))
	if e.Count > 1 {
		s += fmt.Sprintf(" (%d calls, the last at %s)", e.Count, e.Last.UTC().Format(time.RFC3339))
	}
	return s
}

// MaxAuditPath is the most of a request's path and query an audit entry keeps.
const MaxAuditPath = 512

// ConsentDigest names a consent id without revealing it: whoever holds the id can
// find the calls about it in the audit log, whoever reads the log cannot use it to
// read the visitor's records. A consent id is a random UUID, so its digest cannot be
// reversed by trying ids.
func ConsentDigest(consentID string) string {
	sum := sha256.Sum256([]byte(consentID))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// AuditIDBound returns the least id an audit entry made at t or later can have: an
// audit id is a UUIDv7, which starts with its Unix time in milliseconds (48 bits,
// big-endian), so every entry made before t's millisecond sorts before the bound. ok
// is false for t before 1970, before which no entry was made.
func AuditIDBound(t time.Time) (bound [16]byte, ok bool) {
	if t.UnixMilli() <= 0 {
		return bound, false
	}
	binary.BigEndian.PutUint64(bound[:8], uint64(t.UnixMilli())<<16)
	return bound, true
}
