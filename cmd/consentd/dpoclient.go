package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
)

// dpoClient calls the DPO API of a running consentd. The DPO commands cannot read
// the database themselves: a running consentd holds bbolt's exclusive lock on it.
type dpoClient struct {
	base  *url.URL
	token string
}

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
func (f dpoFlags) client() (*dpoClient, error) {
	c, err := publicClient("--url", *f.url)
	if err != nil {
		return nil, err
	}
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
	c.token = token
	return c, nil
}

// publicClient returns a client without a token, for what consentd serves to
// anyone (its keys, its log), at the address raw given with flag.
func publicClient(flag, raw string) (*dpoClient, error) {
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%s %q: want the address of consentd, such as http://localhost:8080", flag, raw)
	}
	return &dpoClient{base: base}, nil
}

// isURL reports whether s is an http or https address rather than a file name.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// get sends a GET for path and query and returns the response of a success, whose
// body the caller closes; any other answer becomes an error with its status.
func (c *dpoClient) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err() // interrupted, not unreachable
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach consentd at %s (is it running? --url or $CONSENTD_URL): %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	// A proxy in front of consentd may answer with HTML: then the status says enough.
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	msg := fmt.Sprintf("consentd answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if body.Error.Message != "" {
		msg += ": " + body.Error.Message
	}
	return nil, &answerError{status: resp.StatusCode, msg: msg}
}

// answerError is an error answer of consentd, with its status for the commands that
// expect one.
type answerError struct {
	status int
	msg    string
}

func (e *answerError) Error() string { return e.msg }

// getJSON returns the JSON document at path, as the server sent it.
func (c *dpoClient) getJSON(ctx context.Context, path string, query url.Values) ([]byte, error) {
	resp, err := c.get(ctx, path, query)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the answer of consentd: %w", err)
	}
	return data, nil
}

// publishedKeys returns the keys consentd publishes (GET /v1/keys) and their log's
// verifier, with which the commands check what they fetch before they keep it.
func (c *dpoClient) publishedKeys(ctx context.Context) (*proof.PublicKeys, *translog.Verifier, error) {
	doc, err := c.getJSON(ctx, "v1/keys", nil)
	if err != nil {
		return nil, nil, err
	}
	keys, err := proof.ReadPublicKeys(bytes.NewReader(doc))
	if err != nil {
		return nil, nil, fmt.Errorf("the keys consentd publishes at %s: %w", c.base.JoinPath("v1/keys"), err)
	}
	verifier, err := keys.Verifier()
	if err != nil {
		return nil, nil, fmt.Errorf("the keys consentd publishes at %s: %w", c.base.JoinPath("v1/keys"), err)
	}
	return keys, verifier, nil
}

// writeIndented writes a JSON document indented, its content byte for byte as sent.
func writeIndented(w io.Writer, doc []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, doc, "", "  "); err != nil {
		return fmt.Errorf("consentd sent invalid JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
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
