package swaggerui_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// Time limits of the browser tests: the browser lives at most
// browserTimeout; the steps must finish within stepsTimeout, which leaves
// time to take the screenshot of a failure.
const (
	browserTimeout = 90 * time.Second
	stepsTimeout   = 60 * time.Second
	// shotTimeout bounds a screenshot.
	shotTimeout = 10 * time.Second
	// closeTimeout is how long the sign-in window may take, once the
	// form is sent, to come back to oauth2-redirect.html and close.
	closeTimeout = 20 * time.Second
)

// TestBrowserSwaggerUI drives Swagger UI at /docs in Debian's Chromium: it
// logs in through the Authorize dialog's OAuth2 password flow, runs
// GET /identify/me with "Try it out" and expects the caller's identity. The
// page must log no Content-Security-Policy violation and no error of its own
// scripts. A full-page screenshot is left in $ROLEGATE_ARTIFACTS, or in
// test-artifacts/ at the repository root.
func TestBrowserSwaggerUI(t *testing.T) {
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(b.ctx, stepsTimeout)
	defer cancel()
	err := openDocs(ctx, b.baseURL)
	if err == nil {
		err = passwordLogin(ctx, b.user)
	}
	b.finish(t, ctx, err, "TestBrowserSwaggerUI.png")
}

// TestBrowserSwaggerUICodeFlow signs in from Swagger UI as a person does
// in a browser: the Authorize dialog's authorization code flow with PKCE,
// as the built-in docs client (rolegate-docs), through rolegate's sign-in
// page in the window the dialog opens, back through oauth2-redirect.html,
// which hands the code to the dialog; the dialog exchanges it at /token
// with no secret. GET /identify/me with "Try it out" must then show the
// person. Neither the docs page nor the sign-in window may log a
// Content-Security-Policy violation or a script error. The screenshot is
// TestBrowserSwaggerUICodeFlow.png, and the sign-in window's, when a step
// in it fails, TestBrowserSwaggerUICodeFlow-sign-in.png.
func TestBrowserSwaggerUICodeFlow(t *testing.T) {
	b := startBrowser(t)
	ctx, cancel := context.WithTimeout(b.ctx, stepsTimeout)
	defer cancel()
	err := openDocs(ctx, b.baseURL)
	if err == nil {
		err = codeFlowLogin(t, ctx, b)
	}
	b.finish(t, ctx, err, "TestBrowserSwaggerUICodeFlow.png")
}

// browser is a headless Chromium with one tab, and the rolegate it tests.
type browser struct {
	// ctx is the tab's, bounded by browserTimeout.
	ctx     context.Context
	console *consoleLog
	baseURL string
	user    apitest.User
}

// startBrowser starts Chromium and the rolegate it tests (or skips the
// test without Chromium); both stop when the test ends.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	chromium := findChromium()
	if chromium == "" {
		t.Skip("chromium not found: install Debian's chromium package to run the Swagger UI browser test")
	}
	// ROLEGATE_DOCS_URL, _EMAIL and _PASSWORD point the test at a running
	// server instead (e.g. `make run` and its first administrator), to check
	// a real deployment by hand.
	b := &browser{
		console: &consoleLog{},
		baseURL: os.Getenv("ROLEGATE_DOCS_URL"),
		user:    apitest.User{Email: os.Getenv("ROLEGATE_DOCS_EMAIL"), Password: os.Getenv("ROLEGATE_DOCS_PASSWORD")},
	}
	if b.baseURL == "" {
		e := apitest.New(t)
		b.user = e.CreateUser(t, "browser@example.com", "user")
		b.baseURL = e.URL
	}

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	t.Cleanup(cancel)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // the tests run as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1024),
	)
	t.Cleanup(cancelAlloc) // stops the browser and waits for it, before TempDir's removal
	// The tab's console and log are listened to from its start.
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(b.console.record))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	b.ctx = browserCtx
	return b
}

// finish ends a browser test whose login gave err: when it succeeded, it
// runs GET /identify/me in ctx, the steps', and checks that it shows
// b.user; it leaves a screenshot of the tab in the artifacts directory as
// name, whatever happened, and fails on what the pages logged.
func (b *browser) finish(t *testing.T, ctx context.Context, err error, name string) {
	t.Helper()
	var status, body string
	if err == nil {
		status, body, err = getMe(ctx)
	}
	// The screenshot is taken whatever happened, to show where a failure
	// stopped.
	screenshot(t, b.ctx, name)
	for _, m := range b.console.messages() {
		t.Logf("browser console: %s", m)
		if m.bad(b.baseURL) {
			t.Errorf("the page logged: %s", m)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if status != "200" {
		t.Errorf("GET /identify/me in Swagger UI: status %q, want 200; body:\n%s", status, body)
	}
	if !strings.Contains(body, `"`+b.user.Email+`"`) {
		t.Errorf("GET /identify/me in Swagger UI: the response body lacks %q:\n%s", b.user.Email, body)
	}
}

// screenshot saves a full-page screenshot of the tab of ctx in the
// artifacts directory as name. The tab is brought to the front first: a
// headless window behind another renders no frame to capture.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, shotTimeout)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tab *chromedp.Target) error {
		_, err := cdp.Call(ctx, tab, page.BringToFront, cdp.Empty{})
		return err
	}))
	var shot []byte
	if err == nil {
		shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	}
	if err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Errorf("saving the screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", path)
}

