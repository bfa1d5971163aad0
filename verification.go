package consent

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
)

// Verification is the outcome of checking a store's log: how far it holds, and where
// it breaks first. When nothing is broken but a statement is signed by a key the
// verifier lacks, it is not OK either: MissingKey names the key, and Problem says
// which statement it signed.
//
// Records written but not yet integrated into the log (a store shared by several
// instances) are no part of the log yet: Pending counts them, and SequencerStuck
// says when some have waited too long. Neither makes the log not OK.
type Verification struct {
	OK             bool   `json:"ok"`
	Origin         string `json:"origin"`                    // the log checked
	Leaves         int64  `json:"leaves"`                    // leaves whose hashes were rebuilt and compared
	Records        int    `json:"records"`                   // records whose parts were checked against their leaves
	Erased         int    `json:"erased"`                    // of those, records whose identifying part was erased
	Purged         int    `json:"purged"`                    // leaves whose record a signed purge statement covers
	Checkpoints    int    `json:"checkpoints"`               // signed checkpoints in the store that agree with the tree
	Archived       int    `json:"archived,omitempty"`        // archived checkpoints the tree extends
	BrokenAt       *int64 `json:"broken_at,omitempty"`       // index of the first bad leaf
	RecordID       string `json:"record_id,omitempty"`       // the record there, if known
	Problem        string `json:"problem,omitempty"`         // what is wrong, in words
	MissingKey     string `json:"missing_key,omitempty"`     // a key that signed a statement, and that the verifier lacks
	Pending        int    `json:"pending,omitempty"`         // records written, not yet in the log
	SequencerStuck string `json:"sequencer_stuck,omitempty"` // why some have waited too long
}

type progressKey struct{}

// WithVerifyProgress returns a context under which a store's Verify counts in
// leaves, now and then, how many leaves it has checked so far: a person who started
// a verification of millions of records sees it advance.
func WithVerifyProgress(ctx context.Context, leaves *atomic.Int64) context.Context {
	return context.WithValue(ctx, progressKey{}, leaves)
}

// VerifyProgress returns the counter WithVerifyProgress put in ctx, nil if none.
func VerifyProgress(ctx context.Context) *atomic.Int64 {
	leaves, _ := ctx.Value(progressKey{}).(*atomic.Int64)
	return leaves
}

// Summary says in a sentence what the verification found: "OK, ..." with what was
// checked, "BROKEN at leaf ..." with where and why, or why it could not be told.
func (v *Verification) Summary() string {
	switch {
	case !v.OK && v.MissingKey == "":
		var where, before string
		if v.BrokenAt != nil {
			where = fmt.Sprintf(" at leaf %d", *v.BrokenAt)
			before = fmt.Sprintf("; the %s before it verify", plural(int(*v.BrokenAt), "leaf", "leaves"))
		}
		if v.RecordID != "" {
			where += " (record " + v.RecordID + ")"
		}
		return "BROKEN" + where + ": " + v.Problem + before
	case !v.OK:
		// Not BROKEN: keys fetched before a rotation, say, are no sign of tampering.
		return "cannot be verified: " + v.Problem
	}
	var b strings.Builder
	fmt.Fprintf(&b, "OK, log %s: %s", v.Origin, plural(int(v.Leaves), "leaf", "leaves"))
	if v.Checkpoints > 0 {
		b.WriteString(" rebuilt into the tree its signed checkpoint vouches for")
	}
	fmt.Fprintf(&b, "; %s verify against their leaves", plural(v.Records, "record", "records"))
	if v.Erased > 0 {
		fmt.Fprintf(&b, " (%d erased)", v.Erased)
	}
	if v.Purged > 0 {
		fmt.Fprintf(&b, ", %d purged past retention under signed purge statements", v.Purged)
	}
	if v.Archived > 0 {
		fmt.Fprintf(&b, "; the log extends %s", plural(v.Archived, "archived checkpoint", "archived checkpoints"))
	}
	if v.Pending > 0 {
		fmt.Fprintf(&b, "; %s written, not yet in the log", plural(v.Pending, "record", "records"))
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
