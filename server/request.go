package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// MaxConsentBody is the largest consent request accepted. A real one is under 1 KiB.
const MaxConsentBody = 8 << 10

// consentRequest is the body of POST /v1/consents, as the banner sends it.
type consentRequest struct {
	Site        string          `json:"site"`
	ConsentID   string          `json:"consent_id"`
	Action      consent.Action  `json:"action"`
	Fingerprint string          `json:"fingerprint"`
	Choices     consent.Choices `json:"choices"`
	Language    string          `json:"language"`
	URL         string          `json:"url"`
	Surface     consent.Surface `json:"surface"`
	GPC         bool            `json:"gpc"`
}

// decodeConsentRequest parses a body strictly: one JSON object of valid UTF-8, known
// fields only, each once and named exactly (encoding/json would match "GPC" or
// "ſite" to a field regardless of case, and keep the last of two members of one
// name: a proof must not depend on which of two answers counted), every field of
// the right type. It checks the shape, not the meaning (see validate).
func decodeConsentRequest(body []byte) (*consentRequest, error) {
	if !utf8.Valid(body) {
		return nil, consent.Errorf(consent.EInvalid, "body is not valid UTF-8")
	}
	var req consentRequest
	if err := json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err != nil {
		return nil, consent.Errorf(consent.EInvalid, "body is not a valid consent request: %s", jsonProblem(body, err))
	}
	if bytes.TrimLeft(body, " \t\r\n")[0] != '{' { // null, which decodes as {}
		return nil, consent.Errorf(consent.EInvalid, "body is not a valid consent request: expected a JSON object")
	}
	return &req, nil
}

