package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
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
// every field of the right type. It checks the shape, not the meaning (see validate).
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
	return &req, nil
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
// store, without the server-side fields (id, time, IP, user agent). The fingerprint is
// checked apart (see Server.knownFingerprint): that may take a read of the store.
func (st *site) validate(req *consentRequest) (*consent.Record, error) {
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
	if err := st.validateChoices(req.Action, req.Choices); err != nil {
		return nil, err
	}
	page, err := pageURL(req.URL)
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

// validateChoices accepts only known categories and partners, and only choices that
// fit the action: "reject all" can never carry a grant, "accept all" never a refusal.
func (st *site) validateChoices(action consent.Action, c consent.Choices) error {
	if len(c.Categories) == 0 {
		return consent.Errorf(consent.EInvalid, "choices.categories must hold an explicit answer per category")
	}
	for id, granted := range c.Categories {
		cat := st.Category(id)
		switch {
		case cat == nil:
			return consent.Errorf(consent.EInvalid, "unknown category %q", id)
		case cat.Required && !granted:
			return consent.Errorf(consent.EInvalid, "category %q is always on and cannot be refused", id)
		case !cat.Required && !fits(action, granted):
			return consent.Errorf(consent.EInvalid, "action %s cannot set category %q to %t", action, id, granted)
		}
	}
	for id, granted := range c.Partners {
		if st.Partner(id) == nil {
			return consent.Errorf(consent.EInvalid, "unknown partner %q", id)
		}
		if !fits(action, granted) {
			return consent.Errorf(consent.EInvalid, "action %s cannot set partner %q to %t", action, id, granted)
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
// (search terms, e-mail addresses in links) that a proof does not need.
func pageURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", consent.Errorf(consent.EInvalid, "url must be the absolute http(s) URL of the page")
	}
	u.RawQuery, u.Fragment, u.RawFragment, u.ForceQuery, u.User = "", "", "", false, nil
	return u.String(), nil
}

// expiry is when the banner asks again for the choices in r.
func (st *site) expiry(r *consent.Record) time.Time {
	return r.RecordedAt.Add(st.Lifetime(r.Choices))
}
