// Package ts_test runs the TypeScript SDK's node test suite (test/*.test.mjs)
// against a live rolegate on a fresh database, and checks that
// gen/ts/schema.d.ts is what `npm run generate` makes of api/openapi.yaml.
//
// Both need Node.js and this directory's node_modules: `npm --prefix
// clients/ts ci` (which `make test` runs first).
package ts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

const (
	install = "run `npm --prefix clients/ts ci` (from the repository root) first"
	// schemaOut is where the generate script writes; the drift check writes elsewhere.
	schemaOut = "../../gen/ts/schema.d.ts"
)

type packageJSON struct {
	Scripts         map[string]string `json:"scripts"`
	Dependencies    map[string]string `json:"dependencies"`
	DevDependencies map[string]string `json:"devDependencies"`
}

// nodeReady returns the node binary after checking that node_modules holds
// every package of package.json at its pinned version.
func nodeReady(t *testing.T) (string, packageJSON) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: install Node.js 20 or later, then %s", install)
	}
	var pkg packageJSON
	readJSON(t, "package.json", &pkg)
	for _, deps := range []map[string]string{pkg.Dependencies, pkg.DevDependencies} {
		for name, want := range deps {
			var installed struct {
				Version string `json:"version"`
			}
			b, err := os.ReadFile(filepath.Join("node_modules", name, "package.json"))
			if err == nil {
				err = json.Unmarshal(b, &installed)
			}
			if err != nil {
				t.Fatalf("clients/ts/node_modules lacks %s: %s", name, install)
			}
			if installed.Version != want {
				t.Fatalf("clients/ts/node_modules has %s %s, package.json pins %s: %s", name, installed.Version, want, install)
			}
		}
	}
	return node, pkg
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestSDK runs `node --test` with a live server and two accounts: one with
// role user, one holding only role system.
func TestSDK(t *testing.T) {
	t.Parallel()
	node, _ := nodeReady(t)
	e := apitest.New(t)
	user := e.CreateUser(t, "sdk-user@example.com", "user")
	other := e.CreateUser(t, "sdk-system@example.com", "system")

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap")
	cmd.Env = append(os.Environ(),
		"ROLEGATE_URL="+e.URL,
		"ROLEGATE_TEST_EMAIL="+user.Email,
		"ROLEGATE_TEST_PASSWORD="+user.Password,
		"ROLEGATE_TEST_OTHER_EMAIL="+other.Email,
		"ROLEGATE_TEST_OTHER_PASSWORD="+other.Password,
		"NO_COLOR=1",
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test in clients/ts: %v\n%s", err, out)
	}
	// The live tests skip themselves without ROLEGATE_URL; here none may.
	if bytes.Contains(out, []byte("# SKIP")) {
		t.Fatalf("node --test skipped tests although the server's URL and accounts were set:\n%s", out)
	}
	if !bytes.Contains(out, []byte("\n# fail 0\n")) {
		t.Fatalf("node --test did not report its results:\n%s", out)
	}
	t.Logf("node --test:\n%s", out)
}

// TestSchemaIsCurrent runs the generate script's command with its output
// redirected to a temporary file and compares that with the checked-in
// gen/ts/schema.d.ts.
func TestSchemaIsCurrent(t *testing.T) {
	t.Parallel()
	_, pkg := nodeReady(t)
	script := pkg.Scripts["generate"]
	if strings.Count(script, " -o "+schemaOut) != 1 {
		t.Fatalf("package.json's generate script %q does not write -o %s", script, schemaOut)
	}
	out := filepath.Join(t.TempDir(), "schema.d.ts")
	bin, err := filepath.Abs(filepath.Join("node_modules", ".bin"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", strings.Replace(script, " -o "+schemaOut, " -o "+out, 1))
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "NO_COLOR=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(schemaOut)
	if err != nil {
		t.Fatalf("%v: run make generate and commit gen/ts/schema.d.ts", err)
	}
	if !bytes.Equal(want, got) {
		t.Fatal("gen/ts/schema.d.ts differs from what api/openapi.yaml generates: run make generate and commit")
	}
}