// jsonProblem says what is wrong with body, naming the member at fault by its
// path (choices.categories.advertising), without echoing Go type names.
func jsonProblem(body []byte, err error) string {
	var syntax *jsontext.SyntacticError
	var semantic *json.SemanticError
	switch {
	case errors.As(err, &syntax) && errors.Is(syntax.Err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("member %q is given twice", memberPath(syntax.JSONPointer))
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "malformed or empty JSON"
	case errors.As(err, &syntax) && oneValueFirst(body):
		return "body must hold exactly one JSON object"
	case errors.As(err, &semantic) && errors.Is(semantic.Err, json.ErrUnknownName):
		return fmt.Sprintf("unknown field %q (names are case-sensitive)", memberPath(semantic.JSONPointer))
	case errors.As(err, &semantic) && semantic.JSONPointer != "":
		return fmt.Sprintf("field %q has the wrong type", memberPath(semantic.JSONPointer))
	case errors.As(err, &semantic):
		return "expected a JSON object"
	}
	return "malformed JSON"
}

// oneValueFirst reports whether body starts with a valid JSON value.
func oneValueFirst(body []byte) bool {
	return jsontext.NewDecoder(bytes.NewReader(body)).SkipValue() == nil
}

// memberPath writes a JSON pointer as the docs name members: /choices/categories/a
// is choices.categories.a.
func memberPath(p jsontext.Pointer) string {
	return strings.Join(slices.Collect(p.Tokens()), ".")
}

// validate checks the request against the site it names and returns the record to
// store, without the server-side fields (id, time, IP, user agent). The choices are
// checked apart, against what the visitor was shown (see validateChoices): that may
// take a read of the store. demoHost is a host whose pages may post besides the
// site's own origins, "" for none.
func (st *site) validate(req *consentRequest, demoHost string) (*consent.Record, error) {
	if id, err := uuid.Parse(req.ConsentID); err != nil || id.Version() != 4 || len(req.ConsentID) != 36 || id.String() != req.ConsentID {
		return nil, consent.Errorf(consent.EInvalid, "consent_id must be a random UUID (version 4) in lower-case canonical form")
	}
	if !req.Action.Valid() {
		return nil, consent.Errorf(consent.EInvalid, "action %q is not one of accept_all, reject_all, custom, withdraw, gpc", req.Action)
	}
	if !req.Surface.Valid() {
		return nil, consent.Errorf(consent.EInvalid, "surface %q is not one of banner, preferences, placeholder, api, browser", req.Surface)
	}
	if !slices.Contains(st.Languages, req.Language) {
		return nil, consent.Errorf(consent.EInvalid, "language %q is not a language of site %s", req.Language, st.Key)
	}
	page, err := st.pageURL(req.URL, demoHost)
	if err != nil {
		return nil, err
	}
	choices := req.Choices
	if choices.Partners == nil {
		// A site without partners: receipts say "partners": {}, never null.
		choices.Partners = map[string]bool{}
	}
	return &consent.Record{
		ConsentID:     req.ConsentID,
		Site:          st.Key,
		Action:        req.Action,
		Choices:       choices,
		Fingerprint:   req.Fingerprint,
		PolicyVersion: st.Policy.Version,
		Language:      req.Language,
		Surface:       req.Surface,
		GPC:           req.GPC,
		URL:           page,
	}, nil
}

// validateChoices accepts only an explicit answer for every category and every
// partner the visitor was shown (the snapshot shown), and nothing else, that fits
// the action: "reject all" can never carry a grant, "accept all" never a refusal, and
// a partner is granted only with its category. A partner of the site that was not
// enabled when shown cannot be answered at all.
func validateChoices(site *consent.Site, shown *consent.Snapshot, action consent.Action, c consent.Choices) error {
	for _, cat := range shown.Categories {
		granted, ok := c.Categories[cat.ID]
		switch {
		case !ok:
			return consent.Errorf(consent.EInvalid, "choices.categories.%s: missing; a decision answers every category explicitly", cat.ID)
		case cat.Required && !granted:
			return consent.Errorf(consent.EInvalid, "choices.categories.%s: category %q is always on and cannot be refused", cat.ID, cat.ID)
		case !cat.Required && !fits(action, granted):
			return consent.Errorf(consent.EInvalid, "choices.categories.%s: action %s cannot set category %q to %t", cat.ID, action, cat.ID, granted)
		}
	}
	if id, ok := firstUnknown(c.Categories, func(id string) bool {
		return slices.ContainsFunc(shown.Categories, func(cat consent.Category) bool { return cat.ID == id })
	}); ok {
		return consent.Errorf(consent.EInvalid, "choices.categories.%s: unknown category %q", id, id)
	}
	for _, p := range shown.Partners {
		granted, ok := c.Partners[p.ID]
		switch {
		case !ok:
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: missing; a decision answers every partner shown explicitly", p.ID)
		case !fits(action, granted):
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: action %s cannot set partner %q to %t", p.ID, action, p.ID, granted)
		case granted && !c.Categories[p.Category]:
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: partner %q is granted while its category %q is refused", p.ID, p.ID, p.Category)
		}
	}
	if id, ok := firstUnknown(c.Partners, func(id string) bool {
		return slices.ContainsFunc(shown.Partners, func(p consent.Partner) bool { return p.ID == id })
	}); ok {
		if site.Partner(id) != nil {
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: partner %q was not enabled on site %s in the banner answered, so the visitor was never asked about it", id, id, site.Key)
		}
		return consent.Errorf(consent.EInvalid, "choices.partners.%s: unknown partner %q", id, id)
	}
	return nil
}

// firstUnknown returns the first, in sorted order, of the keys of answers that known
// does not know: one error message, the same every time.
func firstUnknown(answers map[string]bool, known func(string) bool) (string, bool) {
	first, found := "", false
	for id := range answers {
		if !known(id) && (!found || id < first) {
			first, found = id, true
		}
	}
	return first, found
}

func fits(action consent.Action, granted bool) bool {
	switch action {
	case consent.ActionAcceptAll:
		return granted
	case consent.ActionRejectAll, consent.ActionGPC:
		return !granted
	}
	return true
}

// pageURL returns raw without query and fragment: they can carry personal data
// (search terms, e-mail addresses in links) that a proof does not need. The page
// must be on one of the site's origins, or on demoHost if that is not "".
func (st *site) pageURL(raw, demoHost string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", consent.Errorf(consent.EInvalid, "url must be the absolute http(s) URL of the page")
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	if !st.HasOrigin(origin) && (demoHost == "" || !strings.EqualFold(u.Host, demoHost)) {
		return "", consent.Errorf(consent.EInvalid, "url: %s is not one of the origins of site %s", origin, st.Key)
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery, u.User = "", "", "", false, nil
	return u.String(), nil
}

// expiry is when the banner asks again for the choices in r.
func (st *site) expiry(r *consent.Record) time.Time {
	return r.RecordedAt.Add(st.Lifetime(r.Choices))
}
