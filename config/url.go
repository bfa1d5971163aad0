package config

import (
	"net/url"
	"strings"
)

// checkURL returns why raw is not an absolute http(s) URL, or "" if it is one.
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "is required"
	case err != nil:
		return "is not a valid URL"
	case u.Scheme != "https" && u.Scheme != "http":
		return "must start with https://"
	case u.Host == "":
		return "has no host"
	}
	return ""
}

// checkOrigin returns why raw is not an origin as browsers send it in the Origin
// header (scheme://host[:port], lower case, nothing else), or "" if it is one.
func checkOrigin(raw string) string {
	if msg := checkURL(raw); msg != "" {
		return msg
	}
	u, _ := url.Parse(raw)
	switch {
	case u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "must be only scheme://host[:port], without a path or a trailing slash"
	case raw != strings.ToLower(raw):
		return "must be lower case, as browsers send it"
	}
	return ""
}

func originHost(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