// XPath of the Authorize dialog's sections, by scheme and flow.
const (
	// The OAuth2 password scheme's; not its client credentials flow.
	passwordSection = `//div[contains(concat(" ", normalize-space(@class), " "), " auth-container ")]` +
		`[.//h4[contains(., "OAuth2PasswordBearer") and contains(., "password")]]`
	clientSection = `//div[contains(concat(" ", normalize-space(@class), " "), " auth-container ")]` +
		`[.//h4[contains(., "OAuth2ClientCredentials")]]`
	// The authorization code scheme's, with PKCE (initOAuth's
	// usePkceWithAuthorizationCodeGrant).
	codeSection = `//div[contains(concat(" ", normalize-space(@class), " "), " auth-container ")]` +
		`[.//h4[contains(., "OAuth2AuthorizationCode") and contains(., "authorizationCode with PKCE")]]`
)

// step runs actions in ctx; an error names what was being done.
func step(ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) error {
	if err := chromedp.Do(ctx, actions...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// GET /identify/me: tag auth, operationId getMe.
const getMeOp = "#operations-auth-getMe"

// openDocs opens Swagger UI at baseURL/docs.
func openDocs(ctx context.Context, baseURL string) error {
	return step(ctx, "loading /docs",
		chromedp.Navigate(baseURL+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(getMeOp+" .opblock-summary")),
	)
}

// passwordLogin logs in as u with the OAuth2 password flow of the Authorize
// dialog, and closes the dialog.
func passwordLogin(ctx context.Context, u apitest.User) error {
	if err := step(ctx, "logging in through the Authorize dialog",
		chromedp.Click(chromedp.CSS(".scheme-container .btn.authorize")),
		chromedp.WaitVisible(chromedp.Search(passwordSection+`//input[@id="oauth_username"]`)),
		// The dialog offers machine clients their flow too.
		chromedp.WaitVisible(chromedp.Search(clientSection+`//input[starts-with(@id, "client_secret")]`)),
		chromedp.SendKeys(chromedp.Search(passwordSection+`//input[@id="oauth_username"]`), u.Email),
		chromedp.SendKeys(chromedp.Search(passwordSection+`//input[@id="oauth_password"]`), u.Password),
		chromedp.Click(chromedp.Search(passwordSection+`//button[normalize-space()="Authorize"]`)),
	); err != nil {
		return err
	}
	return authorized(ctx, passwordSection, "logging in through the Authorize dialog")
}

// authorized waits for the dialog's section to show that it is logged in,
// or an error, and closes the dialog.
func authorized(ctx context.Context, section, what string) error {
	// Logged in, the section offers Logout instead; a failed login shows
	// an error in the section.
	logout := section + `//button[normalize-space()="Logout"]`
	authError := section + `//div[contains(concat(" ", normalize-space(@class), " "), " errors ")]`
	if err := step(ctx, what, chromedp.WaitVisible(chromedp.Search(logout+" | "+authError))); err != nil {
		return err
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.Search(logout+" | "+authError))); err != nil {
		return fmt.Errorf("reading the result of the login: %w", err)
	} else if strings.TrimSpace(msg) != "Logout" {
		return fmt.Errorf("%s: Swagger UI shows %q", what, msg)
	}
	return step(ctx, "closing the Authorize dialog",
		chromedp.Click(chromedp.Search(section+`//button[normalize-space()="Close"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(".dialog-ux")),
	)
}

// codeFlowLogin signs b.user in with the Authorize dialog's authorization
// code flow: the dialog opens /authorize in a new window, where the person
// signs in on rolegate's page; the window comes back to
// oauth2-redirect.html, which hands the code to the dialog and closes.
func codeFlowLogin(t *testing.T, ctx context.Context, b *browser) error {
	t.Helper()
	clientID := codeSection + `//input[@id="client_id_authorizationCode"]`
	if err := step(ctx, "opening the Authorize dialog",
		chromedp.Click(chromedp.CSS(".scheme-container .btn.authorize")),
		chromedp.WaitVisible(chromedp.Search(clientID)),
		// The flow is a public client's: no secret to give.
		chromedp.WaitNotVisible(chromedp.Search(codeSection+`//input[@id="client_secret_authorizationCode"]`)),
		chromedp.WaitVisible(chromedp.Search(clientSection+`//input[@id="client_id_clientCredentials"]`)),
	); err != nil {
		return err
	}
	// initOAuth's client is the code flow's only: the machine clients'
	// flow starts empty.
	for _, f := range []struct{ what, xpath, want string }{
		{"the authorization code flow's client_id", clientID, "rolegate-docs"},
		{"the client credentials flow's client_id", clientSection + `//input[@id="client_id_clientCredentials"]`, ""},
	} {
		got, err := chromedp.Run(ctx, chromedp.Value(chromedp.Search(f.xpath)))
		if err != nil {
			return fmt.Errorf("reading %s: %w", f.what, err)
		}
		if got != f.want {
			return fmt.Errorf("the Authorize dialog: %s is %q, want %q", f.what, got, f.want)
		}
	}

	// Swagger UI opens the authorization URL with window.open: a new
	// target whose opener is the tab.
	tab := chromedp.FromContext(b.ctx).Target.TargetID
	opened := chromedp.WaitNewTarget(b.ctx, func(info *target.Info) bool { return info.OpenerID == tab })
	if err := step(ctx, "starting the authorization code flow",
		chromedp.Click(chromedp.Search(codeSection+`//button[normalize-space()="Authorize"]`)),
	); err != nil {
		return err
	}
	var id target.ID
	select {
	case id = <-opened:
	case <-ctx.Done():
		return fmt.Errorf("starting the authorization code flow: Swagger UI opened no window for /authorize: %w", ctx.Err())
	}
	if id == "" {
		return errors.New("starting the authorization code flow: waiting for the sign-in window failed")
	}
	win, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(id), chromedp.WithListener(b.console.record))
	defer cancel()
	// The window's steps share the test's deadline.
	deadline, _ := ctx.Deadline()
	winCtx, cancelSteps := context.WithDeadline(win, deadline)
	defer cancelSteps()
	if err := step(winCtx, "the sign-in page in the window Swagger UI opened",
		chromedp.WaitVisible(chromedp.CSS("input#email")),
	); err != nil {
		screenshot(t, win, "TestBrowserSwaggerUICodeFlow-sign-in.png")
		return err
	}
	if lead, err := chromedp.Run(winCtx, chromedp.Text(chromedp.CSS("p.lead"))); err != nil || !strings.Contains(lead, "rolegate API docs") {
		screenshot(t, win, "TestBrowserSwaggerUICodeFlow-sign-in.png")
		return fmt.Errorf("the sign-in page does not name the docs client: %q (%v)", lead, err)
	}
	gone, err := chromedp.Detached(win)
	if err != nil {
		return fmt.Errorf("following the sign-in window: %w", err)
	}
	if err := step(winCtx, "signing in on rolegate's page",
		chromedp.SendKeys(chromedp.CSS("input#email"), b.user.Email),
		chromedp.SendKeys(chromedp.CSS("input#password"), b.user.Password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
	); err != nil {
		screenshot(t, win, "TestBrowserSwaggerUICodeFlow-sign-in.png")
		return err
	}
	// oauth2-redirect.html closes the window once it has handed the code
	// over; a window left open is a sign-in that went wrong (a wrong
	// password, a refused redirect) or a script that did not run.
	closing, cancelClosing := context.WithTimeout(winCtx, closeTimeout)
	defer cancelClosing()
	select {
	case <-gone:
	case <-closing.Done():
		at, _ := chromedp.Run(winCtx, chromedp.Location())
		title, _ := chromedp.Run(winCtx, chromedp.Title())
		screenshot(t, win, "TestBrowserSwaggerUICodeFlow-sign-in.png")
		return fmt.Errorf("signing in on rolegate's page: the window is still open after %v, showing %q at %s", closeTimeout, title, at)
	}
	return authorized(ctx, codeSection, "exchanging the code from the sign-in window")
}

// getMe runs GET /identify/me with "Try it out" and returns the status and
// the response body the page shows.
func getMe(ctx context.Context) (status, body string, err error) {
	const op = getMeOp
	if err := step(ctx, "expanding GET /identify/me",
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.WaitVisible(chromedp.CSS(op+" .try-out__btn")),
	); err != nil {
		return "", "", err
	}
	// The initializer sets tryItOutEnabled, so the operation may open in
	// "Try it out" mode already, its button then reading "Cancel".
	label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(op+" .try-out__btn")))
	if err != nil {
		return "", "", fmt.Errorf("reading the Try it out button: %w", err)
	}
	if strings.TrimSpace(label) == "Try it out" {
		if err := step(ctx, `clicking "Try it out"`, chromedp.Click(chromedp.CSS(op+" .try-out__btn"))); err != nil {
			return "", "", err
		}
	}

	const response = op + " .live-responses-table .response"
	if err := step(ctx, "executing GET /identify/me",
		chromedp.Click(chromedp.CSS(op+" .btn.execute")),
		chromedp.WaitVisible(chromedp.CSS(response+" .response-col_status")),
		chromedp.WaitVisible(chromedp.CSS(response+" .response-col_description .highlight-code")),
	); err != nil {
		return "", "", err
	}
	if status, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(response+" .response-col_status"))); err != nil {
		return "", "", fmt.Errorf("reading the response status: %w", err)
	}
	if body, err = chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(response+" .response-col_description .highlight-code pre"))); err != nil {
		return "", "", fmt.Errorf("reading the response body: %w", err)
	}
	return strings.TrimSpace(status), body, nil
}

