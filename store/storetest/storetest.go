// Package storetest is the behavioural suite every consent.Store backend must pass:
// each backend's test file calls Run with a Factory and nothing more. The suite has
// one part per part of a Store (RunRecords, RunSnapshots, RunAudit, RunLog), so that
// a new backend can pass it part by part.
package storetest

import (
	"testing"

	consent "github.com/mixvoip/consentd"
)

// Factory prepares a fresh, empty location for one subtest (a directory, a database
// schema) and returns a function that opens a store there. Every call of open must
// return a new consent.Store on that same location, so records appended through one
// store are read back through the next after the first was closed; open fails tb
// itself when the store cannot be opened. The suite closes every store it opens,
// sometimes twice: Close must be safe to call more than once. The store's log must
// be named Origin and signed with Keys.
type Factory func(tb testing.TB) (open func() consent.Store)

// Run runs every part of the suite against the stores newStore opens.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	RunRecords(t, newStore)
	RunSnapshots(t, newStore)
	RunAudit(t, newStore)
	RunLog(t, newStore)
}

// behaviour is one test of the suite, run on a fresh location.
type behaviour struct {
	name string
	test func(t *testing.T, open func() consent.Store)
}

// run runs each behaviour as a parallel subtest of t on a location of its own.
func run(t *testing.T, newStore Factory, behaviours []behaviour) {
	t.Helper()
	for _, b := range behaviours {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			b.test(t, newStore(t))
		})
	}
}
