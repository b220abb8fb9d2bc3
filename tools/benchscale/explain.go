package main

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// genDir holds sqlc's generated queries, whose text is what rolegate runs.
const genDir = "gen/db"

// generatedQueries reads the text of every query sqlc generated, by its
// name in queries/*.sql, from the string constants of gen/db.
func generatedQueries() (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(genDir, "*.sql.go"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no generated queries in %s (run from the repository's root): %v", genDir, err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			sql, err := strconv.Unquote(lit.Value)
			if err != nil || !strings.HasPrefix(sql, "-- name: ") {
				return true
			}
			name, _, _ := strings.Cut(strings.TrimPrefix(sql, "-- name: "), " ")
			out[name] = sql
			return true
		})
	}
	return out, nil
}

// explainAll prints EXPLAIN (ANALYZE, BUFFERS) of every query behind the
// routes, twice: as the generic plan a prepared statement settles on
// after five runs when it looks no worse (pgx prepares every statement),
// and as the custom plan made for the arguments.
func explainAll(ctx context.Context, d *database, rts []route, out io.Writer) error {
	sqls, err := generatedQueries()
	if err != nil {
		return err
	}
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	fmt.Fprintln(out, "\n## EXPLAIN (ANALYZE, BUFFERS) at the largest size")
	for _, rt := range rts {
		for _, e := range rt.explain {
			sql, ok := sqls[e.query]
			if !ok {
				return fmt.Errorf("no generated query %s", e.query)
			}
			for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
				plan, err := explainOne(ctx, conn.Conn(), sql, e.args, mode)
				if err != nil {
					return fmt.Errorf("EXPLAIN %s: %w", e.query, err)
				}
				fmt.Fprintf(out, "\n### %s: %s(%s), %s\n\n```\n%s```\n", rt.name, e.query, strings.Join(e.args, ", "),
					strings.TrimPrefix(strings.TrimSuffix(mode, "_plan"), "force_")+" plan", plan)
			}
		}
	}
	return nil
}

func explainOne(ctx context.Context, conn *pgx.Conn, sql string, args []string, mode string) (string, error) {
	simple := pgx.QueryExecModeSimpleProtocol
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode, simple); err != nil {
		return "", err
	}
	defer conn.Exec(context.Background(), "DEALLOCATE bench_explain; RESET plan_cache_mode", simple)
	if _, err := conn.Exec(ctx, "PREPARE bench_explain AS "+sql, simple); err != nil {
		return "", err
	}
	rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_explain("+strings.Join(args, ", ")+")", simple)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		b.WriteString(line + "\n")
	}
	return b.String(), rows.Err()
}
