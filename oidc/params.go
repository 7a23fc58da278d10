package oidc

import (
	"net/url"
	"strconv"
	"unicode/utf8"
)

// Limits on outside input. A parameter longer than this is refused rather
// than stored: pending requests and codes carry these values.
const (
	MaxParamBytes   = 4096
	MaxParamsBytes  = 16 << 10
	MaxStateBytes   = 2048
	MaxNonceBytes   = 512
	MaxParamCount   = 64
	maxScopeEntries = 32
)

// Params is a request's parameters, each present at most once.
type Params map[string]string

// ParseParams parses an application/x-www-form-urlencoded string (a query or
// a form body) strictly: malformed escapes, invalid UTF-8, oversized input and
// repeated parameters are errors. RFC 6749 §3.1 and §3.2: "Request and response
// parameters MUST NOT be included more than once." Parameters sent without a
// value are treated as omitted (§3.1).
func ParseParams(raw string) (Params, *Error) {
	if len(raw) > MaxParamsBytes {
		return nil, ErrInvalidRequest("the request parameters are too large (more than %d bytes)", MaxParamsBytes)
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, ErrInvalidRequest("the request parameters are not valid form-urlencoded data")
	}
	return fromValues(values)
}

func fromValues(values url.Values) (Params, *Error) {
	if len(values) > MaxParamCount {
		return nil, ErrInvalidRequest("too many request parameters")
	}
	p := make(Params, len(values))
	for k, vs := range values {
		if !utf8.ValidString(k) {
			return nil, ErrInvalidRequest("a parameter name is not valid UTF-8")
		}
		nonEmpty := vs[:0:0]
		for _, v := range vs {
			if v != "" {
				nonEmpty = append(nonEmpty, v)
			}
		}
		if len(nonEmpty) > 1 {
			return nil, ErrInvalidRequest("parameter %q is included more than once", printable(k))
		}
		if len(nonEmpty) == 0 {
			continue
		}
		v := nonEmpty[0]
		if !utf8.ValidString(v) {
			return nil, ErrInvalidRequest("parameter %q is not valid UTF-8", printable(k))
		}
		if len(v) > MaxParamBytes {
			return nil, ErrInvalidRequest("parameter %q is too long", printable(k))
		}
		p[k] = v
	}
	return p, nil
}

// printable cuts a value for use in an error description, which RFC 6749
// §5.2 limits to printable ASCII: anything else is escaped.
func printable(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}
