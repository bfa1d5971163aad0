package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/mixvoip/consentd/translog"
)

// Reorigin gives the store in the database at url, which no consentd may serve, a
// new log name, origin: what a database restored from a dump or to a point in time
// needs before it takes records again. Under its old name it would sign trees of
// sizes that the old name's checkpoints, held by visitors and monitors, already vouch
// for with other roots: a fork of the log. It signs under origin, with keys, the
// statement that the log continues the old name's latest tree, and a checkpoint of
// that tree, and stores both with the new name in one transaction. It refuses any
// name the log ever had.
func Reorigin(ctx context.Context, url, origin string, keys translog.Keys) (*translog.Link, error) {
	link, err := reorigin(ctx, url, origin, keys)
	if err != nil {
		return nil, fmt.Errorf("postgres: reorigin: %w", err)
	}
	return link, nil
}

func reorigin(ctx context.Context, url, origin string, keys translog.Keys) (*translog.Link, error) {
	if err := translog.CheckOrigin(origin); err != nil {
		return nil, err
	}
	conn, err := connectStore(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var link *translog.Link
	// Read committed: the head's row, locked first, keeps every writer out.
	err = pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, "SELECT origin FROM log_head WHERE id = 1 FOR UPDATE").Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return errors.New("not a consentd store: the database holds no log")
		}
		if err != nil {
			return err
		}
		switch m, err := readMarks(ctx, tx, false); {
		case err != nil:
			return err
		case m.refusal() != nil:
			return m.refusal()
		}
		verifier, err := keys.LogVerifier(old)
		if err != nil {
			return err
		}
		s := &stored{ctx: ctx, tx: tx, hashes: map[int64][]tlog.Hash{}}
		_, links, err := verifier.Lineage(s.Links)
		if err != nil {
			return err
		}
		l, err := translog.Open(&logTx{ctx: ctx, q: tx}, verifier)
		if err != nil {
			return err
		}
		var signed []byte
		if link, signed, err = translog.Rename(l.Head(), links, origin, keys); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO links (statement) VALUES ($1)", link.Signed); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE log_head SET origin = $1, checkpoint = $2, signed_at = now() WHERE id = 1", origin, signed)
		return err
	})
	return link, err
}
