package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mixvoip/consentd/api"
)

// TestDPOErase: `consentd erase` says what goes and what stays, erases only once
// confirmed (--yes where no one can answer), and a second erasure finds nothing
// left to erase; the proof still verifies afterwards.
func TestDPOErase(t *testing.T) {
	f := MustDPOFixture(t)

	stdout, _, err := runConsentd(f.dpo("erase", f.changedMind)...)
	if err == nil || !strings.Contains(err.Error(), "confirm with --yes") {
		t.Fatalf("erase without --yes and without a terminal: %v, want a refusal naming --yes", err)
	}
	mustSay(t, stdout, "the confirmation does not say what goes and what stays", "2 records on mixvoip.com", "IP prefix", "It keeps", "receipts")
	if out := MustRun(t, f.dpo("proof", "--json", f.changedMind)...); !strings.Contains(out, `"user_agent"`) {
		t.Fatalf("refused erasure erased the user agent:\n%s", out)
	}

	out := MustRun(t, f.dpo("erase", "--yes", f.changedMind)...)
	mustSay(t, out, "erasure", "erased: 2 records of consent "+f.changedMind+"\n")
	out = MustRun(t, f.dpo("erase", "--yes", f.changedMind)...)
	mustSay(t, out, "second erasure", "erased: 2 records of consent "+f.changedMind+" (2 erased before)\n")

	var p api.Proof
	if err := json.Unmarshal([]byte(MustRun(t, f.dpo("proof", "--json", f.changedMind)...)), &p); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Records {
		if r.UserAgent != "" || r.IPPrefix != "" || !r.ReceiptValid {
			t.Errorf("record %s after erasure: user agent %q, IP prefix %q, receipt valid %t", r.ID, r.UserAgent, r.IPPrefix, r.ReceiptValid)
		}
	}

	t.Setenv("CONSENTD_TOKEN", "")
	mustFailSaying(t, []string{"erase", "--yes", f.mixvoip, "--url", f.url, "--token-file", f.voxbi}, "404 Not Found", "no records for this consent id")
}

// TestDPOAudit: `consentd audit` lists the DPO's calls with their outcome, pages
// through the log with --after, and with --consent finds the calls about one
// visitor only.
func TestDPOAudit(t *testing.T) {
	f := MustDPOFixture(t)
	MustRun(t, f.dpo("proof", f.changedMind)...)
	MustRun(t, f.dpo("erase", "--yes", f.mixvoip)...)

	out := MustRun(t, f.dpo("audit", "--consent", f.mixvoip)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The erase command reads the proof first, to say what it will erase.
	for i, call := range []string{"", "GET /v1/dpo/consents/{consent_id}", "DELETE /v1/dpo/consents/{consent_id}"} {
		if i > 0 && (len(lines) != 3 || !strings.Contains(lines[i], " dpo ") || !strings.Contains(lines[i], call) || !strings.HasSuffix(lines[i], "200 OK")) {
			t.Errorf("audit of one consent id: want line %d %s by the token dpo, answered 200 OK:\n%s", i, call, out)
		}
	}
	if strings.Contains(out, f.mixvoip) {
		t.Errorf("the audit log shows the consent id itself:\n%s", out)
	}

	first := MustRun(t, f.dpo("audit", "--limit", "1")...)
	_, cursor, found := strings.Cut(first, "consentd audit --after ")
	if !found {
		t.Fatalf("a full page names no next page:\n%s", first)
	}
	next := MustRun(t, f.dpo("audit", "--limit", "1", "--after", strings.TrimSpace(cursor))...)
	if strings.Split(next, "\n")[1] == strings.Split(first, "\n")[1] {
		t.Errorf("the next page repeats the first:\n%s\n%s", first, next)
	}

	// A token limited to a site sees its own calls only: its first call is not in the
	// log yet when the log is read, its second call sees the first.
	MustRun(t, "audit", "--url", f.url, "--token-file", f.voxbi)
	own := MustRun(t, "audit", "--url", f.url, "--token-file", f.voxbi)
	if strings.Contains(own, " dpo ") || !strings.Contains(own, " voxbi ") {
		t.Errorf("audit with a token limited to voxbi.com: want its own calls only:\n%s", own)
	}
}

// TestDPOVerifyOnline: `consentd verify --url` has the running consentd check its
// log, and needs a token for every site.
func TestDPOVerifyOnline(t *testing.T) {
	f := MustDPOFixture(t)
	out := MustRun(t, "verify", "--url", f.url, "--token-file", f.allSites)
	mustSay(t, out, "online verification", "the store of "+f.url+": OK, log "+testOrigin+": 5 leaves", "5 records verify against their leaves")
	t.Setenv("CONSENTD_TOKEN", "")
	mustFailSaying(t, []string{"verify", "--url", f.url, "--token-file", f.voxbi}, "403 Forbidden")
	mustFailSaying(t, []string{"verify", "--url", f.url, "--token-file", f.allSites, "--checkpoint", "x"}, "consentd monitor")
}

// TestDPOCheckpoint: `consentd checkpoint` shows the log's head once it verifies,
// and how old it is, and keeps it in a file that `consentd verify-receipt
// --against` takes.
func TestDPOCheckpoint(t *testing.T) {
	f := MustDPOFixture(t)
	kept := filepath.Join(t.TempDir(), "checkpoint")
	out := MustRun(t, "checkpoint", "--url", f.url, "--out", kept)
	mustSay(t, out, "checkpoint", "log "+testOrigin+": 5 leaves, root ", "verified with the keys "+f.url+" publishes", "\nsigned 20", " ago\n", "kept in "+kept)
	signed, err := os.ReadFile(kept)
	if err != nil || !strings.HasPrefix(string(signed), testOrigin+"\n5\n") {
		t.Errorf("kept checkpoint %q, %v", signed, err)
	}
	if _, err := readCheckpointFile(kept); err != nil {
		t.Errorf("the kept checkpoint does not read as one: %v", err)
	}
}

// TestProofFileVerifiesOffline: the proof the console offers for download is one
// file that `consentd verify-receipt` checks offline, with the keys it holds.
func TestProofFileVerifiesOffline(t *testing.T) {
	f := MustDPOFixture(t)
	secret, _, _ := strings.Cut(MustRead(t, f.allSites), "\n")
	req, _ := http.NewRequest(http.MethodGet, f.url+"/dpo/consents/"+f.changedMind+"/proof.json", nil)
	req.AddCookie(&http.Cookie{Name: "consentd_dpo", Value: secret})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("proof download: %d %q\n%.300s", resp.StatusCode, resp.Header.Get("Content-Disposition"), body)
	}
	file := filepath.Join(t.TempDir(), "proof.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out := MustRun(t, "verify-receipt", file, "--public-keys", file)
	mustSay(t, out, "verify-receipt of the console's proof", "consent "+f.changedMind+", 2 records, every receipt verifies in the log "+testOrigin)
}
