// Command consentd serves consent banners, records decisions, checks sites.yaml and
// queries a running consentd for the DPO.
//
//	consentd serve [--addr :8080] [--config sites.yaml] [--db data/consent.db | postgres://...] [--origin NAME] [--demo] [--new-store] [--migrate]
//	consentd check [sites.yaml]
//	consentd scan [--config sites.yaml] [--site S]... [--pages N] [--time D] [--out DIR]
//	consentd migrate --db postgres://... | --db-file FILE
//	consentd keygen [--keys data/keys]
//	consentd verify [--db data/consent.db] [--keys data/keys | --public-keys keys.json] [--checkpoint FILE ...]
//	consentd verify-receipt FILE [--public-keys keys.json | --url URL] [--against CHECKPOINT_FILE|URL]
//	consentd token add NAME [--sites a,b [--config sites.yaml]] | list [--all] | revoke NAME
//	consentd proof CONSENT_ID [--json]
//	consentd export [--site S] [--from T] [--to T] [--format csv|ndjson] [--out FILE] ...
//	consentd stats [--site S] [--from T] [--to T] [--json]
//	consentd erase CONSENT_ID [--yes]
//	consentd audit [--consent ID] [--after ID] [--limit N] [--json]
//	consentd verify --url URL
//	consentd checkpoint [--url URL] [--out FILE]
//	consentd backup --out FILE | --dir DIR [--keep 14]
//	consentd monitor --url URL --dir DIR
//	consentd restore --from BACKUP --db FILE --origin NEW_ORIGIN [--keys DIR]
//	consentd restore --db postgres://... --origin NEW_ORIGIN [--keys DIR]
//	consentd copy --from STORE --to STORE [--keys DIR]
//	consentd health [--url http://127.0.0.1:9090/readyz]
//	consentd version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=..."; a plain go build
// leaves it empty, and version() tells what the build info knows instead.
var Version = ""

// version returns the version of this binary: the one set at build time, else the
// module version of `go install ...@v1.2.3`, else the VCS revision that go build
// embeds (with "+dirty" for uncommitted changes), else "dev".
func version() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var revision, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if revision == "" {
		return "dev"
	}
	if len(revision) > 12 {
		revision = revision[:12]
	}
	if modified == "true" {
		revision += "+dirty"
	}
	return "dev-" + revision
}

