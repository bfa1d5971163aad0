package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mixvoip/consentd/proof"
)

// defaultKeysDir is where the signing keys live unless --keys or CONSENTD_KEYS says.
const defaultKeysDir = "data/keys"

// keygen adds a new ed25519 key to the key directory. The newest key signs, in a
// running consentd too, which watches the directory; older ones stay, so that
// receipts they signed still verify. With --staged, the key is published and
// verifies but does not sign until --activate: several instances sharing the key
// files all learn it first.
func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "directory of the signing keys ($CONSENTD_KEYS)")
	staged := fs.Bool("staged", false, "make a key that every consentd loads and publishes, but none signs with until --activate")
	activate := fs.String("activate", "", "make the staged key with this id sign")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || (*staged && *activate != "") {
		return errUsage
	}
	if *activate != "" {
		if err := proof.Activate(*dir, *activate); err != nil {
			return err
		}
		keys, err := proof.LoadKeyring(*dir)
		if err != nil {
			return err
		}
		if signer := keys.Signer().ID; signer != *activate {
			fmt.Fprintf(stdout, "key %s is active; %s, newer, still signs\n", *activate, signer)
			return nil
		}
		fmt.Fprintf(stdout, "key %s signs from now on; a running consentd signs with it within seconds (at once on SIGHUP)\n", *activate)
		return nil
	}
	k, err := proof.Generate(*dir, time.Now(), *staged)
	if err != nil {
		return err
	}
	if *staged {
		fmt.Fprintf(stdout, "new staged key %s in %s: a running consentd publishes it within seconds, and signs with it after consentd keygen --activate %s\n", k.ID, *dir, k.ID)
		return nil
	}
	fmt.Fprintf(stdout, "new signing key %s in %s; a running consentd signs with it within seconds (at once on SIGHUP)\n", k.ID, *dir)
	return nil
}
