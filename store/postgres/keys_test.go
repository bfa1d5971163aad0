package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mixvoip/consentd/internal/pgtest"
	"github.com/mixvoip/consentd/proof"
	"github.com/mixvoip/consentd/store/postgres"
	"github.com/mixvoip/consentd/store/storetest"
)

// TestKeyLearnedWhenItSigns: when the sequencer signs with a key the other instance
// does not hold, that instance acknowledges nothing while the key is unpublished, as
// it cannot verify the log; once the key is published, endorsed by a key it holds,
// it learns the key on reading the first checkpoint so signed, and acknowledges its
// appends, with receipts of that key.
func TestKeyLearnedWhenItSigns(t *testing.T) {
	ctx := context.Background()
	url, _ := MustNewDatabase(t)
	leaderKeys, followerKeys := storetest.Keys(), storetest.Keys()
	// A long lease: the leader integrates throughout.
	leader := mustOpenInstance(t, url, postgres.Options{Instance: "leader", Keys: leaderKeys, Lease: time.Hour})
	follower := mustOpenInstance(t, url, postgres.Options{Instance: "follower", Keys: followerKeys, Lease: time.Hour})
	if !leader.Leading() {
		t.Fatal("the instance opened first does not lead")
	}
	newKey, err := proof.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rotated := proof.NewKeyring(leaderKeys.Signer(), newKey)
	leaderKeys.Replace(rotated) // a key given to the leader alone, and not published yet

	unverified, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := follower.Append(unverified, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an append whose checkpoint is signed by a key the instance cannot verify: %v, want no answer", err)
	}
	if followerKeys.HasKey(newKey.ID) {
		t.Fatal("the follower trusts a key nobody published")
	}

	if err := leader.PublishKeys(ctx, rotated); err != nil {
		t.Fatal(err)
	}
	receipt, err := follower.Append(ctx, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
	if err != nil {
		t.Fatalf("an append once the key is published: %v", err)
	}
	onlyNew, err := proof.NewKeyring(newKey).LogVerifier(storetest.Origin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onlyNew.VerifyReceipt(receipt); err != nil {
		t.Errorf("the receipt is not signed by the leader's new key: %v", err)
	}
	if !followerKeys.HasKey(newKey.ID) || followerKeys.Holds(newKey.ID) || followerKeys.Signer().ID == newKey.ID {
		t.Error("the follower does not verify with the key it learned, or signs with it")
	}
	var rows int
	pgtest.MustQueryRow(t, url, "SELECT count(*) FROM key_endorsements", &rows)
	if rows != 2 {
		t.Errorf("%d endorsements in the database, want 2: the two keys of the leader by each other", rows)
	}
}
