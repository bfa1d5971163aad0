package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mixvoip/consentd/auth"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/store/postgres"
)

// defaultTokensFile is where the DPO API's token hashes live unless --tokens says.
const defaultTokensFile = "data/tokens.json"

// tokenUsage is the usage of consentd token.
const tokenUsage = "usage: consentd token add NAME [--sites a,b [--config FILE]] | list [--all] | revoke NAME   [--tokens FILE | --db postgres://... | --db-file FILE]"

// token manages the DPO API's bearer tokens: add prints a new token once, list shows
// them, revoke ends one. A running consentd picks changes up within seconds. The
// tokens are in the token file, or in the database of a PostgreSQL store (--db),
// which every instance on it reads.
func token(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, tokenUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("consentd token "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("tokens", envOr("CONSENTD_TOKENS", defaultTokensFile), "the token file, for a bbolt store ($CONSENTD_TOKENS)")
	dbURL := fs.String("db", envOr("CONSENTD_DB", ""), "a PostgreSQL store, postgres://user@host/db, whose tokens are in its database, its password in PGPASSFILE or PGPASSWORD ($CONSENTD_DB); a bbolt file here is ignored: its tokens are in --tokens")
	dbFile := fs.String("db-file", envOr("CONSENTD_DB_FILE", ""), "a file holding the PostgreSQL store's URL, password included ($CONSENTD_DB_FILE)")
	sites := fs.String("sites", "", "comma-separated sites the token may see (default: all)")
	configPath := fs.String("config", envOr("CONSENTD_CONFIG", "sites.yaml"), "the sites configuration that --sites names sites of ($CONSENTD_CONFIG)")
	all := fs.Bool("all", false, "list: revoked tokens too")
	name, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	db, err := databaseOf(fs, *dbURL, *dbFile)
	if err != nil {
		return err
	}
	var store tokenStore = tokenFile(*path)
	if db.url != "" {
		store = tokenDatabase(db.url)
	}
	switch {
	case args[0] == "add" && name != "":
		var list []string
		if *sites != "" {
			if list, err = siteList(*sites, *configPath); err != nil {
				return err
			}
		}
		secret, err := store.add(ctx, name, list)
		if err != nil {
			return err
		}
		// The secret alone on stdout, so that `consentd token add dpo > file` keeps
		// just the token; what a person needs to read goes to stderr.
		fmt.Fprintln(stdout, secret)
		fmt.Fprintf(stderr, "This is the token %q; it is shown only now. Use it as: Authorization: Bearer <token>\n", name)
	case args[0] == "revoke" && name != "":
		if err := store.revoke(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "token %q revoked\n", name)
	case args[0] == "list" && name == "":
		ts, err := store.load(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tSITES\tCREATED\tREVOKED")
		for _, t := range ts.List {
			if !*all && !t.Revoked.IsZero() {
				continue // a revoked token opens nothing; its name may be in use again
			}
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
		fmt.Fprintln(stderr, tokenUsage)
		return errUsage
	}
	return nil
}

// tokenStore is where consentd token keeps the tokens.
type tokenStore interface {
	load(ctx context.Context) (*auth.Tokens, error)
	// add makes a token and returns its secret.
	add(ctx context.Context, name string, sites []string) (string, error)
	revoke(ctx context.Context, name string) error
}

// tokenFile is the token file at its path.
type tokenFile string

func (f tokenFile) load(context.Context) (*auth.Tokens, error) { return auth.Load(string(f)) }

func (f tokenFile) add(ctx context.Context, name string, sites []string) (string, error) {
	ts, err := f.load(ctx)
	if err != nil {
		return "", err
	}
	secret, err := ts.Add(name, sites, time.Now())
	if err != nil {
		return "", err
	}
	return secret, ts.Save(string(f))
}

func (f tokenFile) revoke(ctx context.Context, name string) error {
	ts, err := f.load(ctx)
	if err != nil {
		return err
	}
	if err := ts.Revoke(name, time.Now()); err != nil {
		return err
	}
	return ts.Save(string(f))
}

// tokenDatabase is the tokens of the PostgreSQL store at its URL.
type tokenDatabase string

func (d tokenDatabase) load(ctx context.Context) (*auth.Tokens, error) {
	return postgres.ReadTokens(ctx, string(d))
}

func (d tokenDatabase) add(ctx context.Context, name string, sites []string) (string, error) {
	secret, t, err := auth.New(name, sites, time.Now())
	if err != nil {
		return "", err
	}
	return secret, postgres.AddToken(ctx, string(d), t)
}

func (d tokenDatabase) revoke(ctx context.Context, name string) error {
	return postgres.RevokeToken(ctx, string(d), name, time.Now().UTC())
}

// siteList splits the value of --sites and checks each name against the sites of the
// configuration at configPath: a token limited to a misspelt site would open the
// DPO API and show nothing, and no one would notice why.
func siteList(sites, configPath string) ([]string, error) {
	names := strings.Split(sites, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
		switch {
		case names[i] == "":
			return nil, fmt.Errorf("--sites %q: an empty site name; separate the sites with single commas", sites)
		case slices.Contains(names[:i], names[i]):
			return nil, fmt.Errorf("--sites %q: %s is named twice", sites, names[i])
		}
	}
	cfg, err := config.Load(configPath)
	if err != nil {
		return nil, fmt.Errorf("--sites: cannot check the site names against the sites configuration (--config, $CONSENTD_CONFIG): %w", err)
	}
	var unknown []string
	for _, name := range names {
		if cfg.Sites[name] == nil {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	switch len(unknown) {
	case 0:
		return names, nil
	case 1:
		return nil, fmt.Errorf("--sites: unknown site %s; %s has %s", unknown[0], configPath, strings.Join(cfg.SiteKeys(), ", "))
	}
	return nil, fmt.Errorf("--sites: unknown sites %s; %s has %s", strings.Join(unknown, ", "), configPath, strings.Join(cfg.SiteKeys(), ", "))
}
