package translog_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/mixvoip/consentd/translog"
)

// memStorage is a store of one log in memory, whose transactions commit or roll back
// as a store's do.
type memStorage struct {
	hashes     map[int64]tlog.Hash
	checkpoint []byte
}

func newMemStorage() *memStorage { return &memStorage{hashes: map[int64]tlog.Hash{}} }

// begin returns a transaction over a copy of m; commit makes it m's.
func (m *memStorage) begin() *memTx {
	return &memTx{m: m, hashes: maps.Clone(m.hashes), checkpoint: m.checkpoint}
}

type memTx struct {
	m          *memStorage
	hashes     map[int64]tlog.Hash
	checkpoint []byte
}

func (tx *memTx) commit() { tx.m.hashes, tx.m.checkpoint = tx.hashes, tx.checkpoint }

func (tx *memTx) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := tx.hashes[x]
		if !ok {
			return nil, fmt.Errorf("no hash at %d", x)
		}
		out[i] = h
	}
	return out, nil
}

func (tx *memTx) WriteHashes(start int64, hashes []tlog.Hash) error {
	for i, h := range hashes {
		tx.hashes[start+int64(i)] = h
	}
	return nil
}

func (tx *memTx) Checkpoint() ([]byte, error)       { return tx.checkpoint, nil }
func (tx *memTx) PutCheckpoint(signed []byte) error { tx.checkpoint = signed; return nil }

func testSigner(tb testing.TB) (*translog.Signer, *translog.Verifier) {
	tb.Helper()
	s, err := translog.NewSigner(testOrigin, testKey)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := translog.NewVerifier(testOrigin, testKey.Public().(ed25519.PublicKey))
	if err != nil {
		tb.Fatal(err)
	}
	return s, v
}

func leafBytes(i int) []byte { return fmt.Appendf(nil, "leaf %d", i) }

// appendLeaves appends leaves [from, to) in one committed transaction.
func appendLeaves(tb testing.TB, m *memStorage, l *translog.Log, s *translog.Signer, from, to int) *translog.Checkpoint {
	tb.Helper()
	var leaves []tlog.Hash
	for i := from; i < to; i++ {
		leaves = append(leaves, tlog.RecordHash(leafBytes(i)))
	}
	tx := m.begin()
	b, err := l.Append(tx, leaves, s)
	if err != nil {
		tb.Fatal(err)
	}
	tx.commit()
	l.Commit(b)
	return b.Checkpoint
}

// TestAppend: batches of any size give the tree that leaves appended one by one give
// (tlog.StoredHashes, the reference), every leaf's proof holds in every later tree,
// and every tree extends every earlier one.
func TestAppend(t *testing.T) {
	s, v := testSigner(t)
	m := newMemStorage()
	l, err := translog.Open(m.begin(), v)
	if err != nil {
		t.Fatal(err)
	}
	if head := l.Head(); head.Size != 0 || head.Signed != nil {
		t.Fatalf("empty log's head = %+v", head)
	}

	var reference []tlog.Hash
	refRead := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			out[i] = reference[x]
		}
		return out, nil
	})
	var heads []*translog.Checkpoint
	n := 0
	for _, batch := range []int{1, 1, 2, 5, 256, 1, 300, 7} {
		cp := appendLeaves(t, m, l, s, n, n+batch)
		for i := n; i < n+batch; i++ {
			stored, err := tlog.StoredHashes(int64(i), leafBytes(i), refRead)
			if err != nil {
				t.Fatal(err)
			}
			reference = append(reference, stored...)
		}
		n += batch
		want, err := tlog.TreeHash(int64(n), refRead)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size != int64(n) || cp.Root != want || l.Head() != cp {
			t.Fatalf("after %d leaves: checkpoint size %d root %v, head size %d; want root %v", n, cp.Size, cp.Root, l.Head().Size, want)
		}
		if opened, err := v.Open(cp.Signed); err != nil || opened.Size != cp.Size || opened.Root != cp.Root {
			t.Fatalf("the signed checkpoint opens as %+v, %v", opened, err)
		}
		heads = append(heads, cp)
	}

	read := tlog.HashReaderFunc(m.begin().ReadHashes)
	head := l.Head()
	for i := range n {
		p, err := translog.Prove(read, int64(i), head)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyInclusion(p, leafBytes(i)); err != nil {
			t.Errorf("leaf %d: %v", i, err)
		}
		if _, err := v.VerifyInclusion(p, leafBytes(i+1)); !errors.Is(err, translog.ErrNotIncluded) {
			t.Errorf("leaf %d proves the bytes of another: %v", i, err)
		}
	}
	for i, older := range heads {
		for _, newer := range heads[i:] {
			p, err := translog.ProveConsistency(read, older.Size, newer.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := translog.VerifyConsistency(p, older, newer); err != nil {
				t.Errorf("size %d → %d: %v", older.Size, newer.Size, err)
			}
		}
	}
}

