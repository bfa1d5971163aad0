package translog

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
)

// LeafVersion is the format of the leaves consentd writes. A leaf's first byte names
// its format, and every format stays readable forever: leaves are in signed trees.
const LeafVersion = 1

// A leaf of format 1 is a fixed binary header of 122 bytes and the site:
//
//	[0]        format (1)
//	[1:17]     record id (UUID)
//	[17:25]    time recorded, Unix microseconds (int64, big-endian)
//	[25:57]    SHA-256 of the snapshot of what the visitor was shown, as stored
//	[57:89]    SHA-256 of the decision part (see Decision)
//	[89:121]   SHA-256 of the identifying part, salted (see Identifying)
//	[121]      length of the site, 1 to 255
//	[122:]     the site
//
// The header names the record and the digests of its parts, never their contents:
// it stays as the record's tombstone after a retention purge removes the parts, and
// after an erasure removes the identifying part, and the tree still verifies.
const (
	leafSite   = 122
	maxSiteLen = 255
)

// Leaf is the log's entry for one record.
type Leaf struct {
	RecordID    uuid.UUID
	RecordedAt  time.Time // to the microsecond
	Snapshot    [32]byte
	Decision    [32]byte
	Identifying [32]byte
	Site        string
}

// MarshalBinary returns the leaf's bytes in format LeafVersion.
func (l *Leaf) MarshalBinary() ([]byte, error) {
	if len(l.Site) == 0 || len(l.Site) > maxSiteLen {
		return nil, fmt.Errorf("translog: leaf: site %q is not 1 to %d bytes long", l.Site, maxSiteLen)
	}
	b := make([]byte, leafSite, leafSite+len(l.Site))
	b[0] = LeafVersion
	copy(b[1:17], l.RecordID[:])
	binary.BigEndian.PutUint64(b[17:25], uint64(l.RecordedAt.UnixMicro()))
	copy(b[25:57], l.Snapshot[:])
	copy(b[57:89], l.Decision[:])
	copy(b[89:121], l.Identifying[:])
	b[121] = byte(len(l.Site))
	return append(b, l.Site...), nil
}

// UnmarshalBinary reads a leaf of any format consentd ever wrote.
func (l *Leaf) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != LeafVersion {
		return errors.New("translog: leaf: unknown format")
	}
	if len(b) <= leafSite || len(b) != leafSite+int(b[121]) {
		return errors.New("translog: leaf: malformed")
	}
	*l = Leaf{
		RecordID:    uuid.UUID(b[1:17]),
		RecordedAt:  time.UnixMicro(int64(binary.BigEndian.Uint64(b[17:25]))).UTC(),
		Snapshot:    [32]byte(b[25:57]),
		Decision:    [32]byte(b[57:89]),
		Identifying: [32]byte(b[89:121]),
		Site:        string(b[leafSite:]),
	}
	return nil
}

// LeafHash returns the hash of the leaf with the bytes b in the tree (RFC 6962).
func LeafHash(b []byte) tlog.Hash { return tlog.RecordHash(b) }

// decision is the part of a record that states what the visitor decided. Its JSON,
// canonicalized by RFC 8785, is what the log covers: the members are sorted by name
// and nothing depends on how encoding/json writes them.
type decision struct {
	Action        consent.Action  `json:"action"`
	Choices       consent.Choices `json:"choices"`
	ConsentID     string          `json:"consent_id"`
	ExpiresAt     time.Time       `json:"expires_at"`
	Fingerprint   string          `json:"fingerprint"`
	GPC           bool            `json:"gpc"`
	Language      string          `json:"language"`
	PolicyVersion string          `json:"policy_version"`
	Surface       consent.Surface `json:"surface"`
}

