package handlers

import (
	"net/http/httptest"
	"testing"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/token"
)

// GetMe's answer is byte for byte what the generated response writes,
// whether its strings are written directly or need encoding/json.
func TestIdentityIsTheGeneratedResponse(t *testing.T) {
	for _, tt := range []struct {
		name   string
		claims token.Claims
	}{
		{"a user", token.Claims{UserID: 42, Email: "alice@example.com", Roles: []string{"user", "admin"}}},
		{"no roles", token.Claims{UserID: 1, Email: "a@b.c", Roles: []string{}}},
		{"a client", token.Claims{ClientID: "cl_3q2-7wE4xLzJ0vqH5bM1cN", Roles: []string{"system"}}},
		{"HTML characters", token.Claims{UserID: 7, Email: "a&b<c>@example.com", Roles: []string{"user"}}},
		{"not ASCII", token.Claims{UserID: 7, Email: "jos\u00e9@example.com", Roles: []string{"user"}}},
		{"a quote", token.Claims{UserID: 7, Email: `"a b"@example.com`, Roles: []string{"user"}}},
		{"nil roles", token.Claims{UserID: 7, Email: "a@example.com"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			i := identity{&tt.claims}
			if err := i.VisitGetMeResponse(got); err != nil {
				t.Fatal(err)
			}
			if err := api.GetMe200JSONResponse(i.body()).VisitGetMeResponse(want); err != nil {
				t.Fatal(err)
			}
			if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("got %d %q %s, the generated response %d %q %s", got.Code, got.Header().Get("Content-Type"), got.Body,
					want.Code, want.Header().Get("Content-Type"), want.Body)
			}
		})
	}
}
