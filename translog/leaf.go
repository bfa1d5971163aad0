package translog

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

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
//	[57:89]    SHA-256 of the decision part (see DecisionPart)
//	[89:121]   SHA-256 of the identifying part, salted (see IdentifyingPart)
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

// decision is the part of a record that states what the visitor decided, as
// ParseDecisionPart reads the bytes DecisionPart writes.
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

// DecisionPart returns the decision part of r as the log covers it: consent id, choices,
// action, GPC signal, fingerprint of what was shown, language, policy version,
// expiry and surface, as RFC 8785 canonical JSON. A store keeps these bytes as they
// are; verification hashes them and never encodes them again.
func DecisionPart(r *consent.Record) ([]byte, error) {
	b := make([]byte, 0, 512)
	b = append(b, `{"action":`...)
	b = appendString(b, string(r.Action))
	b = append(b, `,"choices":{"categories":`...)
	b, err := appendBools(b, r.Choices.Categories)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"partners":`...)
	if b, err = appendBools(b, r.Choices.Partners); err != nil {
		return nil, err
	}
	b = append(b, `},"consent_id":`...)
	b = appendString(b, r.ConsentID)
	b = append(b, `,"expires_at":`...)
	if b, err = appendTime(b, r.ExpiresAt.UTC()); err != nil {
		return nil, err
	}
	b = append(b, `,"fingerprint":`...)
	b = appendString(b, r.Fingerprint)
	b = append(b, `,"gpc":`...)
	b = strconv.AppendBool(b, r.GPC)
	b = append(b, `,"language":`...)
	b = appendString(b, r.Language)
	b = append(b, `,"policy_version":`...)
	b = appendString(b, r.PolicyVersion)
	b = append(b, `,"surface":`...)
	b = appendString(b, string(r.Surface))
	return append(b, '}'), nil
}

// ParseDecisionPart sets the decision fields of r from the bytes DecisionPart returned.
func ParseDecisionPart(b []byte, r *consent.Record) error {
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

// IdentifyingPart returns the identifying part of r (IP prefix, URL, user agent) as the
// log covers it: a random salt of SaltSize bytes, then RFC 8785 canonical JSON.
// Without the salt, the digest that stays in the leaf after an erasure could be
// matched against guesses: a /24 prefix, a common user agent, a page of the site.
func IdentifyingPart(r *consent.Record) ([]byte, error) {
	b := make([]byte, SaltSize, SaltSize+256)
	rand.Read(b) // never fails, says crypto/rand
	b = append(b, `{"ip_prefix":`...)
	b = appendString(b, r.IPPrefix)
	b = append(b, `,"url":`...)
	b = appendString(b, r.URL)
	b = append(b, `,"user_agent":`...)
	b = appendString(b, r.UserAgent)
	return append(b, '}'), nil
}

// ParseIdentifyingPart sets the identifying fields of r from the bytes IdentifyingPart
// returned.
func ParseIdentifyingPart(b []byte, r *consent.Record) error {
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