// TestBatchProve: a batch proves its own leaves from the hashes it holds, without
// reading the storage, whatever the size of the tree before it, and the proofs are
// those made from the stored hashes.
func TestBatchProve(t *testing.T) {
	s, v := testSigner(t)
	for _, before := range []int{0, 1, 5, 6, 7, 8, 255, 256, 300, 1023} {
		m := newMemStorage()
		l, err := translog.Open(m.begin(), v)
		if err != nil {
			t.Fatal(err)
		}
		if before > 0 {
			appendLeaves(t, m, l, s, 0, before)
		}
		for _, size := range []int{1, 2, 3, 17} {
			var leaves []tlog.Hash
			for i := before; i < before+size; i++ {
				leaves = append(leaves, tlog.RecordHash(leafBytes(i)))
			}
			tx := m.begin()
			b, err := l.Append(tx, leaves, s)
			if err != nil {
				t.Fatal(err)
			}
			tx.commit()
			l.Commit(b)
			noReads := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
				return nil, fmt.Errorf("read %v", indexes)
			})
			for i := before; i < before+size; i++ {
				p, err := b.Prove(int64(i), noReads)
				if err != nil {
					t.Fatalf("%d leaves, then %d: leaf %d: %v", before, size, i, err)
				}
				want, err := translog.Prove(tlog.HashReaderFunc(m.begin().ReadHashes), int64(i), b.Checkpoint)
				if err != nil || !slices.Equal(p.Hashes, want.Hashes) {
					t.Errorf("leaf %d: the batch's proof differs from the stored hashes' (%v)", i, err)
				}
				if _, err := v.VerifyInclusion(p, leafBytes(i)); err != nil {
					t.Errorf("leaf %d: %v", i, err)
				}
			}
			before += size
		}
	}
}

// TestAppendUncommitted: a transaction that does not commit leaves the head and the
// storage as they were; the next Append starts from the head.
func TestAppendUncommitted(t *testing.T) {
	s, v := testSigner(t)
	m := newMemStorage()
	l, err := translog.Open(m.begin(), v)
	if err != nil {
		t.Fatal(err)
	}
	before := appendLeaves(t, m, l, s, 0, 3)
	if _, err := l.Append(m.begin(), []tlog.Hash{tlog.RecordHash([]byte("lost"))}, s); err != nil {
		t.Fatal(err)
	}
	if l.Head() != before {
		t.Fatalf("head moved to size %d without a commit", l.Head().Size)
	}
	after := appendLeaves(t, m, l, s, 3, 4)
	p, err := translog.Prove(tlog.HashReaderFunc(m.begin().ReadHashes), 3, after)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyInclusion(p, leafBytes(3)); err != nil {
		t.Error(err)
	}
}

