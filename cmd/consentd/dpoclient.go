package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/mixvoip/consentd/client"
)

// dpoFlags are the flags every DPO command shares: where consentd runs and where
// the token is.
type dpoFlags struct {
	url, tokenFile *string
}

// addDPOFlags registers --url and --token-file on fs. There is no --token flag on
// purpose: a secret given as a flag value is kept in the shell's history and shown to
// every user of the machine by ps; an environment variable or a file is neither.
func addDPOFlags(fs *flag.FlagSet) dpoFlags {
	return dpoFlags{
		url:       fs.String("url", envOr("CONSENTD_URL", "http://localhost:8080"), "the running consentd ($CONSENTD_URL)"),
		tokenFile: fs.String("token-file", "", "a file whose first line is the DPO token (default: $CONSENTD_TOKEN)"),
	}
}

// client returns a client for the flags, once they are parsed.
func (f dpoFlags) client() (*client.Client, error) {
	token := os.Getenv("CONSENTD_TOKEN")
	if *f.tokenFile != "" {
		data, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		// The first line only: the output of `consentd token add` can be saved as it is.
		token, _, _ = strings.Cut(string(data), "\n")
	}
	if token = strings.TrimSpace(token); token == "" {
		return nil, errors.New("no DPO token: set CONSENTD_TOKEN or pass --token-file FILE (a token is made with: consentd token add NAME)")
	}
	return newClient("--url", *f.url, token)
}

// newClient returns a client of the consentd at the address raw, given with flag,
// which sends token ("" for what consentd serves to anyone: its keys, its log).
func newClient(flag, raw, token string) (*client.Client, error) {
	c, err := client.New(raw, token)
	if err != nil {
		return nil, fmt.Errorf("%s %w", flag, err)
	}
	return c, nil
}

// isURL reports whether s is an http or https address rather than a file name.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// writeIndented writes doc as indented JSON, as a person reads it and a script
// parses it.
func writeIndented(w io.Writer, doc any) error {
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// filterHelp describes the record filters of the DPO API, by query parameter.
var filterHelp = map[string]string{
	"site":        "only this site",
	"from":        "records from this time on: 2026-11-27 or 2026-11-27T13:00:00Z",
	"to":          "records before this time",
	"action":      "only this action: accept_all, reject_all, custom, withdraw or gpc",
	"fingerprint": "only records of this banner version (material fingerprint)",
	"language":    "only records in this language",
}

// addFilterFlags registers a flag for each named query parameter and returns a
// function that gives the query of those set, once fs is parsed. The values go to
// consentd unchecked: it validates them and names a bad one in its 400.
func addFilterFlags(fs *flag.FlagSet, names ...string) func() url.Values {
	values := make(map[string]*string, len(names))
	for _, name := range names {
		values[name] = fs.String(name, "", filterHelp[name])
	}
	return func() url.Values {
		q := url.Values{}
		for name, v := range values {
			if *v != "" {
				q.Set(name, *v)
			}
		}
		return q
	}
}

// consentArg parses args with fs, whose one positional argument must be a consent
// id, and returns it.
func consentArg(fs *flag.FlagSet, args []string) (string, error) {
	id, err := parseArgs(fs, args)
	if err != nil {
		return "", err
	}
	if _, err := uuid.Parse(id); err != nil {
		name, _, _ := strings.Cut(fs.Name(), " ")
		return "", fmt.Errorf("%s: %q is not a consent id (a UUID, from the visitor's consent cookie or receipt)", name, id)
	}
	return id, nil
}

// parseArgs parses args with fs and returns the one positional argument, "" if there
// is none. Flags may come before and after it: the flag package alone stops at the
// first argument that is not a flag, and `consentd proof ID --json` would fail.
func parseArgs(fs *flag.FlagSet, args []string) (string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", errUsage
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch len(positional) {
	case 0:
		return "", nil
	case 1:
		return positional[0], nil
	}
	fs.Usage()
	return "", errUsage
}
