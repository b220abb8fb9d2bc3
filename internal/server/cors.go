package server

import (
	"net/http"
	"slices"
)

// corsAllowHeaders are the request headers browsers may send.
const corsAllowHeaders = "Authorization, Content-Type"

// corsExposeHeaders are the response headers scripts may read.
const corsExposeHeaders = "Location, Retry-After, WWW-Authenticate, X-Request-Id"

// cors answers CORS preflights and labels responses for the allowed
// origins; other origins get no CORS headers, so browsers keep their
// responses from scripts. Tokens travel in the Authorization header, never
// in cookies, so credentials are never allowed, and "*" never meets them.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	any := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		w.Header().Add("Vary", "Origin")
		if origin == "" || !(any || slices.Contains(origins, origin)) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		if any {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