const usage = `consentd: self-hosted cookie consent

Usage:
  consentd serve [flags]     serve banners, record consents (consentd serve -h for flags)
  consentd check [FILE]      validate a sites.yaml (default: $CONSENTD_CONFIG or sites.yaml)
  consentd scan [--config FILE] [--site S]... [--pages 10] [--time 15m] [--out DIR]
                             open each site's pages in headless Chromium (Debian's
                             chromium) before any choice, after "Reject all" and after
                             "Accept all"; report the cookies, storage keys and hosts
                             of other sites they use against sites.yaml, as
                             DIR/scan-TIME.html and .json; exits 1 on a violation
  consentd migrate --db postgres://user@host/db | --db-file FILE
                             bring a PostgreSQL store's schema up to date (serve
                             --migrate does it at start); the password in PGPASSFILE or
                             PGPASSWORD, or in the file: never on the command line
  consentd keygen [--keys DIR]  add a new signing key; a running consentd signs with it
                             within seconds
  consentd verify [--db FILE] [--keys DIR | --public-keys FILE] [--checkpoint FILE ...]
                             check the transparency log of a store file not in use (a
                             backup copy): the tree rebuilt from its leaves, every record
                             against its leaf, the signed checkpoint and purges; exits 1
                             where it breaks first, or if a statement is signed by a key
                             it was not given; --public-keys: with only the keys GET
                             /v1/keys published; --checkpoint: also proves that the log
                             extends checkpoints kept apart (consentd monitor keeps them)
  consentd verify-receipt FILE [--public-keys FILE | --url URL] [--against FILE|URL]
                             check receipts with only the keys consentd publishes: a
                             receipt, a record with its receipt, or a visitor's download
                             (GET /v1/consents/{id}); --url: fetch the keys there;
                             --against: also prove each record still in a newer
                             checkpoint (a file, or consentd's address), with
                             consistency proofs from --url or that address; exits 1 if
                             anything does not verify
  consentd restore --from BACKUP --db FILE --origin NEW_ORIGIN [--keys DIR]
                             put a verified backup in place of a lost store, under a
                             new origin linked to the backup's last checkpoint (the
                             old log went on after the backup); never over a file
  consentd restore --db postgres://user@host/db --origin NEW_ORIGIN [--keys DIR]
                             the same for a PostgreSQL database restored in place with
                             its own tools (pg_restore, point-in-time recovery)
  consentd copy --from STORE --to STORE [--keys DIR]
                             move a store between a bbolt file and PostgreSQL (either
                             way; --from-file, --to-file for a URL with a password),
                             its log intact: the copy verifies before it counts, and
                             the source is marked as moved and takes no more records
  consentd reindex [--db FILE|URL] [--keys DIR]
                             build again from the records what the store derives from
                             them: a bbolt store's consent index, and the statistics'
                             counters (a store from before them gets both when it
                             first opens); a bbolt file must not be in use, PostgreSQL
                             is counted while it serves
  consentd token add NAME [--sites a,b] | list [--all] | revoke NAME
                             DPO API tokens (--tokens FILE, default data/tokens.json);
                             --sites names sites of --config (default
                             $CONSENTD_CONFIG or sites.yaml)
  consentd health [--url URL]  exit 0 if a running consentd is ready (GET /readyz, by
                             default on $CONSENTD_ADMIN_ADDR, else $CONSENTD_ADDR, on this
                             machine), else 1 with the checks that failed: the container
                             image's HEALTHCHECK
  consentd version           print the version

DPO commands, against a running consentd (--url, default $CONSENTD_URL or
http://localhost:8080; the token from $CONSENTD_TOKEN or --token-file FILE):
  consentd proof CONSENT_ID [--json]
                             one visitor's records, whether each receipt verifies, and
                             what they were shown
  consentd export [--site S] [--from T] [--to T] [--action A] [--fingerprint F]
                  [--language L] [--format csv|ndjson] [--out FILE]
                             stream the selected records (default: NDJSON to stdout)
  consentd stats [--site S] [--from DAY] [--to DAY] [--json]
                             decisions per site and day, and opt-in rates per
                             category and partner over those days
  consentd erase CONSENT_ID [--yes]
                             erase what identifies a visitor, after saying what goes
                             and what stays as proof; --yes: without asking
  consentd audit [--consent ID] [--after ID] [--limit N] [--json]
                             the audit log of the DPO API, oldest first; --consent:
                             the calls about one visitor's consent id
  consentd verify --url URL  have consentd check its whole log and every record now
                             (a token without a site limit); exits 1 if it is broken
  consentd backup --out FILE | --dir DIR [--keep 14]
                             a consistent copy of the whole store, taken while consentd
                             serves, then verified with the keys consentd publishes
                             (a token without a site limit); --dir: a new copy named
                             by its time, the newest --keep kept

Following the log from outside (no token; --url as above):
  consentd checkpoint [--out FILE]
                             the log's newest checkpoint, verified with the keys
                             consentd publishes; --out: keep it, for verify
                             --checkpoint and verify-receipt --against
  consentd monitor --dir DIR
                             keep consentd's newest checkpoint in DIR once a
                             consistency proof shows that it extends the one kept
                             before; exits 1, keeping it aside, if it does not (the log
                             was cut off, rewritten or forked)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout)
	case "scan":
		return scanCommand(ctx, args[1:], stdout, stderr)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr)
	case "keygen":
		return keygen(args[1:], stdout, stderr)
	case "verify":
		return verify(ctx, args[1:], stdout, stderr)
	case "verify-receipt":
		return verifyReceipt(ctx, args[1:], stdout, stderr)
	case "token":
		return token(ctx, args[1:], stdout, stderr)
	case "proof":
		return showProof(ctx, args[1:], stdout, stderr)
	case "export":
		return export(ctx, args[1:], stdout, stderr)
	case "stats":
		return stats(ctx, args[1:], stdout, stderr)
	case "erase":
		return erase(ctx, args[1:], os.Stdin, stdout, stderr)
	case "audit":
		return audit(ctx, args[1:], stdout, stderr)
	case "checkpoint":
		return showCheckpoint(ctx, args[1:], stdout, stderr)
	case "monitor":
		return monitor(ctx, args[1:], stdout, stderr)
	case "backup":
		return backup(ctx, args[1:], stdout, stderr)
	case "restore":
		return restore(ctx, args[1:], stdout, stderr)
	case "copy":
		return copyStore(ctx, args[1:], stdout, stderr)
	case "reindex":
		return reindex(ctx, args[1:], stdout, stderr)
	case "health":
		return health(ctx, args[1:], stderr)
	case "version", "--version", "-version", "-v":
		fmt.Fprintln(stdout, "consentd", version())
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "consentd: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}
