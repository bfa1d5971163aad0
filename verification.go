package consent

// Verification is the outcome of checking a store's hash chain: how far it holds,
// and where it breaks first.
type Verification struct {
	OK          bool   `json:"ok"`
	Records     int    `json:"records"`             // records whose links were checked
	Checkpoints int    `json:"checkpoints"`         // signed checkpoints that agree with the chain
	BrokenAt    uint64 `json:"broken_at,omitempty"` // place in the chain of the first broken link
	RecordID    string `json:"record_id,omitempty"` // the record there, if known
	Problem     string `json:"problem,omitempty"`   // what is wrong, in words
}
