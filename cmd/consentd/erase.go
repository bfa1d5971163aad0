package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	consent "github.com/mixvoip/consentd"
)

// erase carries out a visitor's erasure request, after it has said what goes and
// what stays and the DPO has confirmed: on a terminal by answering, in a script with
// --yes.
func erase(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consentd erase CONSENT_ID", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dpo := addDPOFlags(fs)
	yes := fs.Bool("yes", false, "erase without asking (in a script)")
	id, err := consentArg(fs, args)
	if err != nil {
		return err
	}
	c, err := dpo.client()
	if err != nil {
		return err
	}
	p, err := c.Proof(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "consent %s: %s on %s.\n%s\n", id, count(len(p.Records), "record"), strings.Join(p.Sites(), ", "), consent.ErasureEffect)
	if !*yes {
		if !isTerminal(stdin) {
			return errors.New("consentd erase: not erased: confirm with --yes when no one can answer (not a terminal)")
		}
		fmt.Fprint(stdout, "Erase? Type yes to confirm: ")
		answer, _ := bufio.NewReader(stdin).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return errors.New("consentd erase: not erased")
		}
	}
	e, err := c.Erase(ctx, id)
	if err != nil {
		return err
	}
	before := ""
	if e.Erased < e.Records {
		before = fmt.Sprintf(" (%d erased before)", e.Records-e.Erased)
	}
	fmt.Fprintf(stdout, "erased: %s of consent %s%s\n", count(e.Records, "record"), id, before)
	return nil
}
