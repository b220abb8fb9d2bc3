package gate

import "net/http"

// Routes is a router for generated code to register its operations' handlers
// in (oapi-codegen's StdHTTPServerOptions.BaseRouter). Given to New as next,
// it lets the gate, which has already matched a request to its operation,
// hand the request straight to that operation's handler instead of having a
// second router match it again; and New refuses to start when an operation
// of the spec has no handler.
//
// As an http.Handler, Routes is an ordinary http.ServeMux of the same
// handlers.
type Routes struct {
	http.ServeMux
	byPattern map[string]http.Handler
}

// NewRoutes returns an empty Routes.
func NewRoutes() *Routes {
	return &Routes{byPattern: map[string]http.Handler{}}
}

// HandleFunc registers handler for pattern ("GET /notes/{id}", as in
// http.ServeMux).
func (rt *Routes) HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request)) {
	rt.ServeMux.HandleFunc(pattern, handler)
	rt.byPattern[pattern] = http.HandlerFunc(handler)
}
