package consent

import "time"

// AuditEntry is one call to the DPO API: who looked at what, when, and with which
// result. The audit log is itself kept as a record of access to the proofs.
type AuditEntry struct {
	ID     string    `json:"id"` // UUIDv7, time-ordered
	At     time.Time `json:"at"`
	Token  string    `json:"token"` // the token's name; "" when none was accepted
	Method string    `json:"method"`
	Path   string    `json:"path"`   // with the query
	Status int       `json:"status"` // 0 while a call that changes something is under way
}
