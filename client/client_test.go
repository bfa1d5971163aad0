package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mixvoip/consentd/client"
)

// TestErrors: an error answer of consentd becomes an *Error with its status, code
// and message; one of a proxy in front of it (HTML) still says the status; an
// answer larger than any document is refused, not read whole.
func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		code    string
		says    string
	}{
		{"consentd's error", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":{"code":"forbidden","message":"token \"x\" may not see site a.com"}}`)
		}, 403, "forbidden", `consentd answered 403 Forbidden: token "x" may not see site a.com`},
		{"a proxy's page", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		}, 502, "", "consentd answered 502 Bad Gateway"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"records":[`+strings.Repeat(" ", client.MaxDocument)+`]}`)
		}, 0, "", "answered more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := client.New(srv.URL, "cdt_x")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Records(context.Background(), nil)
			var answer *client.Error
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("error %v, want one saying %q", err, tt.says)
			}
			if tt.status != 0 && (!errors.As(err, &answer) || answer.Status != tt.status || answer.Code != tt.code) {
				t.Errorf("error %#v, want status %d, code %q", err, tt.status, tt.code)
			}
		})
	}
}

// TestCheckpoint: the checkpoint comes with the time consentd signed it, and a log
// without one is ErrNoCheckpoint, not a failure; another 404 is a failure.
func TestCheckpoint(t *testing.T) {
	signedAt := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	answer := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			t.Errorf("a public read sent %q", r.Header.Get("Authorization"))
		}
		w.Header().Set("Last-Modified", signedAt.Format(http.TimeFormat))
		io.WriteString(w, "log\n2\nroot\n")
	}
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"a checkpoint", answer, nil},
		{"none yet", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":{"code":"not_found","message":"no checkpoint was signed yet"}}`)
		}, client.ErrNoCheckpoint},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, _ := client.New(srv.URL, "")
			signed, at, err := c.Checkpoint(context.Background())
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if tt.want == nil && (string(signed) != "log\n2\nroot\n" || !at.Equal(signedAt)) {
				t.Errorf("checkpoint %q signed at %v, want the note and %v", signed, at, signedAt)
			}
		})
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c, _ := client.New(srv.URL, "")
	if _, _, err := c.Checkpoint(context.Background()); err == nil || errors.Is(err, client.ErrNoCheckpoint) {
		t.Errorf("a 404 of something else than consentd's log: %v, want a failure", err)
	}
}
