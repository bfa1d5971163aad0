package server

import (
	"net"
	"net/netip"

	"github.com/labstack/echo/v4"

	consent "github.com/mixvoip/consentd"
)

// noteUntrustedForwarding counts the requests that come with X-Forwarded-For from a
// peer that Options.TrustedProxies does not list, and says so once in the log: a
// reverse proxy left out of the list makes every visitor one client, the proxy, and
// the limits meant for one client then hold for all of them. The log names the
// peer's network, as a record would: the peer may be a visitor, whose address the
// log never keeps.
func (s *Server) noteUntrustedForwarding(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.Header.Get("X-Forwarded-For") != "" {
			peer, err := netip.ParseAddrPort(req.RemoteAddr)
			if err != nil || !s.trusted(peer.Addr()) {
				s.metrics.UntrustedForwarded()
				s.warnForwarded.Do(func() {
					s.opts.Logger.Warn("a request came with X-Forwarded-For from a peer --trusted-proxies does not list; its client is the peer. "+
						"If consentd runs behind a reverse proxy there, list it, or all its visitors share one client's limits",
						"peer_network", consent.TruncateIP(peer.Addr()))
				})
			}
		}
		return next(c)
	}
}

// trusted reports whether addr is in one of the trusted proxies' networks.
func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

func netipToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
