package bolt

import (
	"errors"
	"fmt"
	"slices"

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
			_, links, err := lineage(tx, verifier)
			if err != nil {
				return err
			}
			if origin == old || slices.ContainsFunc(links, func(l *translog.Link) bool { return l.From == origin }) {
				return fmt.Errorf("the store's log is or was named %q: a restored store needs a name it never had", origin)
			}
			l, err := translog.Open(logTx{tx}, verifier)
			if err != nil {
				return err
			}
			signer, err := keys.LogSigner(origin)
			if err != nil {
				return err
			}
			head := l.Head()
			if link, err = signer.SignLink(head); err != nil {
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
			if head.Size > 0 {
				cp, err := signer.SignTree(head.Size, head.Root)
				if err != nil {
					return err
				}
				if err := (logTx{tx}).PutCheckpoint(cp.Signed); err != nil {
					return err
				}
			}
			return tx.Bucket(bucketMeta).Put(keyOrigin, []byte(origin))
		})
	})
	return link, err
}

// lineage returns v extended with every log the store's log continues, read from its
// link statements, newest first: each is signed under the name that came after it.
func lineage(tx *bolt.Tx, v *translog.Verifier) (*translog.Verifier, []*translog.Link, error) {
	var links []*translog.Link
	c := tx.Bucket(bucketLinks).Cursor()
	for k, signed := c.Last(); k != nil; k, signed = c.Prev() {
		link, err := v.OpenLink(signed)
		if err != nil {
			return nil, nil, fmt.Errorf("the link statement stored under %x: %w", k, err)
		}
		if v, err = v.Continuing(link.From); err != nil {
			return nil, nil, err
		}
		links = append(links, link)
	}
	return v, links, nil
}
