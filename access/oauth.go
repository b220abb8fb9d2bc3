package access

import (
	"encoding/json"
	"net/http"
)

// WriteOAuthError writes an RFC 6749 section 5.2 error response: 400 with
// {"error", "error_description"}, never cached.
func WriteOAuthError(w http.ResponseWriter, code, description string) {
	body, _ := json.Marshal(map[string]string{"error": code, "error_description": description})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = w.Write(body)
}
