package consent

// Verification is the outcome of checking a store's hash chain: how far it holds,
// and where it breaks first. When nothing is broken but a statement is signed by a
// key the verifier lacks, it is not OK either: MissingKey names the key, and Problem
// says which statement it signed.
type Verification struct {
	OK          bool   `json:"ok"`
	Records     int    `json:"records"`               // records whose links were checked
	Purged      int    `json:"purged"`                // purged records whose links were checked, each covered by a signed purge
	Checkpoints int    `json:"checkpoints"`           // signed checkpoints in the store that agree with the chain
	Archived    int    `json:"archived,omitempty"`    // archived checkpoints that agree with it; those before its purged start are not counted
	From        uint64 `json:"from,omitempty"`        // the first place checked, when a signed base vouches for those before it
	BrokenAt    uint64 `json:"broken_at,omitempty"`   // place in the chain of the first broken link
	RecordID    string `json:"record_id,omitempty"`   // the record there, if known
	Problem     string `json:"problem,omitempty"`     // what is wrong, in words
	MissingKey  string `json:"missing_key,omitempty"` // the id of a key that signed a statement, and that the verifier lacks
}
