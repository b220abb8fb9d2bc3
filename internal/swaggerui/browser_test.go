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

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// Time limits of TestBrowserSwaggerUI: the browser lives at most
// browserTimeout; the steps must finish within stepsTimeout, which leaves
// time to take the screenshot of a failure.
const (
	browserTimeout = 90 * time.Second
	stepsTimeout   = 60 * time.Second
)

// TestBrowserSwaggerUI drives Swagger UI at /docs in Debian's Chromium: it
// logs in through the Authorize dialog's OAuth2 password flow, runs
// GET /identify/me with "Try it out" and expects the caller's identity. The
// page must log no Content-Security-Policy violation and no error of its own
// scripts. A full-page screenshot is left in $ROLEGATE_ARTIFACTS, or in
// test-artifacts/ at the repository root.
func TestBrowserSwaggerUI(t *testing.T) {
	chromium := findChromium()
	if chromium == "" {
		t.Skip("chromium not found: install Debian's chromium package to run the Swagger UI browser test")
	}
	// ROLEGATE_DOCS_URL, _EMAIL and _PASSWORD point the test at a running
	// server instead (e.g. `make run` and its first administrator), to check
	// a real deployment by hand.
	baseURL := os.Getenv("ROLEGATE_DOCS_URL")
	u := apitest.User{Email: os.Getenv("ROLEGATE_DOCS_EMAIL"), Password: os.Getenv("ROLEGATE_DOCS_PASSWORD")}
	if baseURL == "" {
		e := apitest.New(t)
		u = e.CreateUser(t, "browser@example.com", "user")
		baseURL = e.URL
	}

	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
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
	defer cancelAlloc() // stops the browser and waits for it, before TempDir's removal
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()

	// Start the browser, then listen to the tab's console and log before
	// anything is loaded.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	var console consoleLog
	if err := chromedp.Listen(browserCtx, console.record); err != nil {
		t.Fatal(err)
	}

	stepsCtx, cancelSteps := context.WithTimeout(browserCtx, stepsTimeout)
	defer cancelSteps()
	status, body, err := tryGetMe(stepsCtx, baseURL, u)

	// The screenshot is taken whatever happened, to show where a failure
	// stopped.
	if shot, serr := chromedp.Run(browserCtx, chromedp.FullScreenshot(100)); serr != nil {
		t.Errorf("screenshot: %v", serr)
	} else {
		path := filepath.Join(artifactDir(t), "TestBrowserSwaggerUI.png")
		if werr := os.WriteFile(path, shot, 0o644); werr != nil {
			t.Errorf("saving the screenshot: %v", werr)
		} else {
			t.Logf("screenshot: %s", path)
		}
	}

	for _, m := range console.messages() {
		t.Logf("browser console: %s", m)
		if m.bad(baseURL) {
			t.Errorf("the page logged: %s", m)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if status != "200" {
		t.Errorf("GET /identify/me in Swagger UI: status %q, want 200; body:\n%s", status, body)
	}
	if !strings.Contains(body, `"`+u.Email+`"`) {
		t.Errorf("GET /identify/me in Swagger UI: the response body lacks %q:\n%s", u.Email, body)
	}
}

// tryGetMe opens Swagger UI at baseURL/docs, logs in as u with the OAuth2
// password flow of the Authorize dialog, runs GET /identify/me with "Try it
// out" and returns the status and the response body the page shows.
func tryGetMe(ctx context.Context, baseURL string, u apitest.User) (status, body string, err error) {
	// The dialog's section of the OAuth2 password scheme.
	const oauth2 = `//div[contains(concat(" ", normalize-space(@class), " "), " auth-container ")]` +
		`[.//h4[contains(., "OAuth2PasswordBearer") and contains(., "password")]]` // not the client credentials flow
	// GET /identify/me: tag auth, operationId getMe.
	const op = "#operations-auth-getMe"
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) error {
		if err := chromedp.Do(ctx, actions...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}

	if err := step("loading /docs",
		chromedp.Navigate(baseURL+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(op+" .opblock-summary")),
	); err != nil {
		return "", "", err
	}

	const logout = oauth2 + `//button[normalize-space()="Logout"]`
	const authError = oauth2 + `//div[contains(concat(" ", normalize-space(@class), " "), " errors ")]`
	if err := step("logging in through the Authorize dialog",
		chromedp.Click(chromedp.CSS(".scheme-container .btn.authorize")),
		chromedp.WaitVisible(chromedp.Search(oauth2+`//input[@id="oauth_username"]`)),
		// The dialog offers machine clients their flow too.
		chromedp.WaitVisible(chromedp.Search(`//div[contains(concat(" ", normalize-space(@class), " "), " auth-container ")]`+
			`[.//h4[contains(., "OAuth2ClientCredentials")]]//input[starts-with(@id, "client_secret")]`)),
		chromedp.SendKeys(chromedp.Search(oauth2+`//input[@id="oauth_username"]`), u.Email),
		chromedp.SendKeys(chromedp.Search(oauth2+`//input[@id="oauth_password"]`), u.Password),
		chromedp.Click(chromedp.Search(oauth2+`//button[normalize-space()="Authorize"]`)),
		// Logged in, the section offers Logout instead; a failed login
		// shows an error in the section.
		chromedp.WaitVisible(chromedp.Search(logout+" | "+authError)),
	); err != nil {
		return "", "", err
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.Search(logout+" | "+authError))); err != nil {
		return "", "", fmt.Errorf("reading the result of the login: %w", err)
	} else if strings.TrimSpace(msg) != "Logout" {
		return "", "", fmt.Errorf("logging in through the Authorize dialog: Swagger UI shows %q", msg)
	}
	if err := step("closing the Authorize dialog",
		chromedp.Click(chromedp.Search(oauth2+`//button[normalize-space()="Close"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(".dialog-ux")),
	); err != nil {
		return "", "", err
	}

	if err := step("expanding GET /identify/me",
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
		if err := step(`clicking "Try it out"`, chromedp.Click(chromedp.CSS(op+" .try-out__btn"))); err != nil {
			return "", "", err
		}
	}

	const response = op + " .live-responses-table .response"
	if err := step("executing GET /identify/me",
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
