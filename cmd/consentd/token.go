package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mixvoip/consentd/auth"
)

// defaultTokensFile is where the DPO API's token hashes live unless --tokens says.
const defaultTokensFile = "data/tokens.json"

// token manages the DPO API's bearer tokens: add prints a new token once, list shows
// them, revoke ends one. A running consentd picks changes up within seconds.
func token(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: consentd token add NAME [--sites a,b] | list | revoke NAME   [--tokens FILE]")
		return errUsage
	}
	fs := flag.NewFlagSet("consentd token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("tokens", envOr("CONSENTD_TOKENS", defaultTokensFile), "the token file ($CONSENTD_TOKENS)")
	sites := fs.String("sites", "", "comma-separated sites the token may see (default: all)")
	name, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	ts, err := auth.Load(*path)
	if err != nil {
		return err
	}
	switch {
	case args[0] == "add" && name != "":
		var list []string
		if *sites != "" {
			list = strings.Split(*sites, ",")
		}
		secret, err := ts.Add(name, list, time.Now())
		if err != nil {
			return err
		}
		if err := ts.Save(*path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n\nThis is the token %q; it is shown only now. Use it as: Authorization: Bearer <token>\n", secret, name)
	case args[0] == "revoke" && name != "":
		if err := ts.Revoke(name, time.Now()); err != nil {
			return err
		}
		if err := ts.Save(*path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %q revoked\n", name)
	case args[0] == "list" && name == "":
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSITES\tCREATED\tREVOKED")
		for _, t := range ts.List {
			s, revoked := "all", ""
			if len(t.Sites) > 0 {
				s = strings.Join(t.Sites, ",")
			}
			if !t.Revoked.IsZero() {
				revoked = t.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, s, t.Created.Format(time.RFC3339), revoked)
		}
		return w.Flush()
	default:
		fmt.Fprintln(stderr, "usage: consentd token add NAME [--sites a,b] | list | revoke NAME   [--tokens FILE]")
		return errUsage
	}
	return nil
}