// TestOpen: a log reopens at its head; a head that disagrees with the stored hashes,
// or that no known key signed, is refused.
func TestOpen(t *testing.T) {
	s, v := testSigner(t)
	m := newMemStorage()
	l, err := translog.Open(m.begin(), v)
	if err != nil {
		t.Fatal(err)
	}
	head := appendLeaves(t, m, l, s, 0, 10)

	reopened, err := translog.Open(m.begin(), v)
	if err != nil || reopened.Head().Size != 10 || reopened.Head().Root != head.Root {
		t.Fatalf("reopened at %+v, %v", reopened.Head(), err)
	}

	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	otherVerifier, err := translog.NewVerifier(testOrigin, other.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := translog.Open(m.begin(), otherVerifier); !errors.Is(err, translog.ErrUnknownKey) {
		t.Errorf("Open with another key: %v, want ErrUnknownKey", err)
	}

	// Open reads the tree's right edge only (full verification reads the rest): the
	// hash of leaves 0–7 is on it.
	changed := m.begin()
	changed.hashes[tlog.StoredHashIndex(3, 0)] = tlog.RecordHash([]byte("changed"))
	if _, err := translog.Open(changed, v); err == nil || !strings.Contains(err.Error(), "root") {
		t.Errorf("Open with a changed hash: %v", err)
	}

	headless := m.begin()
	headless.checkpoint = nil
	if _, err := translog.Open(headless, v); err == nil {
		t.Error("Open took hashes without a checkpoint for an empty log")
	}

	otherOrigin, err := translog.NewSigner("other.example/log", testKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(m.begin(), []tlog.Hash{{}}, otherOrigin); err == nil {
		t.Error("Append signed with the origin of another log")
	}
}

// TestChecker: rebuilding a tree from its leaves names the first leaf whose stored
// hashes disagree, and tells a checkpoint of the tree from one of another.
func TestChecker(t *testing.T) {
	s, v := testSigner(t)
	m := newMemStorage()
	l, err := translog.Open(m.begin(), v)
	if err != nil {
		t.Fatal(err)
	}
	early := appendLeaves(t, m, l, s, 0, 20)
	head := appendLeaves(t, m, l, s, 20, 40)

	check := func(leaf func(i int) []byte, hashes map[int64]tlog.Hash) (*translog.Checker, error) {
		c := translog.NewChecker(tlog.HashReaderFunc((&memTx{hashes: hashes}).ReadHashes))
		for i := range 40 {
			if err := c.Add(tlog.RecordHash(leaf(i))); err != nil {
				return c, err
			}
		}
		return c, nil
	}
	c, err := check(leafBytes, m.hashes)
	if err != nil || c.Size() != 40 {
		t.Fatalf("intact log: %v after %d leaves", err, c.Size())
	}
	for _, cp := range []*translog.Checkpoint{early, head} {
		if err := c.Check(cp); err != nil {
			t.Errorf("checkpoint of size %d: %v", cp.Size, err)
		}
	}

	t.Run("changed leaf", func(t *testing.T) {
		_, err := check(func(i int) []byte {
			if i == 17 {
				return []byte("changed")
			}
			return leafBytes(i)
		}, m.hashes)
		if err == nil || !strings.HasPrefix(err.Error(), "leaf 17:") {
			t.Errorf("got %v, want leaf 17 named", err)
		}
	})
	t.Run("missing hash", func(t *testing.T) {
		hashes := maps.Clone(m.hashes)
		delete(hashes, tlog.StoredHashIndex(0, 25))
		if _, err := check(leafBytes, hashes); err == nil || !strings.HasPrefix(err.Error(), "leaf 25:") {
			t.Errorf("got %v, want leaf 25 named", err)
		}
	})
	t.Run("checkpoint of a longer log", func(t *testing.T) {
		longer := newMemStorage()
		ll, _ := translog.Open(longer.begin(), v)
		if err := c.Check(appendLeaves(t, longer, ll, s, 0, 41)); err == nil {
			t.Error("accepted")
		}
	})
	t.Run("checkpoint of another log of the same size", func(t *testing.T) {
		other := newMemStorage()
		ol, _ := translog.Open(other.begin(), v)
		appendLeaves(t, other, ol, s, 0, 19)
		forged := appendLeaves(t, other, ol, s, 100, 101)
		if err := c.Check(forged); err == nil {
			t.Error("accepted a split view")
		}
		p, err := translog.ProveConsistency(tlog.HashReaderFunc(m.begin().ReadHashes), early.Size, head.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := translog.VerifyConsistency(p, forged, head); !errors.Is(err, translog.ErrNotIncluded) {
			t.Errorf("the log extends the forged tree: %v", err)
		}
	})
}

// TestProofText: a proof's text is C2SP tlog-proof, byte for byte as in testdata,
// and reads back to the same proof; malformed texts are refused.
func TestProofText(t *testing.T) {
	s, v := testSigner(t)
	m := newMemStorage()
	l, _ := translog.Open(m.begin(), v)
	head := appendLeaves(t, m, l, s, 0, 6)
	p, err := translog.Prove(tlog.HashReaderFunc(m.begin().ReadHashes), 4, head)
	if err != nil {
		t.Fatal(err)
	}
	text, err := p.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, "proof.golden", text)
	var back translog.Proof
	if err := back.UnmarshalText(want); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyInclusion(&back, leafBytes(4)); err != nil {
		t.Errorf("the golden proof: %v", err)
	}

	for name, bad := range map[string]string{
		"another header":   strings.Replace(string(want), "tlog-proof@v1", "tlog-proof@v2", 1),
		"extra data":       strings.Replace(string(want), "\nindex", "\nextra AAAA\nindex", 1),
		"leading zero":     strings.Replace(string(want), "index 4", "index 04", 1),
		"short hash":       strings.Replace(string(want), "\n\n", "\nAAAA\n\n", 1),
		"no checkpoint":    strings.Split(string(want), "\n\n")[0],
		"negative index":   strings.Replace(string(want), "index 4", "index -4", 1),
		"another index":    strings.Replace(string(want), "index 4", "index 5", 1),
		"another log":      strings.Replace(string(want), testOrigin, "other.example/log", -1),
		"a hash too many":  strings.Replace(string(want), "\n\n", "\n"+strings.Split(string(want), "\n")[2]+"\n\n", 1),
		"a hash too few":   strings.Replace(string(want), "\n"+strings.Split(string(want), "\n")[2]+"\n", "\n", 1),
		"bigger tree size": strings.Replace(string(want), "\n6\n", "\n7\n", 1),
	} {
		t.Run(name, func(t *testing.T) {
			if bad == string(want) {
				t.Fatal("the case changes nothing")
			}
			var p translog.Proof
			if err := p.UnmarshalText([]byte(bad)); err != nil {
				return
			}
			if _, err := v.VerifyInclusion(&p, leafBytes(4)); err == nil {
				t.Errorf("accepted:\n%s", bad)
			}
		})
	}
}

// benchTree returns a committed log of n leaves in memory and its head.
func benchTree(b *testing.B, n int) (*memStorage, *translog.Checkpoint) {
	b.Helper()
	s, v := testSigner(b)
	m := newMemStorage()
	l, err := translog.Open(m.begin(), v)
	if err != nil {
		b.Fatal(err)
	}
	var head *translog.Checkpoint
	for from := 0; from < n; from += 1000 {
		head = appendLeaves(b, m, l, s, from, min(from+1000, n))
	}
	return m, head
}

// BenchmarkVerify measures what a regulator's check of one record costs in a log of
// a million leaves: the inclusion proof of a receipt (its checkpoint's signature
// included), and the consistency proof between two checkpoints.
func BenchmarkVerify(b *testing.B) {
	const n = 1 << 20
	m, head := benchTree(b, n)
	_, v := testSigner(b)
	read := tlog.HashReaderFunc(m.begin().ReadHashes)
	p, err := translog.Prove(read, n/3, head)
	if err != nil {
		b.Fatal(err)
	}
	text, _ := p.MarshalText()
	b.Run("inclusion", func(b *testing.B) {
		b.ReportMetric(float64(len(text)), "proof-bytes")
		for b.Loop() {
			if _, err := v.VerifyInclusion(p, leafBytes(n/3)); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Not a power of two: the older tree is no subtree of the newer, and its proof
	// has the full length.
	older := &translog.Checkpoint{Size: n/3 + 1}
	older.Root, err = tlog.TreeHash(older.Size, read)
	if err != nil {
		b.Fatal(err)
	}
	tp, err := translog.ProveConsistency(read, older.Size, head.Size)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("consistency", func(b *testing.B) {
		b.ReportMetric(float64(len(tp)), "hashes")
		for b.Loop() {
			if err := translog.VerifyConsistency(tp, older, head); err != nil {
				b.Fatal(err)
			}
		}
	})
}
