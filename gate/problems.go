package gate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/rolegate/rolegate/gen/api"
	"github.com/rolegate/rolegate/internal/email"
	"github.com/rolegate/rolegate/problem"
)

// requestProblem turns a validation error into the client's error, naming
// the field and saying what is wrong in rolegate's words, made from the
// spec (kin-openapi's wording is logged, never sent); forbidden is the
// operation's 403.
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
		if s := reqErr.Parameter.Schema; s != nil && s.Value != nil {
			msg = typeMessage(s.Value) // a value that does not parse as its type
		}
	case reqErr.RequestBody != nil:
		field = "body"
		if strings.HasPrefix(reqErr.Reason, "header Content-Type has unexpected value") {
			return problem.Wrap(problem.UnsupportedMedia, "The request body's Content-Type is not one this operation takes.", err)
		}
		switch {
		case errors.Is(err, errInvalidUTF8):
			msg = errInvalidUTF8.Error()
		case errors.Is(err, errNUL):
			msg = errNUL.Error()
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
		var sub string
		sub, msg = schemaMessage(schemaErr)
		if sub != "" {
			field += "." + sub
		}
	}
	return invalid(field, msg, err)
}

// schemaMessage says what is wrong with a value that fails its schema, as
// the spec states the rule, and for an object with a property it does not
// take, which (sub).
func schemaMessage(e *openapi3.SchemaError) (sub, msg string) {
	s := e.Schema
	if s == nil {
		return "", "is invalid"
	}
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
	switch e.SchemaField {
	case "type":
		return "", typeMessage(s)
	case "nullable":
		return "", "must not be null"
	case "required":
		return "", "is required"
	case "properties", "additionalProperties":
		if obj, ok := e.Value.(map[string]any); ok {
			keys := make([]string, 0, len(obj))
			for k := range obj {
				if _, known := s.Properties[k]; !known {
					keys = append(keys, k)
				}
			}
			if len(keys) > 0 {
				return slices.Min(keys), "is not a field this operation takes"
			}
		}
		return "", "has a field this operation does not take"
	case "minLength":
		return "", fmt.Sprintf("must be at least %d %s long", s.MinLength, plural(s.MinLength, "character"))
	case "maxLength":
		if s.MaxLength != nil {
			return "", fmt.Sprintf("must be at most %d %s long", *s.MaxLength, plural(*s.MaxLength, "character"))
		}
	case "minimum", "exclusiveMinimum":
		if s.Min != nil {
			if e.SchemaField == "exclusiveMinimum" {
				return "", "must be more than " + num(*s.Min)
			}
			return "", "must be at least " + num(*s.Min)
		}
	case "maximum", "exclusiveMaximum":
		if s.Max != nil {
			if e.SchemaField == "exclusiveMaximum" {
				return "", "must be less than " + num(*s.Max)
			}
			return "", "must be at most " + num(*s.Max)
		}
	case "minItems":
		return "", fmt.Sprintf("must have at least %d %s", s.MinItems, plural(s.MinItems, "item"))
	case "maxItems":
		if s.MaxItems != nil {
			return "", fmt.Sprintf("must have at most %d %s", *s.MaxItems, plural(*s.MaxItems, "item"))
		}
	case "minProperties":
		return "", fmt.Sprintf("must have at least %d %s", s.MinProps, plural(s.MinProps, "field"))
	case "maxProperties":
		if s.MaxProps != nil {
			return "", fmt.Sprintf("must have at most %d %s", *s.MaxProps, plural(*s.MaxProps, "field"))
		}
	case "uniqueItems":
		return "", "must not repeat an item"
	case "pattern":
		return "", "must match the pattern " + s.Pattern
	case "enum":
		vals := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			b, _ := json.Marshal(v)
			vals[i] = string(b)
		}
		return "", "must be one of " + strings.Join(vals, ", ")
	case "format":
		switch s.Format {
		case "email":
			return "", "must be an email address"
		case "date-time":
			return "", "must be a date and time as in RFC 3339, e.g. 2026-01-02T15:04:05Z"
		case "uuid":
			return "", "must be a UUID"
		}
		return "", "must be in the format " + s.Format
	}
	return "", "is invalid"
}

// typeMessage says what type a value of schema s must be.
func typeMessage(s *openapi3.Schema) string {
	switch {
	case s.Type.Includes(openapi3.TypeString):
		return "must be a string"
	case s.Type.Includes(openapi3.TypeInteger):
		if s.Format == "int64" || s.Format == "int32" {
			return "must be a whole number within " + s.Format + " range"
		}
		return "must be a whole number"
	case s.Type.Includes(openapi3.TypeNumber):
		return "must be a number within range"
	case s.Type.Includes(openapi3.TypeBoolean):
		return "must be true or false"
	case s.Type.Includes(openapi3.TypeArray):
		return "must be an array"
	case s.Type.Includes(openapi3.TypeObject):
		return "must be an object"
	}
	return "is invalid"
}

func plural(n uint64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
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
