package scan

import (
	"net/url"
	"strings"

	"golang.org/x/net/publicsuffix"

	consent "github.com/mixvoip/consentd"
)

// owners tells whom sites.yaml makes the owner of what a scan meets on one site.
type owners struct {
	site     *consent.Site
	consentd string // the host that served the banner's script
}

// declared is a cookie or storage key as sites.yaml declares it, with its owner.
type declared struct {
	owner  Owner
	cookie *consent.Cookie // nil for a storage key
}

func newOwners(site *consent.Site, visits []Visit) *owners {
	o := &owners{site: site}
	for _, v := range visits {
		if u, err := url.Parse(v.BannerScript); err == nil && u.Host != "" {
			o.consentd = u.Hostname()
			break
		}
	}
	return o
}

// cookie returns whom the cookie called name on domain belongs to, and the
// declaration that says so (nil for the consent cookie and an undeclared one). The
// consent cookie and the technical ones are the site's own: another site's cookie of
// the same name is not.
func (o *owners) cookie(name, domain string) declared {
	own := FirstParty(o.site, domain)
	if own && name == o.site.Cookie.Name {
		return declared{owner: Owner{Kind: KindConsentd}}
	}
	if c := findCookie(o.site.Technical.Cookies, name); own && c != nil {
		return declared{Owner{Kind: KindTechnical}, c}
	}
	for _, enabled := range []bool{true, false} {
		for i := range o.site.Partners {
			if p := &o.site.Partners[i]; p.Enabled == enabled {
				if c := findCookie(p.Cookies, name); c != nil {
					return declared{partnerOwner(p), c}
				}
			}
		}
	}
	return declared{owner: Owner{Kind: KindUndeclared}}
}

// storage returns whom the localStorage or sessionStorage key belongs to.
func (o *owners) storage(key string) Owner {
	if matchesAny(o.site.Technical.Storage, key) {
		return Owner{Kind: KindTechnical}
	}
	for _, enabled := range []bool{true, false} {
		for i := range o.site.Partners {
			if p := &o.site.Partners[i]; p.Enabled == enabled && matchesAny(p.Storage, key) {
				return partnerOwner(p)
			}
		}
	}
	return Owner{Kind: KindUndeclared}
}

// host returns whom a host of another site belongs to.
func (o *owners) host(host string) Owner {
	if host == o.consentd {
		return Owner{Kind: KindConsentd}
	}
	if hostMatchesAny(o.site.Technical.Hosts, host) {
		return Owner{Kind: KindTechnical}
	}
	for _, enabled := range []bool{true, false} {
		for i := range o.site.Partners {
			if p := &o.site.Partners[i]; p.Enabled == enabled && hostMatchesAny(partnerHosts(p), host) {
				return partnerOwner(p)
			}
		}
	}
	return Owner{Kind: KindUndeclared}
}

func partnerOwner(p *consent.Partner) Owner {
	if p.Enabled {
		return Owner{Kind: KindPartner, Partner: p.ID, Name: p.Name}
	}
	return Owner{Kind: KindDisabled, Partner: p.ID, Name: p.Name}
}

// partnerHosts returns the hosts p declares: those of its tags' URLs, and its hosts.
func partnerHosts(p *consent.Partner) []string {
	var hosts []string
	for _, t := range p.Tags {
		if u, err := url.Parse(t.Src); err == nil && u.Hostname() != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	return append(hosts, p.Hosts...)
}

// FirstParty reports whether host belongs to site: it is under the registrable
// domain of one of the site's origins, as www.example.com and cdn.example.com are
// under example.com.
func FirstParty(site *consent.Site, host string) bool {
	domain := registrable(strings.TrimPrefix(host, "."))
	for _, origin := range site.Origins {
		if u, err := url.Parse(origin); err == nil && registrable(u.Hostname()) == domain {
			return true
		}
	}
	return false
}

// registrable returns the domain one level under host's public suffix, or host itself
// where it has none (an IP address, localhost).
func registrable(host string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(strings.ToLower(host))
	if err != nil {
		return strings.ToLower(host)
	}
	return d
}

func findCookie(cookies []consent.Cookie, name string) *consent.Cookie {
	for i := range cookies {
		if matches(cookies[i].Name, name) {
			return &cookies[i]
		}
	}
	return nil
}

// matches reports whether name is pattern, or starts with it if it ends in "*".
func matches(pattern, name string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, prefix)
	}
	return name == pattern
}

func matchesAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if matches(p, name) {
			return true
		}
	}
	return false
}

// hostMatchesAny reports whether host is one of patterns, where "*.example.com"
// stands for example.com and every host under it.
func hostMatchesAny(patterns []string, host string) bool {
	for _, p := range patterns {
		if domain, ok := strings.CutPrefix(p, "*."); ok {
			if host == domain || strings.HasSuffix(host, "."+domain) {
				return true
			}
		} else if host == p {
			return true
		}
	}
	return false
}
