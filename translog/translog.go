// Package translog holds consentd's transparency log in the formats of C2SP: the
// signed checkpoint (tlog-checkpoint) and the hash tile paths (tlog-tiles). The tree
// arithmetic, hashing and proofs are golang.org/x/mod/sumdb/tlog's, the signed notes
// golang.org/x/mod/sumdb/note's, the checkpoint text github.com/transparency-dev/formats'.
// Only what differs from them is here: x/mod writes the Go checksum database's tile
// paths (tile/8/L/N) and tree heads, where C2SP has tile/L/N and an origin line.
//
// The log imports no store: a store hands it the storage of one transaction, so that
// records, hashes and checkpoint commit together.
package translog
