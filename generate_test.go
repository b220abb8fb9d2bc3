package rolegate_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// gen/ must be exactly what `make generate` produces from the checked-in
// spec, schema, queries and generator configs.
func TestGeneratedCodeIsCurrent(t *testing.T) {
	t.Parallel()
	t.Run("oapi-codegen", func(t *testing.T) {
		t.Parallel()
		// The same configuration, writing elsewhere.
		cfg, err := os.ReadFile("oapi-codegen.yaml")
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		out := filepath.Join(dir, "api.gen.go")
		cfg = bytes.Replace(cfg, []byte("output: gen/api/api.gen.go"), []byte("output: "+out), 1)
		cfgPath := filepath.Join(dir, "oapi-codegen.yaml")
		if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "tool", "oapi-codegen", "-config", cfgPath, "api/openapi.yaml")
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("oapi-codegen: %v\n%s", err, msg)
		}
		want, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("gen/api/api.gen.go")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Fatal("gen/api/api.gen.go differs from what api/openapi.yaml generates: run `make generate` and commit")
		}
	})
	t.Run("sqlc", func(t *testing.T) {
		t.Parallel()
		// sqlc diff exits non-zero and prints a diff when gen/db is stale.
		if msg, err := exec.Command("go", "tool", "sqlc", "diff").CombinedOutput(); err != nil {
			t.Fatalf("gen/db differs from what schema.sql and queries/ generate: run `make generate` and commit\n%s", msg)
		}
	})
}
