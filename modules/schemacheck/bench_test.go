package schemacheck

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// generated returns DDL for n tables of 7 columns each, with a primary key,
// a unique constraint, an index and a foreign key to the previous table.
func generated(driver string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fk := ""
		if i > 0 {
			fk = fmt.Sprintf(", CONSTRAINT t%d_parent_fk FOREIGN KEY (parent_id) REFERENCES t%d (id)", i, i-1)
		}
		if driver == "postgres" {
			fmt.Fprintf(&b, "CREATE TABLE t%d (id bigserial PRIMARY KEY, name varchar(100) NOT NULL, email text, parent_id bigint,"+
				" created_at timestamptz DEFAULT now(), amount numeric(10,2) DEFAULT 0, flag boolean NOT NULL DEFAULT false,"+
				" CONSTRAINT t%d_email_key UNIQUE (email)%s);\nCREATE INDEX t%d_name_idx ON t%d (name);\n", i, i, fk, i, i)
		} else {
			fmt.Fprintf(&b, "CREATE TABLE t%d (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, name varchar(100) NOT NULL, email varchar(200), parent_id bigint,"+
				" created_at timestamp NULL DEFAULT CURRENT_TIMESTAMP, amount decimal(10,2) DEFAULT 0, flag tinyint(1) NOT NULL DEFAULT 0,"+
				" UNIQUE KEY t%d_email_key (email), KEY t%d_name_idx (name)%s) ENGINE=InnoDB;\n", i, i, i, fk)
		}
	}
	return b.String()
}

// BenchmarkSchemaCheck_500tables: schema_check's Plan (connect, inspect both
// databases, diff) on two generated databases of 500 tables each that differ
// in three places. Target: under 3 s per operation.
func BenchmarkSchemaCheck_500tables(b *testing.B) {
	for _, driver := range []string{"postgres", "mysql"} {
		b.Run(driver, func(b *testing.B) {
			in := server(b, driver)
			env := pair(b, in)
			ddl := generated(driver, 500)
			in.Exec(dbName(env, "prod"), ddl)
			in.Exec(dbName(env, "test"), ddl)
			in.Exec(dbName(env, "test"), "ALTER TABLE t7 ADD COLUMN extra int; CREATE INDEX t9_flag_idx ON t9 (flag); DROP TABLE t499")
			cfg := config(map[string]cty.Value{"database": ref("prod"), "reference": ref("test"), "on_mismatch": cty.StringVal("continue")})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p, err := New().Plan(context.Background(), request(env, cfg))
				if err != nil {
					b.Fatal(err)
				}
				if n := countChanges(p.Outputs["diff"].AsString()); n != 3 {
					b.Fatalf("%d differences, want 3:\n%s", n, p.Outputs["diff"].AsString())
				}
			}
		})
	}
}
