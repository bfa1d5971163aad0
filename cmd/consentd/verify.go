package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
	"github.com/mixvoip/consentd/translog"
)

// errBroken is returned when verification finds the log broken; the report says
// where.
var errBroken = errors.New("the store's log is broken")

// errMissingKey is returned when nothing is found broken, but a statement in the
// store is signed by a key the verification was not given; the report says which.
var errMissingKey = errors.New("the store could not be verified: a key is missing")

// verify checks the transparency log of a store file that no consentd has open,
// such as a backup copy: it rebuilds the tree from the leaves, checks every record
// against its leaf, the store's checkpoint and purge statements against the tree,
// and that the tree extends each archived checkpoint.
func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("CONSENTD_DB", "data/consent.db"), "the bbolt file to check ($CONSENTD_DB)")
	keysDir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "the signing keys ($CONSENTD_KEYS)")
	publicKeys := fs.String("public-keys", "", "instead of --keys: the public keys as GET /v1/keys serves them, for an auditor without the private keys")
	var files []string
	fs.Func("checkpoint", "a file holding a checkpoint kept apart from consentd, as GET /v1/log/checkpoint serves it (consentd monitor keeps them), which the log must extend; repeatable", func(path string) error {
		files = append(files, path)
		return nil
	})
	online := fs.String("url", "", "instead of --db: have the consentd at this address verify its store now (with a DPO token, as the DPO commands take it)")
	tokenFile := fs.String("token-file", "", "with --url: a file whose first line is the DPO token (default: $CONSENTD_TOKEN)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	if *online != "" {
		if len(files) > 0 {
			return errors.New("consentd verify --url: --checkpoint is for a store file; consentd monitor proves that a running consentd's log extends the checkpoints it kept")
		}
		return verifyOnline(ctx, dpoFlags{url: online, tokenFile: tokenFile}, stdout)
	}
	if isPostgresURL(*db) {
		return errors.New("consentd verify reads a bbolt file, such as a backup copy: a PostgreSQL store is verified where it serves, with consentd verify --url")
	}
	var archived []*consent.Checkpoint
	for _, path := range files {
		cp, err := readCheckpointFile(path)
		if err != nil {
			return err
		}
		archived = append(archived, cp)
	}
	// Only flags given exclude each other: $CONSENTD_KEYS is a default, not a choice.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var (
		v       *consent.Verification
		err     error
		missing string // what to do when a key is missing
	)
	switch {
	case set["keys"] && set["public-keys"]:
		return errors.New("consentd verify: --keys and --public-keys exclude each other: give the private keys or the published ones")
	case set["public-keys"]:
		v, err = verifyWithPublished(ctx, *db, *publicKeys, files, archived)
		missing = "fetch the current keys (GET /v1/keys) or use the key directory"
	default:
		v, err = verifyWithKeyring(ctx, *db, *keysDir, files, archived)
		missing = fmt.Sprintf("restore %s from a backup, or verify with the keys consentd publishes (--public-keys)", *keysDir)
	}
	if err != nil {
		return err
	}
	return report(stdout, *db, v, missing)
}

// verifyOnline has the consentd that dpo names verify its store where it serves.
func verifyOnline(ctx context.Context, dpo dpoFlags, stdout io.Writer) error {
	c, err := dpo.client()
	if err != nil {
		return err
	}
	v, err := c.Verify(ctx)
	if err != nil {
		return err
	}
	return report(stdout, "the store of "+c.URL().String(), v, "the key is missing from consentd's key directory: restore it from a backup")
}

// verifyWithPublished verifies the store file db with the keys document at path,
// which must be of the store's log.
func verifyWithPublished(ctx context.Context, db, path string, files []string, archived []*consent.Checkpoint) (*consent.Verification, error) {
	doc, err := readPublicKeysFile(path)
	if err != nil {
		return nil, err
	}
	verifier, err := doc.Verifier()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	v, err := bolt.VerifyFile(ctx, db, verifier, archived...)
	if err != nil {
		return nil, err
	}
	if v.Origin != verifier.Origin() {
		return nil, fmt.Errorf("%s holds the keys of the log %q, but %s holds the log %q: fetch GET /v1/keys of the consentd that keeps it", path, verifier.Origin(), db, v.Origin)
	}
	return v, foreignCheckpoint(v, files, archived)
}

// verifyWithKeyring verifies the store file db with the keys in dir, as verifiers
// of the store's own log.
func verifyWithKeyring(ctx context.Context, db, dir string, files []string, archived []*consent.Checkpoint) (*consent.Verification, error) {
	keys, err := proof.LoadKeyring(dir)
	if errors.Is(err, proof.ErrNoKeys) {
		return nil, fmt.Errorf("consentd verify: %s holds no keys: give the directory of the keys that signed (--keys), or the keys consentd publishes (--public-keys)", dir)
	}
	if err != nil {
		return nil, err
	}
	return verifyFileWith(ctx, db, keys, files, archived)
}

// verifyFileWith verifies the store file db with keys as verifiers of the store's
// own log, whatever its name.
func verifyFileWith(ctx context.Context, db string, keys translog.Keys, files []string, archived []*consent.Checkpoint) (*consent.Verification, error) {
	origin, err := bolt.FileOrigin(db)
	if err != nil {
		return nil, err
	}
	verifier, err := keys.LogVerifier(origin)
	if err != nil {
		return nil, err
	}
	v, err := bolt.VerifyFile(ctx, db, verifier, archived...)
	if err != nil {
		return nil, err
	}
	return v, foreignCheckpoint(v, files, archived)
}

// report tells what the verification v of the store file path found, and returns
// errBroken if the log is broken, errMissingKey, with what to do about it, if a key
// is missing to verify it.
func report(stdout io.Writer, path string, v *consent.Verification, missing string) error {
	switch {
	case !v.OK && !onlyKeyMissing(v):
		fmt.Fprintf(stdout, "%s: %s\n", path, v.Summary())
		return errBroken
	case !v.OK:
		// Not BROKEN: keys fetched before a rotation, say, are no sign of tampering.
		fmt.Fprintf(stdout, "cannot verify %s: %s; %s\n", path, v.Problem, missing)
		return errMissingKey
	}
	fmt.Fprintf(stdout, "%s: %s\n", path, v.Summary())
	if v.SequencerStuck != "" {
		fmt.Fprintf(stdout, "warning: sequencer stuck: %s\n", v.SequencerStuck)
	}
	return nil
}

// onlyKeyMissing reports whether what keeps v from being OK is only a statement
// signed by a key the verification lacked, nothing broken.
func onlyKeyMissing(v *consent.Verification) bool { return v.MissingKey != "" }

// foreignCheckpoint tells an archived checkpoint, read from the file of the same
// index in files, of a log that the store's log neither is nor continues (after a
// restore): verification could only say that its key is missing.
func foreignCheckpoint(v *consent.Verification, files []string, archived []*consent.Checkpoint) error {
	if v.OK || !onlyKeyMissing(v) {
		return nil
	}
	name, _, _ := strings.Cut(v.MissingKey, "+")
	for i, cp := range archived {
		if cp.Origin == name && name != v.Origin {
			return fmt.Errorf("%s is a checkpoint of the log %q, which the log %q of the store neither is nor continues", files[i], cp.Origin, v.Origin)
		}
	}
	return nil
}
