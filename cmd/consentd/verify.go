package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
)

// errBroken is returned when verification finds a broken link; the report says where.
var errBroken = errors.New("the hash chain is broken")

// errMissingKey is returned when nothing is found broken, but a statement in the
// store is signed by a key the verification was not given; the report says which.
var errMissingKey = errors.New("the store could not be verified: a key is missing")

// verify checks the hash chain of a store file that no consentd has open, such as a
// backup copy, and reports the first broken link.
func verify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", envOr("CONSENTD_DB", "data/consent.db"), "the bbolt file to check ($CONSENTD_DB)")
	keysDir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "the signing keys, to check the checkpoints ($CONSENTD_KEYS)")
	publicKeys := fs.String("public-keys", "", "instead of --keys: the public keys as GET /v1/keys serves them, for an auditor without the private keys")
	var archived []*consent.Checkpoint
	fs.Func("checkpoint", "a checkpoint kept apart from consentd, as GET /v1/dpo/checkpoint answered, that the chain must agree with; repeatable", func(path string) error {
		cp, err := readCheckpoint(path)
		archived = append(archived, cp)
		return err
	})
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	// Only flags given exclude each other: $CONSENTD_KEYS is a default, not a choice.
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var keys consent.CheckpointVerifier
	var err error
	var missing string // what to do when a key is missing
	switch {
	case set["keys"] && set["public-keys"]:
		return errors.New("consentd verify: --keys and --public-keys exclude each other: give the private keys or the published ones")
	case set["public-keys"]:
		keys, err = readPublicKeys(*publicKeys)
		missing = "fetch the current keys (GET /v1/keys) or use the key directory"
	default:
		keys, err = proof.LoadKeyring(*keysDir)
		if errors.Is(err, proof.ErrNoKeys) {
			err = fmt.Errorf("consentd verify: %s holds no keys: give the directory of the keys that signed (--keys), or the keys consentd publishes (--public-keys)", *keysDir)
		}
		missing = fmt.Sprintf("restore %s from a backup, or verify with the keys consentd publishes (--public-keys)", *keysDir)
	}
	if err != nil {
		return err
	}
	v, err := bolt.VerifyFile(ctx, *db, keys, archived...)
	if err != nil {
		return err
	}
	return report(stdout, *db, v, missing)
}

// report tells what the verification v of the store file path found, and returns
// errBroken if the chain is broken, errMissingKey, with what to do about it, if a
// key is missing to verify it.
func report(stdout io.Writer, path string, v *consent.Verification, missing string) error {
	if v.MissingKey != "" {
		// Not BROKEN: a key fetched before a rotation, say, is no sign of tampering.
		fmt.Fprintf(stdout, "cannot verify %s: %s; %s\n", path, v.Problem, missing)
		return errMissingKey
	}
	if !v.OK {
		fmt.Fprintf(stdout, "%s: BROKEN at place %d (record %s): %s; %d records before it verify\n", path, v.BrokenAt, v.RecordID, v.Problem, v.Records)
		return errBroken
	}
	fmt.Fprintf(stdout, "%s: OK, %d records, every link verifies, %d signed checkpoints agree", path, v.Records, v.Checkpoints)
	if v.Archived > 0 {
		fmt.Fprintf(stdout, ", and %d archived ones", v.Archived)
	}
	if v.Purged > 0 {
		fmt.Fprintf(stdout, "; purged past retention: %d, each covered by a signed purge", v.Purged)
	}
	if v.From > 1 {
		fmt.Fprintf(stdout, "; places 1 to %d were purged and dropped, as a signed base vouches", v.From-1)
	}
	fmt.Fprintln(stdout)
	return nil
}

// readPublicKeys returns a verifier of the public keys in the file at path.
func readPublicKeys(path string) (*proof.Verifier, error) {
	keys, err := readPublicKeyFile(path)
	if err != nil {
		return nil, err
	}
	v, err := proof.NewVerifier(keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readCheckpoint reads a checkpoint as GET /v1/dpo/checkpoint answered it.
func readCheckpoint(path string) (*consent.Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cp := new(consent.Checkpoint)
	if err := json.Unmarshal(data, cp); err != nil || cp.Signature == "" {
		return nil, fmt.Errorf("%s: not a checkpoint as GET /v1/dpo/checkpoint answers it", path)
	}
	return cp, nil
}
