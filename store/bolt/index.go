package bolt

import (
	"slices"
	"sync"

	"github.com/google/uuid"
)

// consentIndex maps consent ids to their record ids, in memory, like Bitcask's
// keydir. A bbolt bucket keyed by consent id would put a random leaf page into
// every commit, more of them as the file grows, where appends touch only the last
// pages. The index costs memory per record instead, and is rebuilt from the
// records at Open, which reads only each value's 17-byte header.
type consentIndex struct {
	mu sync.RWMutex
	// Most consent ids have one record: it lives in first, and only the records
	// after it in rest, so that one record costs no slice.
	first map[uuid.UUID]uuid.UUID
	rest  map[uuid.UUID][]uuid.UUID
}

func newConsentIndex() *consentIndex {
	return &consentIndex{first: map[uuid.UUID]uuid.UUID{}, rest: map[uuid.UUID][]uuid.UUID{}}
}

// add records that recordID belongs to consentID. Callers hold mu.
func (ix *consentIndex) add(consentID, recordID uuid.UUID) {
	if _, ok := ix.first[consentID]; !ok {
		ix.first[consentID] = recordID
		return
	}
	ix.rest[consentID] = append(ix.rest[consentID], recordID)
}

// records returns the record ids of consentID, in the order they were added.
func (ix *consentIndex) records(consentID uuid.UUID) []uuid.UUID {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	first, ok := ix.first[consentID]
	if !ok {
		return nil
	}
	return append([]uuid.UUID{first}, slices.Clone(ix.rest[consentID])...)
}

// remove forgets that recordID belongs to consentID. Callers hold mu.
func (ix *consentIndex) remove(consentID, recordID uuid.UUID) {
	rest := slices.DeleteFunc(ix.rest[consentID], func(id uuid.UUID) bool { return id == recordID })
	if ix.first[consentID] == recordID {
		if len(rest) == 0 {
			delete(ix.first, consentID)
		} else {
			ix.first[consentID], rest = rest[0], rest[1:]
		}
	}
	if len(rest) == 0 {
		delete(ix.rest, consentID)
	} else {
		ix.rest[consentID] = rest
	}
}
