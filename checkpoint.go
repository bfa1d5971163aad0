package consent

import "time"

// Checkpoint is a signed tree head of a store's transparency log: the log's name
// (origin), how many leaves its tree has, and the tree's root hash, as the C2SP
// tlog-checkpoint note Signed states them. Whoever holds one can check that a later
// tree of the same log extends it (a consistency proof), and that a record is in it
// (an inclusion proof), with the published key alone.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   [32]byte
	Signed []byte // the signed note, byte for byte
	// SignedAt is when the store signed it, by the store's clock: no part of the
	// signed note, which says nothing of time. Zero where the store does not know,
	// such as for a checkpoint read from elsewhere or signed before stores kept it.
	SignedAt time.Time
}
