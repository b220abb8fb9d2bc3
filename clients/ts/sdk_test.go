// Package ts_test runs the TypeScript SDK's node test suite (test/*.test.mjs)
// against a live rolegate on a fresh database, installs the package `npm
// pack` makes into a scratch project and uses it there, and checks that
// gen/ts/schema.d.ts is what `npm run generate` makes of api/openapi.yaml.
//
// They need Node.js, npm and this directory's node_modules: `npm --prefix
// clients/ts ci` (which `make test` runs first), which also leaves the
// SDK's dependencies in the npm cache for the scratch project.
package ts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/mail/mailtest"
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

// signInRedirect is the redirect URI of the public client the sign-in
// test signs in through, on loopback as an app served by a development
// server would be. Nothing listens there: the test takes the redirect's
// Location as the URL the browser came back to.
const signInRedirect = "http://127.0.0.1:5173/callback"

// TestSDK runs `node --test` with a live server whose issuer is its URL,
// as in production (the sign-in's id token and callback must name it),
// sign-up open and its mail going to an SMTP server in the test, whose
// messages the node tests read at ROLEGATE_TEST_MAILBOX_URL (see
// mailbox); four accounts: one with role user, one holding only role
// system, an administrator, with which the session tests make accounts of
// their own, and one with role user that signs in from the browser; and a
// public client registered through the API with signInRedirect.
func TestSDK(t *testing.T) {
	t.Parallel()
	node, _ := nodeReady(t)
	smtp := mailtest.NewServer(t, mailtest.Options{})
	e := apitest.New(t, apitest.Options{URLIssuer: true, SMTPURL: smtp.URL(), SignUp: true})
	user := e.CreateUser(t, "sdk-user@example.com", "user")
	other := e.CreateUser(t, "sdk-system@example.com", "system")
	admin := e.CreateUser(t, "sdk-admin@example.com", "admin")
	person := e.CreateUser(t, "sdk-browser@example.com", "user")
	clientID := registerPublicClient(t, e, e.Token(t, admin), signInRedirect)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=tap")
	cmd.Env = append(os.Environ(),
		"ROLEGATE_URL="+e.URL,
		"ROLEGATE_TEST_EMAIL="+user.Email,
		"ROLEGATE_TEST_PASSWORD="+user.Password,
		"ROLEGATE_TEST_OTHER_EMAIL="+other.Email,
		"ROLEGATE_TEST_OTHER_PASSWORD="+other.Password,
		"ROLEGATE_TEST_ADMIN_EMAIL="+admin.Email,
		"ROLEGATE_TEST_ADMIN_PASSWORD="+admin.Password,
		"ROLEGATE_TEST_SIGNIN_EMAIL="+person.Email,
		"ROLEGATE_TEST_SIGNIN_PASSWORD="+person.Password,
		"ROLEGATE_TEST_CLIENT_ID="+clientID,
		"ROLEGATE_TEST_REDIRECT_URI="+signInRedirect,
		"ROLEGATE_TEST_MAILBOX_URL="+mailbox(t, smtp),
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

// mailedMessage is a message the test's SMTP server took, as the mailbox
// shows it.
type mailedMessage struct {
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
}

// mailbox serves, at the URL it returns, the messages smtp has taken so
// far: GET answers a JSON array of {to, subject, text} (the envelope's
// recipients and the decoded text part), in the order they arrived. It
// answers at once; a test waiting for a mail polls. It listens on loopback
// until the test ends.
func mailbox(t *testing.T, smtp *mailtest.Server) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		msgs := []mailedMessage{}
		for _, m := range smtp.Received() {
			msgs = append(msgs, mailedMessage{To: m.To, Subject: m.Subject, Text: m.Text})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(msgs) // a client gone is its own failure
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// registerPublicClient registers a public client (no secret, PKCE) with
// the one redirect URI through POST /clients, as an administrator, and
// returns its client_id.
func registerPublicClient(t *testing.T, e *apitest.Env, adminToken, redirectURI string) string {
	t.Helper()
	body, err := json.Marshal(map[string]any{"name": "SDK sign-in test", "public": true, "redirect_uris": []string{redirectURI}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.URL+"/clients", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := apitest.HTTPClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		ClientID string `json:"client_id"`
		Public   bool   `json:"public"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusCreated || c.ClientID == "" || !c.Public {
		t.Fatalf("POST /clients = %d %+v (%v), want 201 and a public client", resp.StatusCode, c, err)
	}
	return c.ClientID
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

// shipped is every file the package's tarball must hold, and nothing else:
// the code, its declarations and the schema they import, no tests.
var shipped = []string{"README.md", "dist/index.d.ts", "dist/schema.d.ts", "package.json", "src/index.js"}

// consumerJS is a JavaScript program using the installed package: it logs
// in, prints the caller's email as GET /identify/me gives it, and logs out.
const consumerJS = `import { createRolegateClient } from "@rolegate/client";

const rg = createRolegateClient({ baseUrl: process.env.ROLEGATE_URL });
const login = await rg.login(process.env.ROLEGATE_TEST_EMAIL, process.env.ROLEGATE_TEST_PASSWORD);
if (login.error) throw new Error("login: " + JSON.stringify(login.error));
const me = await rg.GET("/identify/me");
if (me.error) throw new Error("GET /identify/me: " + JSON.stringify(me.error));
console.log(me.data.email);
const out = await rg.logout();
if (out?.response.status !== 200) throw new Error("logout: " + out?.response.status);
`

// consumerTS is a TypeScript module using the installed package's types.
// Every @ts-expect-error must meet an error, so types that degrade to any
// fail the check as much as types that do not resolve.
const consumerTS = `import { createRolegateClient, type Identity, type RolegateClient } from "@rolegate/client";

export async function me(baseUrl: string, email: string, password: string): Promise<Identity | undefined> {
  const rg: RolegateClient = createRolegateClient({ baseUrl, now: Date.now });
  const login = await rg.login(email, password);
  if (login.error) {
    throw new Error("error" in login.error ? login.error.error : login.error.title);
  }
  const seconds: number = login.data.expires_in;
  // @ts-expect-error: not a path of the spec
  await rg.GET("/no-such-path");
  const { data } = await rg.GET("/identify/me");
  // @ts-expect-error: Identity has no field named name
  void data?.name;
  // @ts-expect-error: the token is read-only
  rg.token = String(seconds);
  await rg.logout();
  return data;
}
`

// TestPackage packs the SDK with `npm pack` as it would be published,
// installs the tarball into a scratch project from the npm cache alone, and
// uses it there: a program logs in against a live server, and tsc checks a
// TypeScript module against the types the tarball ships.
func TestPackage(t *testing.T) {
	t.Parallel()
	node, pkg := nodeReady(t)
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is not on PATH: install Node.js 20 or later with npm, then %s", install)
	}
	tsc, err := filepath.Abs(filepath.Join("node_modules", "typescript", "bin", "tsc"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	run := func(dir string, env []string, name string, args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append(env, "NO_COLOR=1", "npm_config_update_notifier=false")...)
		cmd.WaitDelay = 10 * time.Second
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s (in %s): %v\n%s%s", filepath.Base(name), strings.Join(args, " "), dir, err, out, stderr.Bytes())
		}
		return out
	}

	// prepack (scripts/pack.mjs) writes dist/ and postpack removes it.
	packDir := t.TempDir()
	var packed []struct {
		Filename string `json:"filename"`
		Files    []struct {
			Path string `json:"path"`
		} `json:"files"`
	}
	if err := json.Unmarshal(run(".", nil, npm, "pack", "--json", "--pack-destination", packDir), &packed); err != nil || len(packed) != 1 {
		t.Fatalf("npm pack --json: %v, %d packages", err, len(packed))
	}
	var files []string
	for _, f := range packed[0].Files {
		files = append(files, f.Path)
	}
	slices.Sort(files)
	if diff := cmp.Diff(shipped, files); diff != "" {
		t.Errorf("the tarball's files (-want +got):\n%s", diff)
	}
	tarball := filepath.Join(packDir, packed[0].Filename)

	// The scratch project's lockfile starts with the SDK's dependencies as
	// clients/ts/package-lock.json pins them, so that npm resolves them
	// from the cache (where `npm ci` in clients/ts put their tarballs)
	// instead of asking the registry for their metadata.
	scratch := t.TempDir()
	writeFile(t, filepath.Join(scratch, "package.json"), `{"name": "rolegate-sdk-consumer", "private": true, "type": "module"}`)
	writeFile(t, filepath.Join(scratch, "package-lock.json"), string(seedLock(t, pkg)))
	run(scratch, nil, npm, "install", "--offline", "--no-audit", "--no-fund", tarball)

	installed, err := os.ReadFile(filepath.Join(scratch, "node_modules", "@rolegate", "client", "dist", "schema.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	if want, err := os.ReadFile(schemaOut); err != nil || !bytes.Equal(installed, want) {
		t.Errorf("the installed dist/schema.d.ts is not gen/ts/schema.d.ts (%v)", err)
	}

	e := apitest.New(t)
	user := e.CreateUser(t, "sdk-package@example.com", "user")
	writeFile(t, filepath.Join(scratch, "main.mjs"), consumerJS)
	out := run(scratch, []string{
		"ROLEGATE_URL=" + e.URL,
		"ROLEGATE_TEST_EMAIL=" + user.Email,
		"ROLEGATE_TEST_PASSWORD=" + user.Password,
	}, node, "main.mjs")
	if got, want := string(out), user.Email+"\n"; got != want {
		t.Errorf("node main.mjs printed %q, want %q", got, want)
	}

	writeFile(t, filepath.Join(scratch, "consumer.ts"), consumerTS)
	for _, resolution := range [][]string{
		{"--module", "node16", "--moduleResolution", "node16"},
		{"--module", "esnext", "--moduleResolution", "bundler"},
	} {
		args := append([]string{tsc, "--noEmit", "--strict", "--target", "es2022", "--lib", "es2022,dom"}, resolution...)
		run(scratch, nil, node, append(args, "consumer.ts")...)
	}
}

// seedLock returns a lockfile (version 3) for an empty project that holds
// the SDK's dependencies, and theirs, as package-lock.json pins them.
func seedLock(t *testing.T, pkg packageJSON) []byte {
	t.Helper()
	var lock struct {
		Packages map[string]json.RawMessage `json:"packages"`
	}
	readJSON(t, "package-lock.json", &lock)
	seeded := map[string]json.RawMessage{"": json.RawMessage(`{"name": "rolegate-sdk-consumer"}`)}
	todo := slices.Collect(maps.Keys(pkg.Dependencies))
	for len(todo) > 0 {
		name := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		key := "node_modules/" + name
		if _, ok := seeded[key]; ok {
			continue
		}
		entry, ok := lock.Packages[key]
		if !ok {
			t.Fatalf("package-lock.json lacks %s: %s", key, install)
		}
		var deps struct {
			Dependencies map[string]string `json:"dependencies"`
		}
		if err := json.Unmarshal(entry, &deps); err != nil {
			t.Fatalf("package-lock.json %s: %v", key, err)
		}
		seeded[key] = entry
		todo = slices.AppendSeq(todo, maps.Keys(deps.Dependencies))
	}
	b, err := json.MarshalIndent(map[string]any{
		"name": "rolegate-sdk-consumer", "lockfileVersion": 3, "requires": true, "packages": seeded,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
