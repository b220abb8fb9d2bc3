package access

import (
	"encoding/json"
	"net/http"
)

// WriteOAuthError writes an RFC 6749 section 5.2 error response, status
// (400, except where the status itself tells more) with {"error",
// "error_description"}, never cached.
func WriteOAuthError(w http.ResponseWriter, status int, code, description string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
