package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/logtest"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/translog"
)

// TestKeygenWhileServing: a key that keygen adds while consentd runs signs receipts
// and checkpoints from then on, without a restart: picked up when the key directory
// changes, or on SIGHUP.
func TestKeygenWhileServing(t *testing.T) {
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var hupSent time.Time
	tests := []struct {
		name   string
		every  time.Duration // how often the watcher looks at the key directory
		reload func()        // what makes consentd reload, after keygen
	}{
		{"the key directory changes", 20 * time.Millisecond, func() {}},
		{"SIGHUP", time.Hour, func() {
			// Again now and then: the watcher may not listen yet.
			if time.Since(hupSent) > 200*time.Millisecond {
				syscall.Kill(os.Getpid(), syscall.SIGHUP)
				hupSent = time.Now()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Until the watcher listens for SIGHUP, it would end the test binary.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)

			m := NewMainOn(t, MustServedDir(t, 1), io.Discard)
			m.ReloadEvery = tt.every
			addr, stop := MustStart(t, m)
			old := publishedKeys(t, addr)

			stdout, _, err := runConsentd("keygen", "--keys", m.KeysDir)
			if err != nil || !strings.Contains(stdout, "a running consentd signs with it within seconds") {
				t.Fatalf("keygen: %v, %q", err, stdout)
			}
			newer := publishedKeyIDs(t, m.KeysDir)[1]
			wait.MustUntil(t, "the new key is published beside the old", func() (bool, string) {
				tt.reload()
				keys := publishedKeys(t, addr)
				return slices.Equal(keys, append(old, newer)), fmt.Sprint(keys)
			})
			if kid := MustReceiptKeyID(t, addr, cfg, m.KeysDir); kid != newer {
				t.Errorf("the checkpoint of a receipt after keygen is signed by %q, want the new key %s", kid, newer)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			cp, err := MustOpenStore(t, m).LastCheckpoint(context.Background())
			if err != nil || signedBy(t, m.KeysDir, testOrigin, cp.Signed) != newer {
				t.Errorf("the store's last checkpoint: %v; want it signed by the new key %s:\n%s", err, newer, cp.Signed)
			}
		})
	}
}

// TestKeyReloadKeepsSigningKeys: a key directory that lost a key that signed in the
// store is not reloaded; the keys loaded before keep signing and being published.
func TestKeyReloadKeepsSigningKeys(t *testing.T) {
	var log logtest.Buffer
	m := NewMainOn(t, MustServedDir(t, 1), &log)
	addr, _ := MustStart(t, m)
	old := publishedKeyIDs(t, m.KeysDir)
	files, err := filepath.Glob(filepath.Join(m.KeysDir, "*.key"))
	if err != nil || len(files) != 1 {
		t.Fatalf("key files %v, %v", files, err)
	}
	if _, _, err := runConsentd("keygen", "--keys", m.KeysDir); err != nil {
		t.Fatal(err)
	}
	wait.MustUntil(t, "the new key is published", func() (bool, string) {
		keys := publishedKeys(t, addr)
		return len(keys) == 2, fmt.Sprint(keys)
	})

	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	wait.MustUntil(t, "the reload is refused", func() (bool, string) {
		s := log.String()
		return strings.Contains(s, "no longer holds "+old[0]+", which signed in "+m.DBPath), s
	})
	if keys := publishedKeys(t, addr); len(keys) != 2 || keys[0] != old[0] {
		t.Errorf("published keys = %v, want the old one still among them", keys)
	}
}

// TestVerifyAfterRotation: with the keys published before a key was added while
// records came in, verify says which key it lacks instead of reporting tampering;
// with the keys published after, the store verifies.
func TestVerifyAfterRotation(t *testing.T) {
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMainOn(t, MustServedDir(t, 1), io.Discard)
	addr, stop := MustStart(t, m)
	dir := t.TempDir()
	before, after := filepath.Join(dir, "keys-before.json"), filepath.Join(dir, "keys-after.json")
	MustFetch(t, addr, "/v1/keys", before)

	var posted atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if status, err := postConsent(addr, cfg, "mixvoip.com", consent.ActionRejectAll, uuid.NewString()); err != nil || status != http.StatusCreated {
				t.Errorf("post: %d, %v", status, err)
				return
			}
			posted.Add(1)
		}
	})
	wait.MustUntil(t, "5 records are posted", func() (bool, string) {
		n := posted.Load()
		return n >= 5, fmt.Sprint(n)
	})
	if _, _, err := runConsentd("keygen", "--keys", m.KeysDir); err != nil {
		t.Fatal(err)
	}
	wait.MustUntil(t, "the new key is published", func() (bool, string) {
		keys := publishedKeys(t, addr)
		return len(keys) == 2, fmt.Sprint(keys)
	})
	atLeast := posted.Load() + 5
	wait.MustUntil(t, "5 more records are posted", func() (bool, string) {
		n := posted.Load()
		return n >= atLeast, fmt.Sprint(n)
	})
	close(done)
	wg.Wait()
	MustFetch(t, addr, "/v1/keys", after)
	if err := stop(); err != nil { // signs a checkpoint with the new key
		t.Fatal(err)
	}

	newer := publishedKeyIDs(t, m.KeysDir)[1]
	stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--public-keys", before)
	want := "cannot verify " + m.DBPath + ": the log's checkpoint is signed by key " + noteKeyName(t, m.KeysDir, newer)
	wantKey := ", which is not among the keys given; fetch the current keys (GET /v1/keys) or use the key directory"
	if !errors.Is(err, errMissingKey) || !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, wantKey) || strings.Contains(stdout, "BROKEN") {
		t.Errorf("verify with the keys from before the rotation: %v, %q; want %q...%q", err, stdout, want, wantKey)
	}
	if stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--public-keys", after); err != nil || !strings.Contains(stdout, "OK, ") {
		t.Errorf("verify with the keys from after the rotation: %v, %q", err, stdout)
	}
}

// MustReceiptKeyID records a refusal and returns the id of the key in keysDir that
// signed the checkpoint of its receipt.
func MustReceiptKeyID(tb testing.TB, addr string, cfg *config.Config, keysDir string) string {
	tb.Helper()
	id := uuid.NewString()
	if status, err := postConsent(addr, cfg, "mixvoip.com", consent.ActionRejectAll, id); err != nil || status != http.StatusCreated {
		tb.Fatalf("post: %d, %v", status, err)
	}
	resp, err := http.Get("http://" + addr + "/v1/consents/" + id)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var history struct {
		Records []consent.Record `json:"records"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&history); err != nil || len(history.Records) != 1 || history.Records[0].Receipt == nil {
		tb.Fatalf("history of %s: %+v, %v", id, history, err)
	}
	var p translog.Proof
	if err := p.UnmarshalText([]byte(history.Records[0].Receipt.Proof)); err != nil {
		tb.Fatal(err)
	}
	return signedBy(tb, keysDir, testOrigin, p.Checkpoint)
}

// MustFetch writes what GET path answers to the file out.
func MustFetch(tb testing.TB, addr, path, out string) {
	tb.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
	}
	if err := os.WriteFile(out, data, 0o600); err != nil {
		tb.Fatal(err)
	}
}
