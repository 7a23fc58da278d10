package oidc

import (
	"net/http"
	"slices"
	"strings"
)

// HandleUserinfo is the UserInfo endpoint (OpenID Connect Core 1.0 §5.3): GET
// or POST with a Bearer access token in the Authorization header, or POST with
// access_token in a form body (RFC 6750 §2.2). The answer comes from what was
// stored at login; no upstream call is made.
func (p *Provider) HandleUserinfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token, e := bearerToken(w, r)
	if e != nil {
		p.writeBearerError(w, e)
		return
	}
	if token == "" {
		// RFC 6750 §3.1: a request without credentials gets no error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.Issuer+`"`)
		writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: CodeInvalidToken, ErrorDescription: "an access token is required (Authorization: Bearer ...)"})
		return
	}
	g, err := p.lookupAccess(r.Context(), token)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: CodeTemporarilyUnavailable, ErrorDescription: "storage unavailable"})
		return
	}
	if g == nil || p.checkAccount(r.Context(), g.ClientID, g.Account) != nil {
		p.writeBearerError(w, &Error{Code: CodeInvalidToken, Status: http.StatusUnauthorized, Description: "the access token is invalid, expired or revoked"})
		return
	}
	if !slices.Contains(g.Scopes, "openid") {
		// OpenID Connect Core 1.0 §5.3: the UserInfo endpoint serves access
		// tokens of an OpenID Connect request; one whose scope lacks openid
		// (a token exchange without it, a refresh narrowed to
		// offline_access) is valid but not enough: RFC 6750 §3.1
		// insufficient_scope, 403, naming the scope required.
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.Issuer+`", error="`+CodeInsufficientScope+`", error_description="the access token was not issued for the openid scope", scope="openid"`)
		writeJSON(w, http.StatusForbidden, ErrorResponse{Error: CodeInsufficientScope, ErrorDescription: "the access token was not issued for the openid scope; sign in again with scope openid"})
		return
	}
	out := make(map[string]any, len(g.Claims)+1)
	for k, v := range g.Claims {
		if !reservedClaims[k] {
			out[k] = v
		}
	}
	out["sub"] = g.Subject
	writeJSON(w, http.StatusOK, out)
}

func bearerToken(w http.ResponseWriter, r *http.Request) (string, *Error) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		return "", &Error{Code: CodeInvalidRequest, Status: http.StatusMethodNotAllowed, Description: "use GET or POST"}
	}
	header := r.Header.Get("Authorization")
	var fromBody string
	if r.Method == http.MethodPost && isFormBody(r) {
		params, e := ReadForm(w, r)
		if e != nil {
			return "", e
		}
		fromBody = params["access_token"]
	}
	if header != "" {
		if fromBody != "" {
			// RFC 6750 §2: clients MUST NOT use more than one method.
			return "", &Error{Code: CodeInvalidRequest, Status: http.StatusBadRequest, Description: "the access token was sent in more than one way"}
		}
		scheme, tok, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", &Error{Code: CodeInvalidRequest, Status: http.StatusBadRequest, Description: "the Authorization header must be: Bearer <access token>"}
		}
		return strings.TrimSpace(tok), nil
	}
	return fromBody, nil
}

func (p *Provider) writeBearerError(w http.ResponseWriter, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.Issuer+`", error="`+e.Code+`", error_description="`+strings.ReplaceAll(e.Description, `"`, `'`)+`"`)
	writeJSON(w, status, ErrorResponse{Error: e.Code, ErrorDescription: e.Description})
}
