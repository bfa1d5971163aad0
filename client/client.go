// Package client calls the HTTP API of a running consentd: the DPO API with a
// token, and what consentd serves to anyone (its keys, its log). The CLI, the
// console's tests and the integration tests use it; the documents it reads are the
// ones package api defines for the server.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/api"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/translog"
)

// MaxDocument bounds what the client reads of a JSON answer or of an answer about
// the log: the largest, a proof of a consent with many records or a page of 1,000
// records, is a few MiB. Exports and backups are streamed, not read whole.
const MaxDocument = 64 << 20

// ErrNoCheckpoint is a log that has signed no checkpoint yet: its tree is empty.
var ErrNoCheckpoint = errors.New("the log has no checkpoint yet")

// noCheckpointYet ends consentd's 404 answer for a log without a checkpoint.
const noCheckpointYet = "no checkpoint was signed yet"

// Client calls one consentd. Its zero value is not usable: see New.
type Client struct {
	base  *url.URL
	token string
	// HTTP sends the requests; http.DefaultClient unless set.
	HTTP *http.Client
}

// New returns a client of the consentd at base, such as http://localhost:8080,
// which sends token as its bearer token ("" for what anyone may read).
func New(base, token string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: want the address of consentd, such as http://localhost:8080", base)
	}
	return &Client{base: u, token: token, HTTP: http.DefaultClient}, nil
}

// URL returns the address the client calls.
func (c *Client) URL() *url.URL { return c.base }

// Error is an error answer of consentd, with its status and code.
type Error struct {
	Status  int
	Code    string // one of consent's error codes; "" if the answer was not consentd's
	Message string // the whole sentence to show, with the status
}

func (e *Error) Error() string { return e.Message }

// Do sends a request for path and query with body (nil for none) and returns the
// response of a success, whose body the caller closes; any other answer becomes an
// *Error.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Response, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err() // interrupted, not unreachable
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach consentd at %s (is it running?): %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var doc api.Error
	// A proxy in front of consentd may answer with HTML: then the status says enough.
	json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&doc)
	msg := fmt.Sprintf("consentd answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if doc.Error.Message != "" {
		msg += ": " + doc.Error.Message
	}
	return nil, &Error{Status: resp.StatusCode, Code: doc.Error.Code, Message: msg}
}

// Get sends a GET for path and query; see Do.
func (c *Client) Get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	return c.Do(ctx, http.MethodGet, path, query, nil)
}

// Bytes returns the answer to method at path, which must be at most MaxDocument
// bytes, as consentd sent it.
func (c *Client) Bytes(ctx context.Context, method, path string, query url.Values) ([]byte, error) {
	resp, err := c.Do(ctx, method, path, query, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return readAtMost(resp.Body, c.base.JoinPath(path))
}

// readAtMost reads the answer body from u, which must be at most MaxDocument bytes.
func readAtMost(body io.Reader, u *url.URL) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, MaxDocument+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the answer of consentd at %s: %w", u, err)
	case len(data) > MaxDocument:
		return nil, fmt.Errorf("consentd at %s answered more than %d bytes: not what it serves there", u, MaxDocument)
	}
	return data, nil
}

// call decodes the JSON answer to method at path into doc.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, doc any) error {
	data, err := c.Bytes(ctx, method, path, query)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, doc); err != nil {
		return fmt.Errorf("consentd at %s sent an unreadable answer: %w", c.base.JoinPath(path), err)
	}
	return nil
}

// Proof returns everything that proves the decisions of consentID, as the token may
// see them. The receipts' verdicts are the server's: Verifier checks them here.
func (c *Client) Proof(ctx context.Context, consentID string) (*api.Proof, error) {
	var p api.Proof
	return &p, c.call(ctx, http.MethodGet, "v1/dpo/consents/"+url.PathEscape(consentID), nil, &p)
}

