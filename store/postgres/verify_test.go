package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mixvoip/consentd/store/storetest"
)

// TestVerifyFindsTampering: what someone with write access to the database changes
// behind consentd's back, verification finds and names, whichever table it is in.
func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct{ name, sql, want string }{
		{"decision altered", "UPDATE records SET decision = decision || ' ' WHERE leaf_index = 1", "the decision of record"},
		{"identifying part altered", "UPDATE records SET identifying = identifying || 'x' WHERE leaf_index = 1", "the identifying part of record"},
		{"record deleted", "DELETE FROM records WHERE leaf_index = 1", "was deleted: no signed purge covers it"},
		{"record filed under another visitor", "UPDATE records SET consent_id = gen_random_uuid() WHERE leaf_index = 1", "filed under another consent id"},
		{"leaf added", "INSERT INTO leaves SELECT 3, gen_random_uuid(), leaf FROM leaves WHERE leaf_index = 0", "leaf 3: its stored hashes"},
		{"leaf altered", "UPDATE leaves SET leaf = set_byte(leaf, 20, get_byte(leaf, 20) # 1) WHERE leaf_index = 1", "were altered"},
		{"hash altered", "UPDATE log_hashes SET hash = set_byte(hash, 0, get_byte(hash, 0) # 1) WHERE storage_index = 0", "were altered"},
		{"snapshot altered", "UPDATE snapshots SET snapshot = snapshot || ' '", "the snapshot of what record"},
		{"leaves cut off", "DELETE FROM records WHERE leaf_index = 2; DELETE FROM leaves WHERE leaf_index = 2", "leaves were cut off or added"},
		{"purge statement forged", "INSERT INTO purges (at, site, statement) VALUES (now(), 'shop.example', 'not signed')", "is not signed by a key of the log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, open := MustNewDatabase(t)
			s := open()
			defer s.Close()
			for i := range 3 {
				r := storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now())
				if i == 0 {
					storetest.MustPutSnapshot(t, s, r)
				}
				storetest.MustAppend(t, s, r)
			}
			if v, err := s.Verify(ctx); err != nil || !v.OK {
				t.Fatalf("before: %+v, %v", v, err)
			}
			mustExec(t, url, tt.sql)
			v, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v.OK || !strings.Contains(v.Problem, tt.want) {
				t.Errorf("Verify = OK %t, %q; want a problem saying %q", v.OK, v.Problem, tt.want)
			}
		})
	}
}

// mustExec runs sql on the database at url, around the store.
func mustExec(tb testing.TB, url, sql string) {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// TestVerifyTellsUnreadableFromTampered: a database that cannot be read gives an
// error, never a finding: verification must not cry tampering over an outage.
func TestVerifyTellsUnreadableFromTampered(t *testing.T) {
	for _, table := range []string{"log_hashes", "log_head", "records"} {
		t.Run(table, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url, open := MustNewDatabase(t)
			s := open()
			defer s.Close()
			for range 3 {
				storetest.MustAppend(t, s, storetest.NewRecord(t, storetest.MustNewID(t), storetest.Now()))
			}
			mustExec(t, url, "ALTER TABLE "+table+" RENAME TO gone")
			if v, err := s.Verify(ctx); err == nil {
				t.Errorf("Verify with %s unreadable = %+v, want an error", table, v)
			}
		})
	}
}
