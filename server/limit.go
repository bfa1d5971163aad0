package server

import (
	"context"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// Limit is a rate per client: Rate events per second on average, up to Burst at
// once. A zero Rate means no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// DefaultMaxClients is how many clients' rate limits are kept at most (see
// clientLimits): about 40 bytes each.
const DefaultMaxClients = 1 << 16

// Default limits per client, an IPv4 /24 or IPv6 /48, that consentd serve starts
// with. A visitor decides once per site and cookie lifetime, but a /24 may hold a
// carrier's NAT with thousands of visitors behind it: 2 decisions a second, 120 at
// once, stop a flood of records without refusing a crowd (a refused decision is
// sent again on the visitor's next page view). A DPO does not mistype a token ten
// times a minute.
var (
	DefaultConsentLimit     = Limit{Rate: 2, Burst: 120}
	DefaultAuthFailureLimit = Limit{Rate: 10.0 / 60, Burst: 10}
)

// DefaultLimitDelay is the Options.LimitDelay of consentd serve.
const DefaultLimitDelay = time.Second

// clientLimits gives every client a token bucket of its own, keyed by its IP prefix
// (IPv4 /24, IPv6 /48: what a record keeps, and what one household, office or
// attacker holds). Memory stays bounded however many clients come: the buckets live
// in two generations of at most size/2 clients each; when the current one is full,
// it becomes the previous one and the previous one is dropped. A client dropped
// starts again with a full bucket, as a new one would — a flood of distinct clients
// can at worst make the limit forget the quiet ones.
//
// The buckets hold no pointers, keyed by a hash of the client: the garbage
// collector never scans them. An LRU of rate.Limiters held three objects per
// client, and with the 65,536 clients of a day's visitors, marking them took more
// of a POST's CPU than the limit itself.
type clientLimits struct {
	rate  float64 // tokens per second
	burst float64
	size  int // clients per generation
	seed  maphash.Seed
	// start is when the limits began: buckets keep their times as durations since,
	// which follow the monotonic clock when the wall clock is set back.
	start time.Time

	mu       sync.Mutex
	current  map[uint64]bucket
	previous map[uint64]bucket
}

// bucket is a client's tokens left at a time, since clientLimits.start.
type bucket struct {
	tokens float64
	at     time.Duration
}

// newClientLimits returns the limits of l for up to size clients (at least 2), or
// nil when l has no rate: a nil *clientLimits allows everything.
func newClientLimits(l Limit, size int) *clientLimits {
	if l.Rate <= 0 {
		return nil
	}
	if size <= 0 {
		size = DefaultMaxClients
	}
	generation := max(size, 2) / 2
	return &clientLimits{
		rate: l.Rate, burst: float64(max(l.Burst, 1)), size: generation, seed: maphash.MakeSeed(),
		start: time.Now(), current: make(map[uint64]bucket, generation),
	}
}

// tokensAt returns the client's bucket, filled up to now; a client unknown has a
// full one. Callers hold mu.
func (cl *clientLimits) tokensAt(key uint64, now time.Time) bucket {
	at := now.Sub(cl.start)
	b, ok := cl.current[key]
	if !ok {
		if b, ok = cl.previous[key]; !ok {
			return bucket{tokens: cl.burst, at: at}
		}
	}
	if elapsed := at - b.at; elapsed > 0 {
		b.tokens = min(cl.burst, b.tokens+elapsed.Seconds()*cl.rate)
		b.at = at
	}
	return b
}

// store keeps the client's bucket in the current generation, which it begins anew
// when full. Callers hold mu.
func (cl *clientLimits) store(key uint64, b bucket) {
	if _, ok := cl.current[key]; !ok && len(cl.current) >= cl.size {
		cl.previous, cl.current = cl.current, make(map[uint64]bucket, cl.size)
	}
	cl.current[key] = b
}

// use spends one token of the client's bucket if spend is set and it has one, and
// returns an error with code ERateLimited that says when to try again if it has
// none.
func (cl *clientLimits) use(client string, now time.Time, spend bool) error {
	if cl == nil {
		return nil
	}
	key := maphash.String(cl.seed, client)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	b := cl.tokensAt(key, now)
	if b.tokens < 1 {
		return rateLimited(time.Duration((1 - b.tokens) / cl.rate * float64(time.Second)))
	}
	if spend {
		b.tokens--
		cl.store(key, b)
	}
	return nil
}

// take spends one event of the client's bucket, or returns an error with code
// ERateLimited that says when to try again.
func (cl *clientLimits) take(client string, now time.Time) error { return cl.use(client, now, true) }

// check returns the error take would return, without spending anything: for events
// that count only when they happen (a failed sign-in), checked before they can.
func (cl *clientLimits) check(client string, now time.Time) error { return cl.use(client, now, false) }

// spend spends one event of the client's bucket, if it has one left.
func (cl *clientLimits) spend(client string, now time.Time) { _ = cl.use(client, now, true) }

// kept is how many clients' buckets are in memory.
func (cl *clientLimits) kept() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return len(cl.current) + len(cl.previous)
}

// maxHeld bounds the 429s held at once (see Options.LimitDelay): beyond, they are
// answered at once, so that a client with many connections cannot make the server
// hold a goroutine for each.
const maxHeld = 256

// hold waits LimitDelay, unless the request ends first or maxHeld answers are held
// already.
func (s *Server) hold(ctx context.Context) {
	if s.opts.LimitDelay <= 0 {
		return
	}
	select {
	case s.held <- struct{}{}:
		defer func() { <-s.held }()
	default:
		return
	}
	t := time.NewTimer(s.opts.LimitDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func rateLimited(wait time.Duration) error {
	return &consent.Error{
		Code:       consent.ERateLimited,
		Message:    "too many requests from your network; try again later",
		RetryAfter: wait,
	}
}

// clientOf returns the client a request comes from: its IP prefix, as a record
// keeps it. An address Echo cannot parse counts as one client, "unknown".
func clientOf(c echo.Context) string {
	if addr, err := netip.ParseAddr(c.RealIP()); err == nil {
		return consent.TruncateIP(addr)
	}
	return "unknown"
}

// retryAfterSeconds is the Retry-After value for wait: whole seconds, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}
