package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
)

// TestVerifyReceipts checks a visitor's download (GET /v1/consents/{id}, as their page
// saves it) offline, with the keys consentd published: it verifies as downloaded, and
// no longer once a receipt or a record in it is changed.
func TestVerifyReceipts(t *testing.T) {
	m, addr, _, _ := MustServeWithRefusals(t, 0)
	cfg, err := config.Load(m.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	for _, action := range []consent.Action{consent.ActionRejectAll, consent.ActionAcceptAll} {
		if status, err := postConsent(addr, cfg, "mixvoip.com", action, id); err != nil || status != http.StatusCreated {
			t.Fatalf("post %s: %d, %v", action, status, err)
		}
	}
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.json")
	MustFetch(t, addr, "/v1/keys", keys)
	download := filepath.Join(dir, "consent-"+id+".json")
	MustFetch(t, addr, "/v1/consents/"+id, download)

	other, err := proof.NewEphemeralKeyring()
	if err != nil {
		t.Fatal(err)
	}
	otherKeys := MustWriteJSON(t, filepath.Join(dir, "other-keys.json"), map[string]any{"keys": other.Public()})
	// changed writes the download with change applied to its records (oldest first).
	changed := func(name string, change func(records []map[string]any)) string {
		var doc map[string]any
		if err := json.Unmarshal([]byte(MustRead(t, download)), &doc); err != nil {
			t.Fatal(err)
		}
		var records []map[string]any
		for _, r := range doc["records"].([]any) {
			records = append(records, r.(map[string]any))
		}
		change(records)
		return MustWriteJSON(t, filepath.Join(dir, name), doc)
	}

	tests := []struct {
		name   string
		args   []string
		err    string // in the error, "" for none
		stdout string
	}{
		{"as downloaded", []string{"--public-keys", keys, download}, "", download + ": consent " + id + ", 2 records, every receipt verifies"},
		{"flags after the file", []string{download, "--public-keys", keys}, "", "every receipt verifies"},
		{"a receipt changed", []string{"--public-keys", keys, changed("receipt.json", func(rs []map[string]any) {
			rs[1]["receipt"].(map[string]any)["action"] = "reject_all"
		})}, errReceipts.Error(), "NOT VERIFIED: " + proof.ErrBadSignature.Error()},
		{"a record changed", []string{"--public-keys", keys, changed("record.json", func(rs []map[string]any) {
			rs[0]["choices"].(map[string]any)["categories"].(map[string]any)["advertising"] = true
		})}, errReceipts.Error(), "NOT VERIFIED: the record does not say what its signed receipt says"},
		{"a receipt missing", []string{"--public-keys", keys, changed("missing.json", func(rs []map[string]any) {
			delete(rs[0], "receipt")
		})}, errReceipts.Error(), "NOT VERIFIED: no receipt"},
		{"a record of another consent id", []string{"--public-keys", keys, changed("other-id.json", func(rs []map[string]any) {
			rs[0]["consent_id"] = uuid.NewString()
		})}, errReceipts.Error(), "1 of 2 receipts do NOT verify"},
		{"keys that did not sign", []string{"--public-keys", otherKeys, download}, errReceipts.Error(), `NOT VERIFIED: proof: no published key "`},
		{"not a download", []string{"--public-keys", keys, keys}, keys + ": not a visitor's records", ""},
		{"without keys", []string{download}, errUsage.Error(), ""},
		{"without a file", []string{"--public-keys", keys}, errUsage.Error(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runConsentd(append([]string{"verify-receipts"}, tt.args...)...)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout:\n%s\nwant %q in it", stdout, tt.stdout)
			}
		})
	}
}

// MustWriteJSON writes v as JSON to path and returns path.
func MustWriteJSON(tb testing.TB, path string, v any) string {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
