package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the address an IP allowlist is checked against: the
// immediate peer (RemoteAddr), unless the peer is a trusted proxy, in which
// case X-Forwarded-For is read from the right, skipping trusted proxies, and
// the first address that is not one is the client. Everything left of it
// was written by the client and proves nothing. If every hop is trusted, the
// leftmost is the client. An unparsable hop, or a peer that is not an IP
// address, gives an invalid Addr, which only an empty allowlist accepts.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := remoteAddr(r)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				hops = append(hops, h)
			}
		}
	}
	if len(hops) == 0 {
		return peer
	}
	var a netip.Addr
	for i := len(hops) - 1; i >= 0; i-- {
		a = parseHop(hops[i])
		if !a.IsValid() || !inPrefixes(a, trusted) {
			return a
		}
	}
	return a
}

func remoteAddr(r *http.Request) netip.Addr {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// parseHop reads one X-Forwarded-For entry: an address, possibly with a
// port ("203.0.113.7:4711", "[2001:db8::1]:443").
func parseHop(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
