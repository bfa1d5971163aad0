package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/proof"
)

// TestVerifyReceipt checks receipts offline with the keys consentd published: a
// visitor's download (GET /v1/consents/{id}, as their page saves it), one record of
// it, one receipt; no longer once a receipt or a record in it is changed; and, with
// --against, that the records are still in a newer tree of the log.
func TestVerifyReceipt(t *testing.T) {
	m, addr, _ := MustServeWithRefusals(t, 0)
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
	MustFetch(t, addr, "/v1/consents/"+id, download) // both receipts against the tree of size 2
	same := filepath.Join(dir, "checkpoint-2")
	MustFetch(t, addr, "/v1/log/checkpoint", same)
	MustPost(t, addr)
	newer := filepath.Join(dir, "checkpoint-3")
	MustFetch(t, addr, "/v1/log/checkpoint", newer)
	url := "http://" + addr

	var doc map[string]any
	if err := json.Unmarshal([]byte(MustRead(t, download)), &doc); err != nil {
		t.Fatal(err)
	}
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
	first := doc["records"].([]any)[0].(map[string]any)
	oneRecord := MustWriteJSON(t, filepath.Join(dir, "record.json"), first)
	oneReceipt := MustWriteJSON(t, filepath.Join(dir, "receipt.json"), first["receipt"])

	other, err := proof.NewEphemeralKeyring()
	if err != nil {
		t.Fatal(err)
	}
	otherDoc, err := other.Published(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	otherKeys := MustWriteJSON(t, filepath.Join(dir, "other-keys.json"), otherDoc)
	signer, err := MustKeyring(t, m.KeysDir).LogSigner(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signed := func(name string, size int64) string {
		cp, err := signer.SignTree(size, tlog.Hash{7})
		if err != nil {
			t.Fatal(err)
		}
		return MustWriteFile(t, filepath.Join(dir, name), cp.Signed)
	}
	splitView := signed("split-view", 2)
	older := signed("older", 1)

	tests := []struct {
		name   string
		args   []string
		err    string // in the error, "" for none
		stdout []string
	}{
		{"as downloaded", []string{"--public-keys", keys, download}, "",
			[]string{download + ": consent " + id + ", 2 records, every receipt verifies in the log " + testOrigin, " reject_all ", " accept_all ", "advertising=no technical=yes", "  verified\n"}},
		{"flags after the file", []string{download, "--public-keys", keys}, "", []string{"every receipt verifies"}},
		{"keys fetched from --url", []string{download, "--url", url}, "", []string{"every receipt verifies"}},
		{"one record", []string{"--public-keys", keys, oneRecord}, "", []string{oneRecord + ": 1 record, every receipt verifies", first["record_id"].(string)}},
		{"one receipt", []string{"--public-keys", keys, oneReceipt}, "", []string{oneReceipt + ": 1 record, every receipt verifies", first["record_id"].(string)}},
		{"a receipt changed", []string{"--public-keys", keys, changed("receipt-changed.json", func(rs []map[string]any) {
			rc := rs[1]["receipt"].(map[string]any)
			rc["decision"] = strings.Replace(rc["decision"].(string), "accept_all", "reject_all", 1)
		})}, errReceipts.Error(), []string{"its decision is not the one its leaf covers", "NOT VERIFIED", "1 problem"}},
		{"a record changed", []string{"--public-keys", keys, changed("record-changed.json", func(rs []map[string]any) {
			rs[0]["choices"].(map[string]any)["categories"].(map[string]any)["advertising"] = true
			rs[0]["action"] = "accept_all"
		})}, errReceipts.Error(), []string{"the record's action, choices differ from what its receipt proves"}},
		{"a receipt missing", []string{"--public-keys", keys, changed("missing.json", func(rs []map[string]any) {
			delete(rs[0], "receipt")
		})}, errReceipts.Error(), []string{": no receipt"}},
		{"a record of another consent id", []string{"--public-keys", keys, changed("other-id.json", func(rs []map[string]any) {
			rs[0]["consent_id"] = uuid.NewString()
		})}, errReceipts.Error(), []string{"the record's consent id differs from what its receipt proves"}},
		{"keys that did not sign", []string{"--public-keys", otherKeys, download}, errReceipts.Error(), []string{"which is not known here", "2 problems"}},
		{"against a newer checkpoint at consentd", []string{"--public-keys", keys, download, "--against", url}, "",
			[]string{"still in the tree of size 3", "every receipt verifies, and every record is still in the newer tree"}},
		{"against a newer checkpoint file, proofs from --url", []string{download, "--url", url, "--against", newer}, "", []string{"still in the tree of size 3"}},
		{"against the same checkpoint, no URL needed", []string{"--public-keys", keys, download, "--against", same}, "", []string{"still in the tree of size 2"}},
		{"against a newer checkpoint file without a URL", []string{"--public-keys", keys, download, "--against", newer}, errReceipts.Error(), []string{"needs a consistency proof: give --url"}},
		{"against another root of the same size", []string{"--public-keys", keys, download, "--against", splitView}, errReceipts.Error(), []string{"NOT in the newer tree: two roots for the tree of size 2 (a split view)"}},
		{"against an older checkpoint", []string{"--public-keys", keys, download, "--against", older}, errReceipts.Error(), []string{"is older (size 1): give a newer one"}},
		{"against what is not a checkpoint", []string{"--public-keys", keys, download, "--against", keys}, errReceipts.Error(), []string{"--against " + keys + ": " + keys + ": not a signed note"}},
		{"not receipts", []string{"--public-keys", keys, keys}, keys + ": not a receipt, a record with its receipt, or a visitor's records", nil},
		{"without keys", []string{download}, "give the keys consentd publishes: --public-keys keys.json", nil},
		{"without a file", []string{"--public-keys", keys}, errUsage.Error(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runConsentd(append([]string{"verify-receipt"}, tt.args...)...)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout:\n%s\nwant %q in it", stdout, want)
				}
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
