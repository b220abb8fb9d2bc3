package access

import (
	"context"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// Spec is an OpenAPI document together with its access policy.
type Spec struct {
	Doc    *openapi3.T
	Policy *Policy
}

// LoadSpec parses the OpenAPI document data (YAML or JSON), validates it
// and loads its access policy. It refuses a document that is invalid or
// that leaves any operation's access undeclared or inconsistent (see Load),
// so that a server given such a spec never starts.
func LoadSpec(ctx context.Context, data []byte) (*Spec, error) {
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("access: loading the spec: %w", err)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("access: the spec is invalid: %w", err)
	}
	policy, err := Load(doc)
	if err != nil {
		return nil, err
	}
	return &Spec{Doc: doc, Policy: policy}, nil
}