// findChromium returns the path of Debian's Chromium, or "" when it is not
// installed.
func findChromium() string {
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if path, err := exec.LookPath("chromium"); err == nil {
		return path
	}
	return ""
}

// artifactDir returns $ROLEGATE_ARTIFACTS, or test-artifacts/ at the root of
// the module, creating it.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ROLEGATE_ARTIFACTS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// moduleRoot is the nearest directory above the working directory (the
// package's) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// consoleMessage is a console call, an uncaught exception or a browser log
// entry of the page.
type consoleMessage struct {
	kind  string // "console", "exception" or "log"
	level string // console call type or log level
	text  string
	// source is the log entry's source ("security", "network", ...).
	source string
	// urls are where it came from: the log entry's URL, the exception's, the
	// scripts on the stack.
	urls []string
}

func (m consoleMessage) String() string {
	s := m.kind + " " + m.level
	if m.source != "" {
		s += " (" + m.source + ")"
	}
	s += ": " + m.text
	if len(m.urls) > 0 {
		s += " [" + m.urls[0] + "]"
	}
	return s
}

// bad reports whether m fails the test: it mentions the Content Security
// Policy, or it is an error of the page's own scripts (served from baseURL)
// or an uncaught exception.
func (m consoleMessage) bad(baseURL string) bool {
	if strings.Contains(strings.ToLower(m.text), "content security policy") {
		return true
	}
	switch {
	case m.kind == "exception":
		return true
	case m.kind == "console" && (m.level == "error" || m.level == "assert"):
		return true
	case m.kind == "log" && m.level == "error":
		// Chromium asks for /favicon.ico by itself for a page that names
		// no icon (the sign-in page, oauth2-redirect.html); rolegate
		// serves none there.
		if m.source == "network" && len(m.urls) == 1 && m.urls[0] == baseURL+"/favicon.ico" {
			return false
		}
		for _, u := range m.urls {
			if strings.HasPrefix(u, baseURL+"/") {
				return true
			}
		}
		return m.source == "javascript" || m.source == "security"
	}
	return false
}

