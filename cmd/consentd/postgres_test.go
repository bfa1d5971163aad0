package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	consent "github.com/mixvoip/consentd"
	"github.com/mixvoip/consentd/banner"
	"github.com/mixvoip/consentd/config"
	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/internal/wait"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestServeOnPostgres: consentd serve on a PostgreSQL database, made ready by
// --migrate, records a decision, and finds it again after a restart with a receipt;
// consentd migrate finds nothing left to do.
func TestServeOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	_, addr, stop := mustServeIn(t, "../../sites.yaml", dir, "--db", url, "--migrate")
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	if status, err := postConsent(addr, cfg, "mixvoip.com", consent.ActionRejectAll, id); err != nil || status != http.StatusCreated {
		t.Fatalf("POST: %d, %v", status, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "consent.db")); err == nil {
		t.Error("a bbolt file was made beside the PostgreSQL store")
	}

	_, addr, _ = mustServeIn(t, "../../sites.yaml", dir, "--db", url)
	resp, err := http.Get("http://" + addr + "/v1/consents/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Records []consent.Record }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK || len(got.Records) != 1 || got.Records[0].Receipt == nil {
		t.Fatalf("after a restart: %d, %+v, %v; want the record with its receipt", resp.StatusCode, got, err)
	}
	if out, _, err := runConsentd("migrate", "--db", url); err != nil || !strings.Contains(out, "up to date") {
		t.Errorf("consentd migrate after serve --migrate: %q, %v", out, err)
	}
}

// TestMigrateCommand: a new database gets the schema; the URL may come from a file,
// never with a password on the command line; a bbolt file needs no migration.
func TestMigrateCommand(t *testing.T) {
	url := pgtest.NewDatabase(t)
	urlFile := filepath.Join(t.TempDir(), "db-url")
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := runConsentd("migrate", "--db-file", urlFile); err != nil || !strings.Contains(out, "applied 001_store.sql") {
		t.Fatalf("consentd migrate --db-file: %q, %v", out, err)
	}
	for name, args := range map[string][]string{
		"password in --db":                  {"migrate", "--db", "postgres://consentd:secret@localhost/consent"},
		"password in the query":             {"migrate", "--db", "postgres://consentd@localhost/consent?password=secret"},
		"password to serve":                 {"serve", "--db", "postgres://consentd:secret@localhost/consent"},
		"password in a disguised query key": {"migrate", "--db", "postgres://consentd@localhost/consent?pass%77ord=secret"},
		"--db and --db-file":                {"migrate", "--db", "postgres://consentd@localhost/consent", "--db-file", urlFile},
		"a bbolt file":                      {"migrate", "--db", "data/consent.db"},
		"a file without a URL":              {"migrate", "--db-file", "../../sites.yaml"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runConsentd(args...)
			if err == nil || strings.Contains(err.Error(), "secret") {
				t.Errorf("consentd %s: %v; want it refused without echoing the password", strings.Join(args, " "), err)
			}
		})
	}
}

