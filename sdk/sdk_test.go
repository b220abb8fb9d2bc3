package sdk_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/apitest"
	"github.com/rolegate/rolegate/internal/testdb"
	"github.com/rolegate/rolegate/sdk"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestLogin(t *testing.T) {
	t.Parallel()
	e := apitest.New(t)
	u := e.CreateUser(t, "sdk@example.com", "user")
	ctx := context.Background()
	httpc := api.WithHTTPClient(apitest.HTTPClient(t))

	c, err := sdk.Login(ctx, e.URL, u.Email, u.Password, httpc)
	if err != nil {
		t.Fatal(err)
	}
	me, err := c.GetMeWithResponse(ctx)
	if err != nil || me.JSON200 == nil || me.JSON200.Email != u.Email {
		t.Fatalf("identify/me through the SDK: %v %s", err, me.Body)
	}

	_, err = sdk.Login(ctx, e.URL, u.Email, "wrong password", httpc)
	var le *sdk.LoginError
	if !errors.As(err, &le) || le.Status != 400 || le.Code != "invalid_grant" {
		t.Fatalf("wrong password: err = %v, want a LoginError invalid_grant", err)
	}
}