// consoleLog collects the messages of a tab; record is its chromedp.Listen
// func, so it only copies and returns.
type consoleLog struct {
	mu   sync.Mutex
	msgs []consoleMessage
}

func (c *consoleLog) record(ev any) {
	var m consoleMessage
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var parts []string
		for _, a := range ev.Args {
			parts = append(parts, remoteText(a))
		}
		m = consoleMessage{kind: "console", level: string(ev.Type), text: strings.Join(parts, " "), urls: stackURLs(ev.StackTrace)}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		m = consoleMessage{kind: "exception", level: "error", text: text, urls: append([]string{d.URL}, stackURLs(d.StackTrace)...)}
	case *log.EventEntryAdded:
		en := ev.Entry
		m = consoleMessage{kind: "log", level: string(en.Level), text: en.Text, source: string(en.Source), urls: append([]string{en.URL}, stackURLs(en.StackTrace)...)}
	default:
		return
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *consoleLog) messages() []consoleMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]consoleMessage(nil), c.msgs...)
}

// remoteText is a console argument as text: a string as it is, another
// value as JSON or its description.
func remoteText(o *runtime.RemoteObject) string {
	switch {
	case o == nil:
		return ""
	case o.Type == runtime.RemoteObjectTypeString && len(o.Value) > 0:
		s := string(o.Value)
		if len(s) >= 2 && s[0] == '"' {
			s = s[1 : len(s)-1]
		}
		return s
	case len(o.Value) > 0:
		return string(o.Value)
	case o.UnserializableValue != "":
		return string(o.UnserializableValue)
	}
	return o.Description
}

func stackURLs(st *runtime.StackTrace) []string {
	var urls []string
	for ; st != nil; st = st.Parent {
		for _, f := range st.CallFrames {
			if f.URL != "" {
				urls = append(urls, f.URL)
			}
		}
	}
	return urls
}
