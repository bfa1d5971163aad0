package consent

import "net/netip"

// TruncateIP returns the network an address belongs to, IPv4 to /24 and IPv6 to /48,
// as CIDR text: enough to tell a proof apart, too little to identify a visitor. An
// invalid address gives "". An IPv4-mapped IPv6 address is treated as IPv4.
func TruncateIP(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	addr = addr.Unmap()
	bits := 48
	if addr.Is4() {
		bits = 24
	}
	prefix, _ := addr.Prefix(bits) // cannot fail: bits fits both families
	return prefix.String()
}
