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
// receipts they signed still verify.
func keygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("keys", envOr("CONSENTD_KEYS", defaultKeysDir), "directory of the signing keys ($CONSENTD_KEYS)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errUsage
	}
	k, err := proof.Generate(*dir, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key %s in %s; a running consentd signs with it within seconds (at once on SIGHUP)\n", k.ID, *dir)
	return nil
}
