package gate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

// Text that PostgreSQL would refuse, and JSON that a lenient decoder would
// half-read, is refused here, at the edge, with a 400 naming the field:
// never as a database error deep in a handler.
var (
	// errInvalidUTF8 reports text that is not valid UTF-8.
	errInvalidUTF8 = errors.New("must be valid UTF-8")
	// errNUL reports text that holds a NUL character (JSON's \u0000
	// included).
	errNUL = errors.New("must not contain a NUL character")
	// errTrailingData reports a JSON body with more after its one value.
	errTrailingData = errors.New("must be one JSON value with nothing after it")
)

// textError returns errInvalidUTF8 or errNUL if s is not valid text,
// nil if it is.
func textError(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errInvalidUTF8
	case strings.IndexByte(s, 0) >= 0:
		return errNUL
	}
	return nil
}

// kin-openapi looks body decoders up in a process-wide registry; these
// replace its lenient ones for the two media types rolegate reads as text.
func init() {
	openapi3filter.RegisterBodyDecoder("application/json", strictJSON)
	openapi3filter.RegisterBodyDecoder("application/x-www-form-urlencoded", strictForm)
}

// strictJSON decodes a JSON body as openapi3filter.JSONBodyDecoder does,
// but refuses a body that is not valid UTF-8 (encoding/json would quietly
// replace the bad bytes), holds a NUL character in any string or key, or
// has anything but white space after its value.
func strictJSON(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if !utf8.Valid(data) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errInvalidUTF8}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errTrailingData}
	}
	if !validJSONText(v) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errNUL}
	}
	return v, nil
}

// validJSONText reports whether no string or key in a decoded JSON value
// holds a NUL character (the bytes were checked to be UTF-8 already).
func validJSONText(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) < 0
	case []any:
		for _, e := range v {
			if !validJSONText(e) {
				return false
			}
		}
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 || !validJSONText(e) {
				return false
			}
		}
	}
	return true
}

// strictForm decodes a form body as openapi3filter.UrlencodedBodyDecoder
// does, after checking that every name and value is valid text.
func strictForm(body io.Reader, h http.Header, schema *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	// A form that does not parse is the original decoder's to report.
	if values, err := url.ParseQuery(string(data)); err == nil {
		for k, vs := range values {
			if err := textError(k); err != nil {
				return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
			}
			for _, v := range vs {
				if err := textError(v); err != nil {
					return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
				}
			}
		}
	}
	return openapi3filter.UrlencodedBodyDecoder(bytes.NewReader(data), h, schema, enc)
}

// checkParams refuses path parameters and query values that are not valid
// text, naming the first; the validator then checks them against the spec.
func checkParams(r *http.Request, pathParams map[string]string) error {
	for name, v := range pathParams {
		if err := textError(v); err != nil {
			return invalid("path."+name, err.Error(), nil)
		}
	}
	if r.URL.RawQuery == "" {
		return nil
	}
	for name, vs := range r.URL.Query() {
		if err := textError(name); err != nil {
			return invalid("query", err.Error(), nil)
		}
		for _, v := range vs {
			if err := textError(v); err != nil {
				return invalid("query."+name, err.Error(), nil)
			}
		}
	}
	return nil
}
