// Package rolegate holds the project's source documents that the binary
// needs at run time, the OpenAPI spec and the database schema, and
// ApplySchema, through which every database rolegate uses is readied.
package rolegate

import (
	_ "embed"
)

// Schema is schema.sql: the database schema, in numbered steps.
//
//go:embed schema.sql
var Schema string

// OpenAPIYAML is api/openapi.yaml, byte for byte; access.LoadSpec reads it.
//
//go:embed api/openapi.yaml
var OpenAPIYAML []byte
