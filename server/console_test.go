package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// session returns the headers of a console request with the session of secret,
// sent from the console's own pages (as browsers say it).
func session(secret string) map[string]string {
	return map[string]string{"Cookie": "consentd_dpo=" + secret, "Sec-Fetch-Site": "same-origin",
		"Content-Type": "application/x-www-form-urlencoded"}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestConsoleForms: the console's forms that change something need the session,
// its CSRF token and a request from the console's own pages; each refusal erases
// nothing and says why, as a page. Without a session a page sends the browser to
// sign in; a wrong token at sign-in is refused and sets no cookie.
func TestConsoleForms(t *testing.T) {
	base := MustFixture(t, false)
	f, all, voxbi := MustServerOn(t, MustFreshStore(t), base.cfg)
	body := f.validBody(t)
	if rec := f.post(t, body, nil); rec.Code != http.StatusCreated {
		t.Fatal(rec.Body)
	}
	id := body["consent_id"].(string)
	erase := "/dpo/consents/" + id + "/erase"
	page := f.do(t, http.MethodGet, "/dpo/erase?consent_id="+id, "", session(all))
	m := csrfField.FindStringSubmatch(page.Body.String())
	if page.Code != http.StatusOK || m == nil {
		t.Fatalf("the erasure page: %d, CSRF token found %t", page.Code, m != nil)
	}
	csrf := "csrf=" + m[1]
	erased := func() bool {
		rec := f.do(t, http.MethodGet, "/v1/dpo/consents/"+id, "", bearer(all))
		return !strings.Contains(rec.Body.String(), `"user_agent":"Mozilla`)
	}

	crossSite := session(all)
	crossSite["Sec-Fetch-Site"] = "cross-site"
	otherOrigin := session(all)
	delete(otherOrigin, "Sec-Fetch-Site")
	otherOrigin["Origin"] = "https://evil.example"
	for _, tt := range []struct {
		name   string
		header map[string]string
		body   string
		status int
		says   string
	}{
		{"no CSRF token", session(all), "", http.StatusForbidden, "not one of this session"},
		{"another session's CSRF token", session(all), "csrf=" + strings.Repeat("0", 32), http.StatusForbidden, "not one of this session"},
		{"from another site", crossSite, csrf, http.StatusForbidden, "sent from another site"},
		{"from another origin", otherOrigin, csrf, http.StatusForbidden, "sent from another site"},
		{"a token limited to another site", session(voxbi), csrf, http.StatusForbidden, "not one of this session"},
		{"no session", map[string]string{"Sec-Fetch-Site": "same-origin"}, csrf, http.StatusSeeOther, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(t, http.MethodPost, erase, tt.body, tt.header)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.says) || erased() {
				t.Errorf("POST %s: %d, erased %t, want %d saying %q:\n%.300s", erase, rec.Code, erased(), tt.status, tt.says, rec.Body)
			}
			if tt.status == http.StatusSeeOther && rec.Header().Get("Location") != "/dpo/signin" {
				t.Errorf("without a session: to %q, want the sign-in page", rec.Header().Get("Location"))
			}
		})
	}

	if rec := f.do(t, http.MethodPost, erase, csrf, session(all)); rec.Code != http.StatusOK || !erased() {
		t.Fatalf("the erasure with the session's form: %d, erased %t:\n%.300s", rec.Code, erased(), rec.Body)
	}

	rec := f.do(t, http.MethodPost, "/dpo/signin", "token="+url.QueryEscape("cdt_wrong"), map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"})
	if rec.Code != http.StatusUnauthorized || rec.Header().Get("Set-Cookie") != "" || !strings.Contains(rec.Body.String(), "This token is not valid") {
		t.Errorf("sign-in with a wrong token: %d, Set-Cookie %q:\n%.300s", rec.Code, rec.Header().Get("Set-Cookie"), rec.Body)
	}
	rec = f.do(t, http.MethodPost, "/dpo/signin", "token="+url.QueryEscape(all), map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"})
	if c := rec.Header().Get("Set-Cookie"); rec.Code != http.StatusSeeOther || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "Secure") || !strings.Contains(c, "SameSite=Strict") {
		t.Errorf("sign-in: %d, Set-Cookie %q", rec.Code, c)
	}
}
