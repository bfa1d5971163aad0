package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/bolt"
)

// TestVerifyWithPublicKeys verifies a backup with nothing but the keys consentd
// published at GET /v1/keys, as an auditor without the private keys would.
func TestVerifyWithPublicKeys(t *testing.T) {
	m, addr, served, stop := MustServeWithRefusals(t, 3)
	dir := t.TempDir()
	published := filepath.Join(dir, "keys.json")
	resp, err := http.Get("http://" + addr + "/v1/keys")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	os.WriteFile(published, data, 0o644)
	keys, err := proof.ReadPublicKeys(bytes.NewReader(data))
	if err != nil || len(keys) != 1 {
		t.Fatalf("published keys %s: %v", data, err)
	}
	signer := keys[0].ID
	stop() // signs a checkpoint
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	other, err := proof.NewEphemeralKeyring()
	if err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "other-keys.json")
	data, _ = json.Marshal(map[string]any{"keys": other.Public()})
	os.WriteFile(unknown, data, 0o644)
	otherDir := filepath.Join(dir, "other-keys")
	if _, err := proof.Generate(otherDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	notKeys := filepath.Join(dir, "not-keys.json")
	os.WriteFile(notKeys, []byte(`{"status":"ok"}`), 0o644)

	tests := []struct {
		name   string
		args   []string
		broken bool
		want   string // in stdout if broken or fine, in the error otherwise
	}{
		{"the published keys", []string{"--public-keys", published}, false, "OK, 3 records, every link verifies, 1 signed checkpoints agree"},
		{"keys that did not sign the checkpoint", []string{"--public-keys", unknown}, false, "cannot verify " + m.DBPath + ": the checkpoint at place 3 is signed by key " + signer + ", which is not among the keys given; fetch the current keys (GET /v1/keys) or use the key directory"},
		{"a key directory without the key that signed", []string{"--keys", otherDir}, false, "cannot verify " + m.DBPath + ": the checkpoint at place 3 is signed by key " + signer + ", which is not among the keys given; restore " + otherDir + " from a backup"},
		{"a key directory without keys", []string{"--keys", filepath.Join(dir, "no-keys")}, false, filepath.Join(dir, "no-keys") + " holds no keys: give the directory of the keys that signed (--keys), or the keys consentd publishes (--public-keys)"},
		{"a file without keys", []string{"--public-keys", notKeys}, false, notKeys + ": proof: public keys: none found"},
		{"private and public keys at once", []string{"--public-keys", published, "--keys", m.KeysDir}, false, "--keys and --public-keys exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, err := runConsentd(append([]string{"verify", "--db", m.DBPath}, tt.args...)...)
			switch {
			case tt.broken:
				if !errors.Is(err, errBroken) || !strings.Contains(stdout, "BROKEN") || !strings.Contains(stdout, tt.want) {
					t.Errorf("err = %v, stdout %q; want broken: %s", err, stdout, tt.want)
				}
			case strings.HasPrefix(tt.want, "OK"):
				if err != nil || !strings.Contains(stdout, tt.want) {
					t.Errorf("err = %v, stdout %q; want %s", err, stdout, tt.want)
				}
			case strings.HasPrefix(tt.want, "cannot verify"):
				if !errors.Is(err, errMissingKey) || strings.Contains(stdout, "BROKEN") || !strings.Contains(stdout, tt.want) {
					t.Errorf("err = %v, stdout %q; want %s", err, stdout, tt.want)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want %s", err, tt.want)
				}
			}
		})
	}
}

// TestVerifyArchivedCheckpoints: the newest records cut off, with every checkpoint
// in the file deleted, pass a plain verify; the checkpoints an auditor fetched
// before still catch it.
func TestVerifyArchivedCheckpoints(t *testing.T) {
	m, _, served, stop := MustServeWithRefusals(t, 3)
	stop() // signs a checkpoint of place 3
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	s, err := bolt.Open(m.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := s.LastCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// As an auditor keeps what GET /v1/dpo/checkpoint answers.
	archive := filepath.Join(t.TempDir(), "checkpoint.json")
	data, _ := json.Marshal(cp)
	if err := os.WriteFile(archive, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--keys", m.KeysDir, "--checkpoint", archive); err != nil || !strings.Contains(stdout, "1 signed checkpoints agree, and 1 archived ones") {
		t.Fatalf("before the cut: %v, %q", err, stdout)
	}

	db, err := bbolt.Open(m.DBPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		chain := tx.Bucket([]byte("chain"))
		k, entry := chain.Cursor().Last()
		if err := tx.Bucket([]byte("records")).Delete(entry[:16]); err != nil {
			return err
		}
		if err := chain.Delete(k); err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte("checkpoints")); err != nil {
			return err
		}
		_, err := tx.CreateBucket([]byte("checkpoints"))
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	if stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--keys", m.KeysDir); err != nil || !strings.Contains(stdout, "OK, 2 records") {
		t.Fatalf("without the archive: %v, %q; the cut was expected to pass", err, stdout)
	}
	stdout, _, err := runConsentd("verify", "--db", m.DBPath, "--keys", m.KeysDir, "--checkpoint", archive)
	if !errors.Is(err, errBroken) || !strings.Contains(stdout, "BROKEN at place 3") || !strings.Contains(stdout, "records were cut off") {
		t.Errorf("with the archive: %v, %q; want broken at place 3", err, stdout)
	}
}
