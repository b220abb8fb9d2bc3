package rolegate_test

import (
	"testing"

	"github.com/rolegate/rolegate"
	"github.com/rolegate/rolegate/access"
)

// Every operation is documented well enough for its consumers: an
// operationId (SDK method names), a summary and a tag (Swagger UI), and an
// example for each request body.
func TestEveryOperationIsDocumented(t *testing.T) {
	spec, err := access.LoadSpec(t.Context(), rolegate.OpenAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range spec.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s: want an operationId, a summary and a tag", name)
			}
			if op.RequestBody == nil {
				continue
			}
			for ct, mt := range op.RequestBody.Value.Content {
				if len(mt.Examples) == 0 && mt.Example == nil {
					t.Errorf("%s: the %s request body has no example", name, ct)
				}
			}
		}
	}
}
