package bolt

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mixvoip/consentd/translog"
)

// Reorigin gives the store in the file at path, which no process may have open, a new
// log name, origin: what a store restored from a backup needs before it takes appends
// again. Under its old name it would sign trees of sizes that the old name's
// checkpoints, held by visitors and monitors, already vouch for with other roots: a
// fork of the log. It signs under origin, with keys, the statement that the log
// continues the old name's latest tree, and a checkpoint of that tree, and stores
// both with the new name in one transaction. It refuses the store's own name.
func Reorigin(path, origin string, keys translog.Keys) (*translog.Link, error) {
	link, err := reorigin(path, origin, keys)
	if err != nil {
		return nil, fmt.Errorf("bolt: reorigin %s: %w", path, err)
	}
	return link, nil
}

func reorigin(path, origin string, keys translog.Keys) (*translog.Link, error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	if err := translog.CheckOrigin(origin); err != nil {
		return nil, err
	}
	db, err := openDB(path, bolt.Options{Timeout: DefaultLockTimeout})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var link *translog.Link
	err = guard(func() error {
		return db.Update(func(tx *bolt.Tx) error {
			if fresh, err := isNew(tx); err != nil || fresh {
				return errors.Join(err, errors.New("not a consentd store: it is empty"))
			}
			old := string(tx.Bucket(bucketMeta).Get(keyOrigin))
			verifier, err := keys.LogVerifier(old)
			if err != nil {
				return err
			}
			_, links, err := verifier.Lineage(stored{tx}.Links)
			if err != nil {
				return err
			}
			l, err := translog.Open(logTx{tx: tx}, verifier)
			if err != nil {
				return err
			}
			var checkpoint []byte
			if link, checkpoint, err = translog.Rename(l.Head(), links, origin, keys); err != nil {
				return err
			}
			stored := tx.Bucket(bucketLinks)
			seq, err := stored.NextSequence()
			if err != nil {
				return err
			}
			if err := stored.Put(indexKey(int64(seq)), link.Signed); err != nil {
				return err
			}
			if checkpoint != nil {
				if err := (logTx{tx: tx, signedAt: time.Now()}).PutCheckpoint(checkpoint); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keyOrigin, []byte(origin))
		})
	})
	return link, err
}
