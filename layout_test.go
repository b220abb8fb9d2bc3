package rolegate_test

import (
	"os"
	"testing"
)

// The top level the design card names stays where it says: the spec, the
// generated code, the queries, the schema and sqlc's config, the handlers
// that implement the generated interface, the module and the Makefile.
func TestDesignCardLayout(t *testing.T) {
	for _, e := range []struct {
		name string
		dir  bool
	}{
		{"api", true}, {"gen", true}, {"queries", true}, {"schema.sql", false},
		{"sqlc.yaml", false}, {"handlers", true}, {"go.mod", false}, {"Makefile", false},
	} {
		fi, err := os.Stat(e.name)
		switch {
		case err != nil:
			t.Errorf("%s is missing at the top level: %v", e.name, err)
		case fi.IsDir() != e.dir:
			t.Errorf("%s at the top level: directory = %v, want %v", e.name, fi.IsDir(), e.dir)
		}
	}
	// The handlers implement the generated interface there, not elsewhere.
	if _, err := os.Stat("internal/handlers"); err == nil {
		t.Error("internal/handlers exists: the handlers live in handlers/")
	}
}
