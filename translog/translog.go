// Package translog is consentd's transparency log: one Merkle tree (RFC 6962) over
// every record, whose signed tree heads let anyone check one record, or that today's
// log extends yesterday's, with O(log n) hashes and the published key alone.
//
// The tree arithmetic, hashing and proofs are golang.org/x/mod/sumdb/tlog's, the
// signed notes golang.org/x/mod/sumdb/note's, the checkpoint text
// github.com/transparency-dev/formats'. Here is what differs from them or is
// consentd's own:
//
//   - Checkpoints are C2SP tlog-checkpoint notes (origin, size, root), signed by a
//     key whose name is the log's origin; x/mod writes the Go checksum database's
//     fixed first line instead.
//   - Hash tiles have the C2SP tlog-tiles paths tile/L/N[.p/W]; x/mod writes
//     tile/8/L/N. There are no entry tiles: leaves name consent ids, which are the
//     secret behind a visitor's own records.
//   - Proofs are C2SP tlog-proof texts (index, inclusion proof, checkpoint).
//   - A leaf is a record's versioned binary header (see Leaf): the digests of its
//     parts, never their contents, so that it stays as a tombstone after a purge or
//     an erasure.
//
// # One writer, one transaction
//
// The log imports no store. A store hands Append the storage of one transaction
// (Tx): the batch's records, the tree's new hashes and one checkpoint signed over
// them commit together, and the head moves (Commit) only after that commit, so a
// checkpoint never leaves the process before the tree it signs is durable. One
// signature covers a whole batch. Leaf bytes and their hashes are made by the
// callers, in parallel; the writer only extends the tree and signs.
//
// # Several instances, one log
//
// Several consentd instances on one database (a later step) will share one log:
//
//   - Each instance writes its records with their leaves as pending, in its own
//     transaction, and answers nothing yet.
//   - One instance at a time is the sequencer. In one transaction it reads the log
//     head, takes the pending records in commit order, appends their leaves to the
//     tree, stores the hashes and a checkpoint signed over them, assigns each record
//     its index, and moves the head with a compare-and-set on the head's size: a
//     sequencer that lost its place (another took over, or the head moved under it)
//     fails its transaction and signs nothing that could fork the log.
//   - The other instances wait for their records' indexes (notified by the
//     database, or by polling the head) and answer their visitors only then, with
//     the proof against the checkpoint that covers them.
//   - Sequencing is a lease any instance may take when the sequencer is gone; the
//     compare-and-set, not the lease, keeps the log from forking.
package translog