// Decision returns the decision part of r as the log covers it: consent id, choices,
// action, GPC signal, fingerprint of what was shown, language, policy version,
// expiry and surface, as RFC 8785 canonical JSON. A store keeps these bytes as they
// are; verification hashes them and never encodes them again.
func Decision(r *consent.Record) ([]byte, error) {
	choices := r.Choices
	// A record without choices has empty objects, not null: one form for one meaning.
	if choices.Categories == nil {
		choices.Categories = map[string]bool{}
	}
	if choices.Partners == nil {
		choices.Partners = map[string]bool{}
	}
	return canonical(decision{
		Action: r.Action, Choices: choices, ConsentID: r.ConsentID, ExpiresAt: r.ExpiresAt.UTC(),
		Fingerprint: r.Fingerprint, GPC: r.GPC, Language: r.Language, PolicyVersion: r.PolicyVersion,
		Surface: r.Surface,
	})
}

// ParseDecision sets the decision fields of r from the bytes Decision returned.
func ParseDecision(b []byte, r *consent.Record) error {
	var d decision
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("translog: decision: %w", err)
	}
	r.Action, r.Choices, r.ConsentID, r.ExpiresAt = d.Action, d.Choices, d.ConsentID, d.ExpiresAt
	r.Fingerprint, r.GPC, r.Language, r.PolicyVersion, r.Surface = d.Fingerprint, d.GPC, d.Language, d.PolicyVersion, d.Surface
	return nil
}

// SaltSize is the length of the salt before the identifying part.
const SaltSize = 16

type identifying struct {
	IPPrefix  string `json:"ip_prefix"`
	URL       string `json:"url"`
	UserAgent string `json:"user_agent"`
}

// Identifying returns the identifying part of r (IP prefix, URL, user agent) as the
// log covers it: a random salt of SaltSize bytes, then RFC 8785 canonical JSON.
// Without the salt, the digest that stays in the leaf after an erasure could be
// matched against guesses: a /24 prefix, a common user agent, a page of the site.
func Identifying(r *consent.Record) ([]byte, error) {
	b, err := canonical(identifying{IPPrefix: r.IPPrefix, URL: r.URL, UserAgent: r.UserAgent})
	if err != nil {
		return nil, err
	}
	salted := make([]byte, SaltSize, SaltSize+len(b))
	rand.Read(salted) // never fails, says crypto/rand
	return append(salted, b...), nil
}

// ParseIdentifying sets the identifying fields of r from the bytes Identifying
// returned.
func ParseIdentifying(b []byte, r *consent.Record) error {
	var id identifying
	if len(b) < SaltSize {
		return errors.New("translog: identifying part: shorter than its salt")
	}
	if err := json.Unmarshal(b[SaltSize:], &id); err != nil {
		return fmt.Errorf("translog: identifying part: %w", err)
	}
	r.IPPrefix, r.URL, r.UserAgent = id.IPPrefix, id.URL, id.UserAgent
	return nil
}

// canonical returns v, a struct whose members are declared in the order of their
// names, as RFC 8785 canonical JSON. encoding/json without HTML escaping writes that
// form already as long as the JSON is ASCII without \u escapes: members in
// declaration order, map keys sorted, the same escapes. Beyond that (U+2028, invalid
// UTF-8, keys sorted by UTF-16 rather than by bytes) jsontext canonicalizes it, at
// twice the cost of a decision's encoding.
func canonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("translog: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if isPlainASCII(b) {
		return b, nil
	}
	value := jsontext.Value(b)
	if err := value.Canonicalize(); err != nil {
		return nil, fmt.Errorf("translog: canonical JSON: %w", err)
	}
	return value, nil
}

// isPlainASCII reports whether b is ASCII without a \u escape.
func isPlainASCII(b []byte) bool {
	for i, c := range b {
		if c >= 0x80 || c == 'u' && i > 0 && b[i-1] == '\\' {
			return false
		}
	}
	return true
}

// NewLeaf returns the leaf of r, whose decision and identifying parts are the bytes
// decision and identifying, shown the snapshot whose stored bytes hash to snapshot.
func NewLeaf(r *consent.Record, snapshot [32]byte, decision, identifying []byte) (*Leaf, error) {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return nil, fmt.Errorf("translog: leaf: record id %q is not a UUID", r.ID)
	}
	return &Leaf{
		RecordID: id, RecordedAt: r.RecordedAt, Snapshot: snapshot,
		Decision: sha256.Sum256(decision), Identifying: sha256.Sum256(identifying), Site: r.Site,
	}, nil
}
