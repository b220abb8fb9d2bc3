package gate

import (
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/problem"
)

// requestProblem turns a validation error into the client's error, naming
// the field without passing on library text beyond the schema's reason;
// forbidden is the operation's 403.
func requestProblem(err, forbidden error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return problem.Wrap(problem.TooLarge, "The request body is over the limit.", err)
	}
	if secErr, ok := errors.AsType[*openapi3filter.SecurityRequirementsError](err); ok {
		for _, e := range secErr.Errors {
			if errors.Is(e, errNoAdmittedRole) {
				return forbidden
			}
		}
		return problem.TokenRequired(err)
	}
	reqErr, ok := errors.AsType[*openapi3filter.RequestError](err)
	if !ok {
		return problem.Wrap(problem.Invalid, "The request is invalid.", err)
	}
	var field, msg string
	switch {
	case reqErr.Parameter != nil:
		field = reqErr.Parameter.In + "." + reqErr.Parameter.Name
		msg = "is invalid"
	case reqErr.RequestBody != nil:
		field = "body"
		if strings.HasPrefix(reqErr.Reason, "header Content-Type has unexpected value") {
			return problem.Wrap(problem.UnsupportedMedia, "The request body's Content-Type is not one this operation takes.", err)
		}
		if errors.Is(reqErr.Err, openapi3filter.ErrInvalidRequired) {
			return invalid("body", "is required", err)
		}
		switch {
		case errors.Is(err, errBadText):
			msg = errBadText.Error()
		case errors.Is(err, errTrailingData):
			msg = errTrailingData.Error()
		default:
			msg = "is malformed"
		}
	default:
		return problem.Wrap(problem.Invalid, "The request is invalid.", err)
	}
	if errors.Is(reqErr.Err, openapi3filter.ErrInvalidRequired) {
		msg = "is required"
	}
	if schemaErr, ok := errors.AsType[*openapi3.SchemaError](err); ok {
		if ptr := schemaErr.JSONPointer(); len(ptr) > 0 {
			field += "." + strings.Join(ptr, ".")
		}
		msg = schemaErr.Reason
	}
	return invalid(field, msg, err)
}

// invalid is the 400 naming one field and what is wrong with it.
func invalid(field, msg string, cause error) *problem.Error {
	return &problem.Error{
		Kind:   problem.Invalid,
		Detail: "The request is invalid: " + field + " " + msg + ".",
		Fields: []api.FieldError{{Field: field, Message: msg}},
		Err:    cause,
	}
}

// emailFormat checks `format: email`, which kin-openapi leaves unchecked
// by default: a bare address as net/mail reads it (no display name, no
// comments), such as alice@example.com or admin@localhost, that has a
// canonical form (email.Canonical), so that no account is created under an
// address it could not log in with.
var emailFormat = openapi3.NewCallbackValidator(func(s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return errors.New("not an email address")
	}
	_, err = email.Canonical(s)
	return err
})
