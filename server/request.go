package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

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

// decodeConsentRequest parses a body strictly: one JSON object, known fields only,
// each once and named exactly, every field of the right type. It checks the shape, not the meaning
// (see validate).
func decodeConsentRequest(body []byte) (*consentRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req consentRequest
	if err := dec.Decode(&req); err != nil {
		return nil, consent.Errorf(consent.EInvalid, "body is not a valid consent request: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, consent.Errorf(consent.EInvalid, "body must hold exactly one JSON object")
	}
	if err := checkMembers(body); err != nil {
		return nil, err
	}
	return &req, nil
}

// checkMembers refuses what encoding/json would let pass silently: a member whose
// name repeats one before it in the same object (json keeps the last), and in the
// objects that decode into structs a name that is not exactly a field's (json
// matches names without regard to case, Unicode folding included, so "GPC" or
// "categorieſ" would stand in for another member). A proof must not depend on which
// of two answers counted. body must be valid JSON.
func checkMembers(body []byte) error {
	type frame struct {
		object   bool
		names    map[string]bool
		path     string
		key      string // the member whose value comes next
		wantName bool   // a member's name comes next
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []*frame
	// After a value, in an object, a member's name comes next.
	valueDone := func() {
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantName = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.wantName {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				valueDone()
				continue
			}
			name := tok.(string) // a member's name: the decoder checked the syntax
			path := strings.TrimPrefix(top.path+"."+name, ".")
			if fields, ok := structMembers[top.path]; ok && !slices.Contains(fields, name) {
				return consent.Errorf(consent.EInvalid, "body is not a valid consent request: unknown field %q (names are case-sensitive)", path)
			}
			if top.names[name] {
				return consent.Errorf(consent.EInvalid, "body is not a valid consent request: member %q is given twice", path)
			}
			top.names[name] = true
			top.key, top.wantName = name, false
			continue
		}
		path := ""
		if top != nil {
			path = strings.TrimPrefix(top.path+"."+top.key, ".")
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, names: map[string]bool{}, path: path, wantName: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: path, key: "[]"})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

// structMembers are the member names of the objects of a consent request that
// decode into structs, by their path: the JSON names of the fields.
var structMembers = map[string][]string{
	"":        jsonNames(reflect.TypeFor[consentRequest]()),
	"choices": jsonNames(reflect.TypeFor[consent.Choices]()),
}

func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}

// jsonProblem says what is wrong with a body without echoing Go type names.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "malformed JSON"
	case errors.As(err, &typ) && typ.Field != "":
		return "field " + typ.Field + " has the wrong type"
	case errors.As(err, &typ):
		return "expected a JSON object"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed or empty JSON"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "malformed JSON"
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
		if _, ok := c.Categories[cat.ID]; !ok {
			return consent.Errorf(consent.EInvalid, "choices.categories.%s: missing; a decision answers every category explicitly", cat.ID)
		}
	}
	for _, p := range shown.Partners {
		if _, ok := c.Partners[p.ID]; !ok {
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: missing; a decision answers every partner shown explicitly", p.ID)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.Categories)) {
		granted := c.Categories[id]
		i := slices.IndexFunc(shown.Categories, func(cat consent.Category) bool { return cat.ID == id })
		switch {
		case i < 0:
			return consent.Errorf(consent.EInvalid, "choices.categories.%s: unknown category %q", id, id)
		case shown.Categories[i].Required && !granted:
			return consent.Errorf(consent.EInvalid, "choices.categories.%s: category %q is always on and cannot be refused", id, id)
		case !shown.Categories[i].Required && !fits(action, granted):
			return consent.Errorf(consent.EInvalid, "choices.categories.%s: action %s cannot set category %q to %t", id, action, id, granted)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.Partners)) {
		granted := c.Partners[id]
		i := slices.IndexFunc(shown.Partners, func(p consent.Partner) bool { return p.ID == id })
		switch {
		case i < 0 && site.Partner(id) != nil:
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: partner %q was not enabled on site %s in the banner answered, so the visitor was never asked about it", id, id, site.Key)
		case i < 0:
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: unknown partner %q", id, id)
		case !fits(action, granted):
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: action %s cannot set partner %q to %t", id, action, id, granted)
		case granted && !c.Categories[shown.Partners[i].Category]:
			return consent.Errorf(consent.EInvalid, "choices.partners.%s: partner %q is granted while its category %q is refused", id, id, shown.Partners[i].Category)
		}
	}
	return nil
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
