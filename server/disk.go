package server

import (
	"fmt"
	"sync"
	"time"

	consent "github.com/mixvoip/consentd"
)

// DiskGuard keeps records from filling the disk: below MinFree bytes free in Dir
// (where the store keeps its files) the server refuses new records with 503 and is
// not ready, before the store fails on a full disk. A zero MinFree checks nothing.
type DiskGuard struct {
	Dir     string
	MinFree uint64
}

// diskCheckEvery is how long one reading of the free space is used: a consent
// costs no system call, and a disk filling up is seen within a second.
const diskCheckEvery = time.Second

// diskRetryAfter is what a client refused for want of disk space is told to wait.
const diskRetryAfter = time.Minute

// diskCheck reads DiskGuard's free space at most every diskCheckEvery.
type diskCheck struct {
	guard DiskGuard
	mu    sync.Mutex
	at    time.Time
	err   error // what the last reading found: nil, short of space, or unreadable
}

// check returns an error with code EUnavailable while the disk is short of space or
// its free space cannot be read.
func (d *diskCheck) check(now time.Time) error {
	if d.guard.MinFree == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && now.Sub(d.at) < diskCheckEvery {
		return d.err
	}
	d.at, d.err = now, nil
	free, err := freeSpace(d.guard.Dir)
	if err != nil {
		d.err = &consent.Error{Code: consent.EUnavailable, RetryAfter: diskRetryAfter,
			Message: "consentd cannot tell how much disk space is left, so it takes no new records for now"}
		return d.err
	}
	if free < d.guard.MinFree {
		d.err = &consent.Error{Code: consent.EUnavailable, RetryAfter: diskRetryAfter,
			Message: fmt.Sprintf("consentd is short of disk space (%d MiB free, %d MiB kept free): it takes no new records until an operator frees some", free>>20, d.guard.MinFree>>20)}
	}
	return d.err
}
