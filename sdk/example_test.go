package sdk_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"

	"github.com/rolegate/rolegate/gen/api"
)

// A command-line program signs a person in on rolegate's sign-in page in
// their browser (the authorization code flow with PKCE, through
// golang.org/x/oauth2), then calls the API as them through the generated
// client, with oauth2's HTTP client keeping the access token fresh, and
// finally ends the session. The program is the public client notes-cli,
// registered at rolegate with the loopback redirect URI
// http://127.0.0.1:8085/callback (RFC 8252 section 7.3).
func Example_signIn() {
	ctx := context.Background()
	server := "https://id.example.com" // rolegate's public URL

	conf := &oauth2.Config{
		ClientID:    "notes-cli", // a public client: no ClientSecret
		RedirectURL: "http://127.0.0.1:8085/callback",
		Scopes:      []string{"openid", "email", "offline_access"}, // offline_access: a refresh token
		Endpoint: oauth2.Endpoint{
			AuthURL:  server + "/authorize",
			TokenURL: server + "/token",
			// client_id in the form and no secret, in the exchange and
			// in every refresh, as a public client sends it.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}

	// The redirect URI's listener first, so that the browser finds it.
	ln, err := net.Listen("tcp", "127.0.0.1:8085")
	if err != nil {
		log.Fatal(err)
	}
	verifier := oauth2.GenerateVerifier()
	state := rand.Text()
	fmt.Println("Sign in at", conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))

	answers := make(chan url.Values, 1)
	callback := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/callback" || q.Get("state") != state {
			http.Error(w, "This is no answer to this program's sign-in.", http.StatusBadRequest)
			return
		}
		select {
		case answers <- q:
			fmt.Fprintln(w, "You can close this tab and go back to the terminal.")
		default: // the state is used up
			http.Error(w, "This sign-in is over.", http.StatusBadRequest)
		}
	})}
	go callback.Serve(ln)
	q := <-answers
	_ = callback.Shutdown(ctx)
	if e := q.Get("error"); e != "" {
		log.Fatalf("sign-in: %s: %s", e, q.Get("error_description")) // e.g. access_denied
	}

	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		log.Fatal(err) // a *oauth2.RetrieveError, e.g. ErrorCode invalid_grant
	}

	// The token source refreshes the access token (grant_type
	// refresh_token, with client_id) when it expires; requests through its
	// HTTP client carry the current one.
	tokens := conf.TokenSource(ctx, tok)
	c, err := api.NewClientWithResponses(server, api.WithHTTPClient(oauth2.NewClient(ctx, tokens)))
	if err != nil {
		log.Fatal(err)
	}
	me, err := c.GetMeWithResponse(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if me.JSON200 == nil {
		log.Fatalf("GET /identify/me: %s", me.Status())
	}
	fmt.Println("Signed in as", *me.JSON200.Email, me.JSON200.Roles)

	// Log out: revoke the current refresh token, which ends the session
	// of every token it was issued with.
	cur, err := tokens.Token()
	if err != nil {
		log.Fatal(err)
	}
	anon, err := api.NewClientWithResponses(server)
	if err != nil {
		log.Fatal(err)
	}
	hint := "refresh_token"
	if _, err := anon.RevokeTokenWithFormdataBodyWithResponse(ctx, api.RevokeTokenFormdataRequestBody{
		Token: &cur.RefreshToken, TokenTypeHint: &hint, ClientId: &conf.ClientID,
	}); err != nil {
		log.Fatal(err)
	}
}
