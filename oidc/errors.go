package oidc

import (
	"fmt"
	"net/http"
)

// Error codes of RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1 and OpenID Connect
// Core 1.0 §3.1.2.6.
const (
	CodeInvalidRequest          = "invalid_request"
	CodeUnauthorizedClient      = "unauthorized_client"
	CodeAccessDenied            = "access_denied"
	CodeUnsupportedResponseType = "unsupported_response_type"
	CodeInvalidScope            = "invalid_scope"
	CodeServerError             = "server_error"
	CodeTemporarilyUnavailable  = "temporarily_unavailable"
	CodeInvalidClient           = "invalid_client"
	CodeInvalidGrant            = "invalid_grant"
	CodeUnsupportedGrantType    = "unsupported_grant_type"
	CodeInvalidToken            = "invalid_token"
	CodeInsufficientScope       = "insufficient_scope"
	CodeLoginRequired           = "login_required"
	CodeConsentRequired         = "consent_required"
	CodeInteractionRequired     = "interaction_required"
	CodeRequestNotSupported     = "request_not_supported"
	CodeRequestURINotSupported  = "request_uri_not_supported"
	CodeRegistrationNotSupp     = "registration_not_supported"
)

// Error is the one protocol error type. Code and Description go on the wire;
// Debug is for the operator's log only and is never sent to a client or shown
// on a page (it may name internal state, never a secret).
type Error struct {
	Code        string
	Description string
	// Status is the HTTP status for endpoint (non-redirect) responses.
	Status int
	// Debug is logged, never sent.
	Debug error
}

func (e *Error) Error() string {
	if e.Debug != nil {
		return fmt.Sprintf("%s: %s (%v)", e.Code, e.Description, e.Debug)
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Debug }

// WithDebug returns a copy of e that carries a debug cause for the log.
func (e *Error) WithDebug(err error) *Error {
	c := *e
	c.Debug = err
	return &c
}

func newError(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Description: fmt.Sprintf(format, args...)}
}

// ErrInvalidRequest and friends build errors with the status RFC 6749 §5.2
// prescribes for the token endpoint.
func ErrInvalidRequest(format string, args ...any) *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest, format, args...)
}

func ErrInvalidClient(format string, args ...any) *Error {
	return newError(CodeInvalidClient, http.StatusUnauthorized, format, args...)
}

func ErrInvalidGrant(format string, args ...any) *Error {
	return newError(CodeInvalidGrant, http.StatusBadRequest, format, args...)
}

func ErrUnauthorizedClient(format string, args ...any) *Error {
	return newError(CodeUnauthorizedClient, http.StatusBadRequest, format, args...)
}

func ErrUnsupportedGrantType(format string, args ...any) *Error {
	return newError(CodeUnsupportedGrantType, http.StatusBadRequest, format, args...)
}

func ErrInvalidScope(format string, args ...any) *Error {
	return newError(CodeInvalidScope, http.StatusBadRequest, format, args...)
}

func ErrAccessDenied(format string, args ...any) *Error {
	return newError(CodeAccessDenied, http.StatusForbidden, format, args...)
}

func ErrServerError(format string, args ...any) *Error {
	return newError(CodeServerError, http.StatusInternalServerError, format, args...)
}

func ErrTemporarilyUnavailable(format string, args ...any) *Error {
	return newError(CodeTemporarilyUnavailable, http.StatusServiceUnavailable, format, args...)
}

func ErrLoginRequired(format string, args ...any) *Error {
	return newError(CodeLoginRequired, http.StatusBadRequest, format, args...)
}

// errStorageUnavailable: the storage failed (Redis is down). The answer is
// 503 temporarily_unavailable with Retry-After, at the token endpoint too:
// RFC 6749 registers temporarily_unavailable for the authorization
// response (§4.1.2.1), and §5.2's server-side errors are otherwise only
// server_error, which tells a client nothing about retrying; a 503 with
// Retry-After is what HTTP says for "try again shortly" (RFC 9110 §15.6.4).
// Nothing was issued when this is returned.
func errStorageUnavailable() *Error {
	return ErrTemporarilyUnavailable("the service cannot reach its storage right now; retry after the time in Retry-After")
}
