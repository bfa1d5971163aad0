package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
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
// of two answers counted. body must be valid JSON: it walks the bytes, which costs
// a request next to nothing, where json.Decoder.Token would allocate every token.
func checkMembers(body []byte) error {
	type frame struct {
		object bool
		path   string   // "choices.categories"; "" for the body
		start  int      // where its members' names begin in names
		fields []string // the names allowed, for an object that decodes into a struct
	}
	// On the stack for a consent request's few objects and members.
	var frameBuf [8]frame
	var nameBuf [32][]byte
	stack, names := frameBuf[:0], nameBuf[:0]
	var key []byte    // the last member's name in the innermost object
	wantName := false // a member's name comes next
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			end := stringEnd(body, i)
			if !wantName {
				i = end - 1
				continue
			}
			top := &stack[len(stack)-1]
			name := body[i+1 : end-1]
			if bytes.IndexByte(name, '\\') >= 0 {
				var unescaped string
				if err := json.Unmarshal(body[i:end], &unescaped); err == nil {
					name = []byte(unescaped)
				}
			}
			if top.fields != nil && !isField(top.fields, name) {
				return consent.Errorf(consent.EInvalid, "body is not a valid consent request: unknown field %q (names are case-sensitive)", memberPath(top.path, name))
			}
			for _, n := range names[top.start:] {
				if bytes.Equal(n, name) {
					return consent.Errorf(consent.EInvalid, "body is not a valid consent request: member %q is given twice", memberPath(top.path, name))
				}
			}
			names = append(names, name)
			key, wantName = name, false
			i = end - 1
		case '{', '[':
			f := frame{object: body[i] == '{', start: len(names)}
			if len(stack) > 0 {
				if top := stack[len(stack)-1]; top.object {
					f.path = memberPath(top.path, key)
				} else {
					f.path = top.path + ".[]"
				}
			}
			if f.object {
				f.fields = structMembers[f.path]
			}
			stack = append(stack, f)
			wantName = f.object
		case '}', ']':
			names = names[:stack[len(stack)-1].start]
			stack = stack[:len(stack)-1]
			wantName = false
		case ',':
			wantName = stack[len(stack)-1].object
		}
	}
	return nil
}

func isField(fields []string, name []byte) bool {
	for _, f := range fields {
		if f == string(name) {
			return true
		}
	}
	return false
}

// memberPath names the member name of the object at path: choices.categories.x.
func memberPath(path string, name []byte) string {
	if path == "" {
		return string(name)
	}
	return path + "." + string(name)
}

// stringEnd returns the index just after the JSON string that starts at body[start].
func stringEnd(body []byte, start int) int {
	for i := start + 1; i < len(body); i++ {
		switch body[i] {
		case '\\':
			i++ // the escaped character
		case '"':
			return i + 1
		}
	}
	return len(body)
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
