package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/swaggerui"
	"github.com/rolegate/rolegate/problem"
)

// Meta implements the meta tag: Swagger UI and the spec itself.
type Meta struct {
	// SpecYAML is api/openapi.yaml as written; SpecJSON the same document
	// as a JSON object, decoded once at start-up.
	SpecYAML []byte
	SpecJSON map[string]any
	// Assets are the docs page's files, read once.
	Assets map[string]swaggerui.Asset
}

// NewMeta prepares the spec documents and the docs page's files once.
func NewMeta(specYAML, specJSON []byte) (Meta, error) {
	m := Meta{SpecYAML: specYAML, Assets: swaggerui.Assets()}
	return m, json.Unmarshal(specJSON, &m.SpecJSON)
}

var cspHeaders = api.GetDocsFile200ResponseHeaders{ContentSecurityPolicy: swaggerui.ContentSecurityPolicy}

// GetDocsPage serves Swagger UI's page with its Content-Security-Policy.
func (m Meta) GetDocsPage(context.Context, api.GetDocsPageRequestObject) (api.GetDocsPageResponseObject, error) {
	data := m.Assets["index.html"].Data
	return api.GetDocsPage200TexthtmlResponse{
		Body:          bytes.NewReader(data),
		ContentLength: int64(len(data)),
		Headers:       api.GetDocsPage200ResponseHeaders(cspHeaders),
	}, nil
}

// GetDocsFile serves the page's scripts, styles and icons; 404 for any
// other name.
func (m Meta) GetDocsFile(_ context.Context, req api.GetDocsFileRequestObject) (api.GetDocsFileResponseObject, error) {
	a, ok := m.Assets[req.File]
	data, ct := a.Data, a.ContentType
	if !ok {
		return nil, problem.New(problem.NotFound, "No such file.")
	}
	body, n := bytes.NewReader(data), int64(len(data))
	switch {
	case strings.HasPrefix(ct, "text/css"):
		return api.GetDocsFile200TextcssResponse{Body: body, ContentLength: n, Headers: cspHeaders}, nil
	case strings.HasPrefix(ct, "text/javascript"):
		return api.GetDocsFile200TextjavascriptResponse{Body: body, ContentLength: n, Headers: cspHeaders}, nil
	case strings.HasPrefix(ct, "image/png"):
		return api.GetDocsFile200ImagepngResponse{Body: body, ContentLength: n, Headers: cspHeaders}, nil
	}
	return api.GetDocsFile200TexthtmlResponse{Body: body, ContentLength: n, Headers: cspHeaders}, nil
}

// GetOpenAPIJSON serves the spec as JSON.
func (m Meta) GetOpenAPIJSON(context.Context, api.GetOpenAPIJSONRequestObject) (api.GetOpenAPIJSONResponseObject, error) {
	return api.GetOpenAPIJSON200JSONResponse(m.SpecJSON), nil
}

// GetOpenAPIYAML serves api/openapi.yaml as written.
func (m Meta) GetOpenAPIYAML(context.Context, api.GetOpenAPIYAMLRequestObject) (api.GetOpenAPIYAMLResponseObject, error) {
	return api.GetOpenAPIYAML200ApplicationyamlResponse{Body: bytes.NewReader(m.SpecYAML), ContentLength: int64(len(m.SpecYAML))}, nil
}