// TestRestorePostgres: a PostgreSQL database restored with its own tools goes on
// under a new origin that consentd restore links to the old one: consentd serves it
// under that name, and its log still extends the old name's checkpoints. The old
// name, a --from, and a missing --origin are refused, and leave the database as it
// was.
func TestRestorePostgres(t *testing.T) {
	ctx := t.Context()
	url := pgtest.NewDatabase(t)
	m, addr, stop := mustServeIn(t, "../../sites.yaml", t.TempDir(), "--db", url, "--migrate")
	MustPost(t, addr)
	MustPost(t, addr)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	keys, err := proof.LoadKeyring(m.KeysDir)
	if err != nil {
		t.Fatal(err)
	}
	old := mustPostgresCheckpoint(t, url, keys)

	for name, tt := range map[string]struct {
		args []string
		want string
	}{
		"the old name":    {[]string{"--origin", testOrigin}, "the restored log is " + testOrigin + " already"},
		"a backup to put": {[]string{"--from", "backup.db", "--origin", "consent.test/log-2"}, "takes no --from"},
		"no new name":     {nil, "--origin NEW_ORIGIN is required"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := runConsentd(append([]string{"restore", "--db", url, "--keys", m.KeysDir}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
			if cp := mustPostgresCheckpoint(t, url, keys); cp.Origin != testOrigin || cp.Size != old.Size {
				t.Errorf("a refused restore changed the log: %s %d", cp.Origin, cp.Size)
			}
		})
	}

	out := MustRun(t, "restore", "--db", url, "--keys", m.KeysDir, "--origin", "consent.test/log-2")
	mustSay(t, out, "restore", "the log "+testOrigin+" up to size 2 goes on as the log consent.test/log-2")
	addr, stop = MustStart(t, NewMainOn(t, m, io.Discard, "--db", url, "--origin", "consent.test/log-2"))
	if doc := MustPublicKeys(t, addr); doc.Origin != "consent.test/log-2" {
		t.Errorf("the restored store publishes the keys of %q, want consent.test/log-2", doc.Origin)
	}
	MustPost(t, addr)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, url, postgres.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Verify(ctx, old); err != nil || !v.OK || v.Leaves != 3 || v.Archived != 1 {
		t.Errorf("Verify against the old name's checkpoint: %+v, %v; want OK, 3 leaves, extending it", v, err)
	}
	if _, _, err := runConsentd("restore", "--db", url, "--keys", m.KeysDir, "--origin", testOrigin); err == nil || !strings.Contains(err.Error(), `is or was named "`+testOrigin+`"`) {
		t.Errorf("a restore back to a name the log had: %v", err)
	}
}

// mustPostgresCheckpoint returns the latest checkpoint of the store at url.
func mustPostgresCheckpoint(tb testing.TB, url string, keys *proof.Keyring) *consent.Checkpoint {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), url, postgres.Options{Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	cp, err := s.LastCheckpoint(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return cp
}

// TestTokensInDatabase: with a PostgreSQL store, consentd token --db keeps the DPO
// API's tokens in the database: a token added there opens the DPO API of every
// instance on the database, and once revoked, of none; the token file is not read.
func TestTokensInDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	_, first, _ := mustServeIn(t, "../../sites.yaml", dir, "--db", url, "--migrate")
	_, second, _ := mustServeIn(t, "../../sites.yaml", dir, "--db", url)
	add := func(args ...string) string {
		out, _, err := runConsentd(append([]string{"token", "add"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	inFile := add("file-token", "--tokens", filepath.Join(dir, "tokens.json"))
	secret := add("dpo", "--db", url)
	add("voxbi", "--db", url, "--sites", "voxbi.com,voxbi.team", "--config", "../../sites.yaml")
	for _, addr := range []string{first, second} {
		wait.MustUntil(t, "the token added in the database opens the DPO API of "+addr, func() (bool, string) {
			s := verifyStatus(t, addr, secret)
			return s == http.StatusOK, fmt.Sprintf("status %d", s)
		})
		if s := verifyStatus(t, addr, inFile); s != http.StatusUnauthorized {
			t.Errorf("a token in the token file beside a PostgreSQL store: %d on %s, want 401", s, addr)
		}
	}
	if list := MustRun(t, "token", "list", "--db", url); !strings.Contains(list, "\ndpo    all") || !strings.Contains(list, "\nvoxbi  voxbi.com,voxbi.team") || strings.Contains(list, "file-token") {
		t.Errorf("token list --db:\n%s", list)
	}
	if _, _, err := runConsentd("token", "add", "dpo", "--db", url); err == nil || !strings.Contains(err.Error(), `a token named "dpo" exists`) {
		t.Errorf("a second token named dpo: %v, want it refused", err)
	}
	MustRun(t, "token", "revoke", "dpo", "--db", url)
	for _, addr := range []string{first, second} {
		wait.MustUntil(t, "the revoked token is refused by "+addr, func() (bool, string) {
			s := verifyStatus(t, addr, secret)
			return s == http.StatusUnauthorized, fmt.Sprintf("status %d", s)
		})
	}
	if _, _, err := runConsentd("token", "revoke", "dpo", "--db", url); err == nil || !strings.Contains(err.Error(), `no active token named "dpo"`) {
		t.Errorf("revoking dpo twice: %v, want it refused", err)
	}
}

// TestKeyRotationAcrossInstances: two instances on one PostgreSQL store share their
// key files. A key made with keygen --staged is published by both before either
// signs with it; once activated, the sequencer signs with it, and decisions posted
// to either instance are acknowledged all along, with receipts that verify, the
// older ones included.
func TestKeyRotationAcrossInstances(t *testing.T) {
	url := pgtest.NewDatabase(t)
	dir := t.TempDir()
	m, first, _ := mustServeIn(t, "../../sites.yaml", dir, "--db", url, "--migrate")
	_, second, _ := mustServeIn(t, "../../sites.yaml", dir, "--db", url)
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old := publishedKeys(t, first)[0]
	var receipts []*consent.Receipt
	post := func() *consent.Receipt {
		for _, addr := range []string{first, second} {
			receipts = append(receipts, mustPostForReceipt(t, addr, cfg))
		}
		return receipts[len(receipts)-1]
	}
	post()

	out := MustRun(t, "keygen", "--staged", "--keys", m.KeysDir)
	staged := strings.Fields(out)[3]
	for _, addr := range []string{first, second} {
		wait.MustUntil(t, addr+" publishes the staged key", func() (bool, string) {
			keys := publishedKeys(t, addr)
			return slices.Contains(keys, staged), fmt.Sprintf("it publishes %v", keys)
		})
	}
	if receiptSigner(t, m.KeysDir, post()) != old {
		t.Fatal("a staged key signs")
	}
	MustRun(t, "keygen", "--activate", staged, "--keys", m.KeysDir)
	wait.MustUntil(t, "the activated key signs", func() (bool, string) {
		kid := receiptSigner(t, m.KeysDir, post())
		return kid == staged, "the last receipt's checkpoint is signed by " + kid
	})
	post()

	keys, err := proof.LoadKeyring(m.KeysDir)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := keys.LogVerifier(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range receipts {
		if _, err := verifier.VerifyReceipt(r); err != nil {
			t.Errorf("receipt %d of %d: %v", i, len(receipts), err)
		}
	}
}

// TestKeysSharedThroughDatabase: an instance given only the signing key learns the
// older keys from the database, and a key that another instance makes and signs with
// at once, without staging: both instances publish the same keys, every POST on
// either is acknowledged, and the keys one publishes verify every receipt of both.
// Keys written into the database by someone without a trusted private key are
// published by neither.
func TestKeysSharedThroughDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	// A long lease: the first instance integrates throughout, so that the checkpoints
	// of the new key it makes are what the second must verify.
	a, first, _ := mustServeIn(t, "../../sites.yaml", dirA, "--db", url, "--migrate", "--lease", "1m")
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	receipts := []*consent.Receipt{mustPostForReceipt(t, first, cfg)}
	signing := mustKeygen(t, a.KeysDir)
	wait.MustUntil(t, "the new key signs", func() (bool, string) {
		receipts = append(receipts, mustPostForReceipt(t, first, cfg))
		kid := receiptSigner(t, a.KeysDir, receipts[len(receipts)-1])
		return kid == signing, "the last receipt's checkpoint is signed by " + kid
	})
	keyFiles, err := filepath.Glob(filepath.Join(a.KeysDir, "*"+signing+".key"))
	if err != nil || len(keyFiles) != 1 {
		t.Fatalf("the file of key %s: %v, %v", signing, keyFiles, err)
	}
	mustCopyFile(t, keyFiles[0], filepath.Join(dirB, "keys", filepath.Base(keyFiles[0])))
	b, second, _ := mustServeIn(t, "../../sites.yaml", dirB, "--db", url, "--lease", "1m")
	if got := len(MustKeyring(t, b.KeysDir).Public()); got != 1 {
		t.Fatalf("the second instance's directory holds %d keys, want only the signing one", got)
	}
	mustPublishSame(t, first, second)

	intruder := proof.NewKeyring(mustNewKey(t), mustNewKey(t))
	for _, e := range intruder.Endorsements() {
		pgtest.MustExec(t, url, "INSERT INTO key_endorsements VALUES ($1, $2, $3, $4)", e.Key, e.By, e.Statement, e.Signature)
	}
	rotated := mustKeygen(t, a.KeysDir) // on the first instance only, and not staged
	wait.MustUntil(t, "the second instance publishes the key the first made", func() (bool, string) {
		receipts = append(receipts, mustPostForReceipt(t, first, cfg), mustPostForReceipt(t, second, cfg))
		keys := publishedKeys(t, second)
		return slices.Contains(keys, rotated), fmt.Sprintf("it publishes %v", keys)
	})
	receipts = append(receipts, mustPostForReceipt(t, second, cfg))
	if kid := receiptSigner(t, a.KeysDir, receipts[len(receipts)-1]); kid != rotated {
		t.Errorf("a receipt the second instance answered is signed by %s, want %s, the first instance's new key", kid, rotated)
	}
	doc := mustPublishSame(t, first, second)
	if len(doc.Keys) != 3 {
		t.Errorf("published %d keys, want the 3 the first instance made, and not the intruder's", len(doc.Keys))
	}
	verifier, err := doc.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range receipts {
		if _, err := verifier.VerifyReceipt(r); err != nil {
			t.Errorf("receipt %d of %d does not verify with the keys the instances publish: %v", i, len(receipts), err)
		}
	}
}

// mustPublishSame fails tb unless the consentd at each of addrs serves the same GET
// /v1/keys, byte for byte, and returns it.
func mustPublishSame(tb testing.TB, addrs ...string) *proof.PublicKeys {
	tb.Helper()
	var first []byte
	for _, addr := range addrs {
		resp, err := http.Get("http://" + addr + "/v1/keys")
		if err != nil {
			tb.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET /v1/keys on %s: %s, %v", addr, resp.Status, err)
		}
		if first == nil {
			first = body
		} else if !bytes.Equal(body, first) {
			tb.Fatalf("GET /v1/keys on %s:\n%s\nbut on %s:\n%s", addrs[0], first, addr, body)
		}
	}
	doc, err := proof.ReadPublicKeys(bytes.NewReader(first))
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

// mustCopyFile copies the file from to to, which only its owner may read, in a
// directory only its owner may write to, as a key file must be.
func mustCopyFile(tb testing.TB, from, to string) {
	tb.Helper()
	data, err := os.ReadFile(from)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(to), 0o700)
	}
	if err == nil {
		err = os.WriteFile(to, data, 0o600)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

func mustNewKey(tb testing.TB) *proof.Key {
	tb.Helper()
	k, err := proof.NewKey(time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// mustKeygen makes a signing key in dir with consentd keygen and returns its id.
func mustKeygen(tb testing.TB, dir string) string {
	tb.Helper()
	return strings.Fields(MustRun(tb, "keygen", "--keys", dir))[3]
}

// mustPostForReceipt posts a decision to the consentd at addr and returns its
// receipt.
func mustPostForReceipt(tb testing.TB, addr string, cfg *config.Config) *consent.Receipt {
	tb.Helper()
	site := cfg.Sites["mixvoip.com"]
	body, _ := json.Marshal(map[string]any{
		"site": site.Key, "consent_id": uuid.NewString(), "action": consent.ActionRejectAll, "fingerprint": banner.Fingerprint(site),
		"choices": site.AllChoices(false), "language": "en", "url": site.Origins[0] + "/", "surface": "banner",
	})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/consents", bytes.NewReader(body))
	req.Header.Set("Origin", site.Origins[0])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct{ Receipt *consent.Receipt }
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusCreated || got.Receipt == nil {
		tb.Fatalf("POST to %s: %s, %v; want 201 with a receipt", addr, resp.Status, err)
	}
	return got.Receipt
}

// receiptSigner returns the id of the key in keysDir that signed the checkpoint of
// r, which must verify.
func receiptSigner(tb testing.TB, keysDir string, r *consent.Receipt) string {
	tb.Helper()
	v, err := MustKeyring(tb, keysDir).LogVerifier(testOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	verified, err := v.VerifyReceipt(r)
	if err != nil {
		tb.Fatal(err)
	}
	return signedBy(tb, keysDir, testOrigin, verified.Checkpoint.Signed)
}

// TestPurgeOnLeaderOnly: of two instances on one PostgreSQL store, only the one
// leading purges the records past retention at its turn.
func TestPurgeOnLeaderOnly(t *testing.T) {
	const site = "mixvoip.com"
	cfg, err := config.Load("../../sites.yaml")
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDatabase(t)
	if _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	open := func() *postgres.Store {
		s, err := postgres.Open(context.Background(), url, postgres.Options{Origin: storetest.Origin, Keys: storetest.Keys()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	leader, follower := open(), open()
	if !leader.Leading() || follower.Leading() {
		t.Fatalf("leading: first %v, second %v; want the first only", leader.Leading(), follower.Leading())
	}
	past := storetest.Now().Add(-cfg.Sites[site].RetentionPeriod - 24*time.Hour)
	r := storetest.NewRecord(t, uuid.NewString(), past)
	r.ID, r.Site = storetest.IDAt(t, past), site
	storetest.MustAppend(t, leader, r)

	m := NewMain(io.Discard, io.Discard)
	m.purgeTurn(context.Background(), follower, cfg.Sites)
	if got := storetest.MustRecordsByConsent(t, leader, r.ConsentID); len(got) != 1 {
		t.Fatalf("after the follower's turn: %d records, want the 1 kept", len(got))
	}
	m.purgeTurn(context.Background(), leader, cfg.Sites)
	if got := storetest.MustRecordsByConsent(t, leader, r.ConsentID); len(got) != 0 {
		t.Fatalf("after the leader's turn: %d records, want it purged", len(got))
	}
}
