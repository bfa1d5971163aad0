package server

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
)

// FuzzDecodeConsentRequest feeds arbitrary bodies to the decoder and the validator:
// neither may panic, and whatever they accept must be a well-formed record.
func FuzzDecodeConsentRequest(f *testing.F) {
	f.Add([]byte(`{"site":"example.com","consent_id":"0b0d6a52-3f5e-4c43-9a49-6f0e2f7d4b11","action":"accept_all","fingerprint":"fp1","choices":{"categories":{"technical":true,"advertising":true},"partners":{"pixel":true}},"language":"en","url":"https://example.com/a?b#c","surface":"banner","gpc":false}`))
	f.Add([]byte(`{"site":"example.com","action":"reject_all","choices":{"categories":{"advertising":false}}}`))
	f.Add([]byte(`{"choices":{"categories":null,"partners":{"":true}}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"url":"https://example.com/\u0000?x"}{}`))
	f.Add([]byte(`{"site":"example.com","consent_id":"0b0d6a52-3f5e-4c43-9a49-6f0e2f7d4b11","action":"custom","fingerprint":"fp1","choices":{"categories":{"technical":true,"advertising":false,"Advertising":true},"partners":{"pixel":false,"off":true}},"language":"en","url":"https://example.com/a","surface":"banner","gpc":false,"GPC":true}`))
	st := &site{
		Site: &consent.Site{
			Key:        "example.com",
			Origins:    []string{"https://example.com"},
			Languages:  []string{"en", "de"},
			Categories: []consent.Category{{ID: "technical", Required: true}, {ID: "advertising"}},
			Partners:   []consent.Partner{{ID: "pixel", Enabled: true, Category: "advertising"}, {ID: "off", Category: "advertising"}},
		},
	}
	shown := &consent.Snapshot{Categories: st.Categories, Partners: st.Partners[:1]}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := decodeConsentRequest(body)
		if err != nil {
			if consent.ErrorCode(err) != consent.EInvalid {
				t.Fatalf("decode error %v is not EInvalid", err)
			}
			return
		}
		err = req.Validate(st.Site, "")
		if err == nil {
			err = req.ValidateChoices(st.Site, shown)
		}
		if err != nil {
			if consent.ErrorCode(err) != consent.EInvalid {
				t.Fatalf("validate error %v is not EInvalid", err)
			}
			return
		}
		r := req.Record(st.Site, consent.Arrival{})
		if strings.ContainsAny(r.URL, "?#") {
			t.Errorf("stored URL %q keeps a query or fragment", r.URL)
		}
		if id, err := uuid.Parse(r.ConsentID); err != nil || id.Version() != 4 {
			t.Errorf("accepted consent id %q", r.ConsentID)
		}
		if !r.Action.Valid() || !r.Surface.Valid() {
			t.Errorf("accepted record %+v", r)
		}
		if r.Action == consent.ActionRejectAll && st.Lifetime(r.Choices) != st.Cookie.RefusalLifetime {
			t.Errorf("reject_all granted something: %+v", r.Choices)
		}
		if len(r.Choices.Categories) != 2 || len(r.Choices.Partners) != 1 || r.Choices.Partners["pixel"] && !r.Choices.Categories["advertising"] {
			t.Errorf("accepted choices %+v: want an answer per category and per partner shown, a partner only with its category", r.Choices)
		}
		if !strings.HasPrefix(r.URL, "https://example.com/") && r.URL != "https://example.com" {
			t.Errorf("accepted a page %q on another origin", r.URL)
		}
	})
}
