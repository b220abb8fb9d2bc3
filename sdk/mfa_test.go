package sdk_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/sdk"
)

// TestLoginWithSecondFactor: for an account with an authenticator app,
// Login without a SecondFactor is a LoginError mfa_required carrying the
// mfa_token; LoginWithSecondFactor asks the callback for the code and
// gets a client whose token says mfa; a wrong code is a LoginError, and
// a recovery code works in place of a code.
func TestLoginWithSecondFactor(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	clk.ns.Store(time.Now().UnixNano())
	e := apitest.New(t, apitest.Options{Now: clk.Now})
	u := e.CreateUser(t, "sdk@example.com", "user")
	ctx := context.Background()
	httpc := api.WithHTTPClient(apitest.HTTPClient(t))
	code := func(secret string) string {
		c, err := totp.GenerateCodeCustom(secret, clk.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	// Enrolment, through the generated client.
	c, err := api.NewClientWithResponses(e.URL, httpc, sdk.WithToken(e.Token(t, u)))
	if err != nil {
		t.Fatal(err)
	}
	en, err := c.EnrolTOTPWithResponse(ctx)
	if err != nil || en.JSON200 == nil {
		t.Fatalf("enrol: %v %s", err, en.Body)
	}
	conf, err := c.ConfirmTOTPWithResponse(ctx, api.ConfirmTOTPJSONRequestBody{Code: code(en.JSON200.Secret)})
	if err != nil || conf.JSON200 == nil || len(conf.JSON200.RecoveryCodes) != 10 {
		t.Fatalf("confirm: %v %s", err, conf.Body)
	}
	clk.Advance(30 * time.Second)

	_, err = sdk.Login(ctx, e.URL, u.Email, u.Password, httpc)
	le, ok := errors.AsType[*sdk.LoginError](err)
	if !ok || le.Code != sdk.MFARequired || le.MFAToken == "" {
		t.Fatalf("Login without a second factor: %v, want mfa_required with an mfa_token", err)
	}

	asked := 0
	client, err := sdk.LoginWithSecondFactor(ctx, e.URL, u.Email, u.Password, func(context.Context) (string, error) {
		asked++
		return code(en.JSON200.Secret), nil
	}, httpc)
	if err != nil || asked != 1 {
		t.Fatalf("LoginWithSecondFactor: %v (asked %d times)", err, asked)
	}
	me, err := client.GetMeWithResponse(ctx)
	if err != nil || me.JSON200 == nil || *me.JSON200.Email != u.Email {
		t.Fatalf("identify/me: %v %s", err, me.Body)
	}

	_, err = sdk.LoginWithSecondFactor(ctx, e.URL, u.Email, u.Password, func(context.Context) (string, error) { return "000000", nil }, httpc)
	if le, ok := errors.AsType[*sdk.LoginError](err); !ok || le.Code != "invalid_grant" {
		t.Errorf("a wrong code: %v, want invalid_grant", err)
	}
	refused := errors.New("the person closed the prompt")
	if _, err := sdk.StartWithSecondFactor(ctx, e.URL, u.Email, u.Password, func(context.Context) (string, error) { return "", refused }, httpc); !errors.Is(err, refused) {
		t.Errorf("a callback's error: %v, want it back", err)
	}
	tok, err := sdk.TokenWithSecondFactor(ctx, e.URL, u.Email, u.Password, func(context.Context) (string, error) {
		return strings.ToUpper(conf.JSON200.RecoveryCodes[0]), nil
	}, httpc)
	if err != nil || tok.AccessToken == "" {
		t.Errorf("a recovery code: %v", err)
	}
}
