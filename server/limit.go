package server

import (
	"context"
	"math"
	"net/netip"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	consent "github.com/mixvoip/consentd"
)

// Limit is a rate per client: Rate events per second on average, up to Burst at
// once. A zero Rate means no limit.
type Limit struct {
	Rate  float64
	Burst int
}

// DefaultMaxClients is how many clients' rate limits are kept at most (see
// clientLimits): about 200 bytes each.
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
// in an LRU of at most size entries, and a client pushed out starts again with a
// full bucket, as a new one would — a flood of distinct clients can at worst make
// the limit forget the quiet ones.
type clientLimits struct {
	limit   rate.Limit
	burst   int
	clients *lru.Cache[string, *rate.Limiter]
}

// newClientLimits returns the limits of l for up to size clients, or nil when l has
// no rate: a nil *clientLimits allows everything.
func newClientLimits(l Limit, size int) *clientLimits {
	if l.Rate <= 0 {
		return nil
	}
	if size <= 0 {
		size = DefaultMaxClients
	}
	clients, err := lru.New[string, *rate.Limiter](size)
	if err != nil {
		panic(err) // only for a size below 1, excluded above
	}
	return &clientLimits{limit: rate.Limit(l.Rate), burst: max(l.Burst, 1), clients: clients}
}

// bucket returns the client's token bucket, made full on its first call.
func (cl *clientLimits) bucket(client string) *rate.Limiter {
	if b, ok := cl.clients.Get(client); ok {
		return b
	}
	b := rate.NewLimiter(cl.limit, cl.burst)
	if prev, ok, _ := cl.clients.PeekOrAdd(client, b); ok {
		return prev
	}
	return b
}

// take spends one event of the client's bucket, or returns an error with code
// ERateLimited that says when to try again.
func (cl *clientLimits) take(client string, now time.Time) error {
	if cl == nil {
		return nil
	}
	r := cl.bucket(client).ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return rateLimited(wait)
	}
	return nil
}

// check returns the error take would return, without spending anything: for events
// that count only when they happen (a failed sign-in), checked before they can.
func (cl *clientLimits) check(client string, now time.Time) error {
	if cl == nil {
		return nil
	}
	b := cl.bucket(client)
	if tokens := b.TokensAt(now); tokens < 1 {
		return rateLimited(time.Duration((1 - tokens) / float64(cl.limit) * float64(time.Second)))
	}
	return nil
}

// spend spends one event of the client's bucket, if it has one left.
func (cl *clientLimits) spend(client string, now time.Time) {
	if cl != nil {
		cl.bucket(client).AllowN(now, 1)
	}
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