// Erase removes what identifies the visitor from the records of consentID on the
// sites the token may see; the decisions stay provable.
func (c *Client) Erase(ctx context.Context, consentID string) (*api.Erasure, error) {
	var e api.Erasure
	return &e, c.call(ctx, http.MethodDelete, "v1/dpo/consents/"+url.PathEscape(consentID), nil, &e)
}

// Stats returns the decisions per site and day for the filter in query (site, from,
// to).
func (c *Client) Stats(ctx context.Context, query url.Values) (*api.Stats, error) {
	var s api.Stats
	return &s, c.call(ctx, http.MethodGet, "v1/dpo/stats", query, &s)
}

// Audit returns a page of the audit log for query (consent_id, after, limit).
func (c *Client) Audit(ctx context.Context, query url.Values) (*api.AuditPage, error) {
	var p api.AuditPage
	return &p, c.call(ctx, http.MethodGet, "v1/dpo/audit", query, &p)
}

// Records returns a page of records for the filter in query.
func (c *Client) Records(ctx context.Context, query url.Values) (*api.RecordPage, error) {
	var p api.RecordPage
	return &p, c.call(ctx, http.MethodGet, "v1/dpo/records", query, &p)
}

// Verify has consentd check its whole log and every record against it.
func (c *Client) Verify(ctx context.Context) (*consent.Verification, error) {
	var v consent.Verification
	return &v, c.call(ctx, http.MethodGet, "v1/dpo/verify", nil, &v)
}

// Checkpoint returns the log's newest checkpoint as GET /v1/log/checkpoint serves
// it, the signed note, not yet opened, and when consentd signed it (its
// Last-Modified; zero if it does not say); ErrNoCheckpoint if the log has none.
func (c *Client) Checkpoint(ctx context.Context) (signed []byte, signedAt time.Time, err error) {
	resp, err := c.Get(ctx, "v1/log/checkpoint", nil)
	var answer *Error
	// Any other 404 is a failure: an address where consentd's log is not.
	if errors.As(err, &answer) && answer.Status == http.StatusNotFound && strings.HasSuffix(answer.Message, noCheckpointYet) {
		return nil, time.Time{}, ErrNoCheckpoint
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	signed, err = readAtMost(resp.Body, c.base.JoinPath("v1/log/checkpoint"))
	if err != nil {
		return nil, time.Time{}, err
	}
	signedAt, _ = http.ParseTime(resp.Header.Get("Last-Modified"))
	return signed, signedAt, nil
}

// Consistency returns the proof that the log's tree of size second extends the one
// of size first.
func (c *Client) Consistency(ctx context.Context, first, second int64) (tlog.TreeProof, error) {
	if first == 0 || first == second {
		return tlog.TreeProof{}, nil // nothing to prove, and the server takes no size 0
	}
	q := url.Values{"first": {strconv.FormatInt(first, 10)}, "second": {strconv.FormatInt(second, 10)}}
	var answer api.Consistency
	if err := c.call(ctx, http.MethodGet, "v1/log/consistency", q, &answer); err != nil {
		return nil, err
	}
	if answer.First != first || answer.Second != second {
		return nil, fmt.Errorf("consentd at %s answered no consistency proof from size %d to %d", c.base, first, second)
	}
	p := make(tlog.TreeProof, len(answer.Proof))
	for i, h := range answer.Proof {
		raw, err := base64.StdEncoding.DecodeString(h)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("consentd at %s answered a malformed consistency proof from size %d to %d", c.base, first, second)
		}
		p[i] = tlog.Hash(raw)
	}
	return p, nil
}

// Keys returns the keys consentd publishes (GET /v1/keys) and their log's verifier,
// with which a caller checks what it fetches before it keeps it.
func (c *Client) Keys(ctx context.Context) (*proof.PublicKeys, *translog.Verifier, error) {
	doc, err := c.Bytes(ctx, http.MethodGet, "v1/keys", nil)
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
