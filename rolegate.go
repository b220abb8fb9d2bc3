// Package rolegate holds the project's source documents that the binary
// needs at run time: the OpenAPI spec and the database schema.
package rolegate

import (
	_ "embed"

	"github.com/getkin/kin-openapi/openapi3"
)

// Schema is schema.sql: the database schema, in numbered steps.
//
//go:embed schema.sql
var Schema string

// OpenAPIYAML is api/openapi.yaml, byte for byte.
//
//go:embed api/openapi.yaml
var OpenAPIYAML []byte

// Spec parses OpenAPIYAML, exactly as written (the spec embedded in gen/api
// has its operation ids rewritten into Go names).
func Spec() (*openapi3.T, error) {
	return openapi3.NewLoader().LoadFromData(OpenAPIYAML)
}

// SpecJSON returns the spec as JSON, for clients that do not read YAML.
func SpecJSON() ([]byte, error) {
	doc, err := Spec()
	if err != nil {
		return nil, err
	}
	return doc.MarshalJSON()
}
