package oidc

import (
	"strconv"
	"strings"
)

// Response modes (OAuth 2.0 Multiple Response Type Encoding Practices,
// OAuth 2.0 Form Post Response Mode).
const (
	ResponseModeQuery    = "query"
	ResponseModeFormPost = "form_post"
)

// Prompt values (OpenID Connect Core 1.0 §3.1.2.1).
const (
	PromptNone          = "none"
	PromptLogin         = "login"
	PromptConsent       = "consent"
	PromptSelectAccount = "select_account"
)

// AuthRequest is a validated authentication request (OpenID Connect Core 1.0
// §3.1.2.1). It is stored with the pending WeChat login, so it is plain data.
type AuthRequest struct {
	ClientID            string   `json:"client_id"`
	RedirectURI         string   `json:"redirect_uri"`
	ResponseMode        string   `json:"response_mode"`
	Scopes              []string `json:"scopes"`
	State               string   `json:"state,omitempty"`
	Nonce               string   `json:"nonce,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	Prompt              []string `json:"prompt,omitempty"`
	// MaxAge is -1 when absent.
	MaxAge      int    `json:"max_age"`
	IDTokenHint string `json:"id_token_hint,omitempty"`
	LoginHint   string `json:"login_hint,omitempty"`
	UILocales   string `json:"ui_locales,omitempty"`
	// Extra keeps parameters the bridge understands and oidc does not
	// (e.g. WeChat flow overrides), already length-checked.
	Extra map[string]string `json:"extra,omitempty"`
}

// HasScope reports whether scope was requested (and is supported).
func (a *AuthRequest) HasScope(scope string) bool {
	for _, s := range a.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// HasPrompt reports whether the prompt parameter contains p.
func (a *AuthRequest) HasPrompt(p string) bool {
	for _, v := range a.Prompt {
		if v == p {
			return true
		}
	}
	return false
}

// AuthorizeError is an error of the authorization endpoint. When Redirect is
// false the error must be shown to the person and never sent to the
// redirect_uri: the client or redirect_uri could not be trusted (RFC 6749
// §4.1.2.1, RFC 9700 §4.11 on open redirectors). Otherwise it is returned to
// the client at Request's redirect_uri with Request's state.
type AuthorizeError struct {
	*Error
	Redirect bool
	// Request carries what is needed to redirect: client, redirect_uri, state, response_mode.
	Request *AuthRequest
}

// ParseAuthorizeRequest validates the parameters of an authentication request
// in the order that decides how an error may be reported: first client_id
// and redirect_uri (errors shown on a page), then everything else (errors
// redirected to the client). It is long on purpose: it reads as RFC 6749
// §4.1.2.1's and Core §3.1.2.2's checklist, in the order the specs give, and
// splitting it would hide that order.
func (p *Provider) ParseAuthorizeRequest(params Params) (*AuthRequest, *AuthorizeError) {
	page := func(e *Error) *AuthorizeError { return &AuthorizeError{Error: e} }

	clientID := params["client_id"]
	if clientID == "" {
		return nil, page(ErrInvalidRequest("the client_id parameter is missing"))
	}
	client := p.Clients.Lookup(clientID)
	if client == nil {
		return nil, page(ErrInvalidRequest("unknown client_id %q: the application is not registered with this sign-in service", printable(clientID)))
	}
	redirectURI := params["redirect_uri"]
	if redirectURI == "" {
		// OpenID Connect Core 1.0 §3.1.2.1: redirect_uri is REQUIRED.
		return nil, page(ErrInvalidRequest("the redirect_uri parameter is missing"))
	}
	if !client.HasRedirectURI(redirectURI) {
		return nil, page(ErrInvalidRequest("redirect_uri is not registered for client %q (it must match a registered URI exactly)", client.ID))
	}

	req := &AuthRequest{
		ClientID:     client.ID,
		RedirectURI:  redirectURI,
		ResponseMode: ResponseModeQuery,
		State:        params["state"],
		MaxAge:       -1,
	}
	redirect := func(e *Error) *AuthorizeError { return &AuthorizeError{Error: e, Redirect: true, Request: req} }

	if len(req.State) > MaxStateBytes {
		req.State = "" // never echo an oversized value back
		return nil, redirect(ErrInvalidRequest("state is longer than %d bytes", MaxStateBytes))
	}
	switch mode := params["response_mode"]; mode {
	case "", ResponseModeQuery:
	case ResponseModeFormPost:
		req.ResponseMode = ResponseModeFormPost
	default:
		return nil, redirect(ErrInvalidRequest("response_mode %q is not supported (use query or form_post)", printable(mode)))
	}
	// OpenID Connect Core 1.0 §6: request objects are not supported.
	if params["request"] != "" {
		return nil, redirect(&Error{Code: CodeRequestNotSupported, Description: "request objects are not supported"})
	}
	if params["request_uri"] != "" {
		return nil, redirect(&Error{Code: CodeRequestURINotSupported, Description: "request_uri is not supported"})
	}
	if params["registration"] != "" {
		return nil, redirect(&Error{Code: CodeRegistrationNotSupp, Description: "the registration parameter is not supported"})
	}
	switch rt := params["response_type"]; rt {
	case "code":
	case "":
		return nil, redirect(ErrInvalidRequest("the response_type parameter is missing"))
	default:
		// Implicit and hybrid flows are refused, as RFC 9700 §2.1.2 advises.
		return nil, redirect(&Error{Code: CodeUnsupportedResponseType, Description: "only response_type=code is supported"})
	}

	scopes := strings.Fields(params["scope"])
	if len(scopes) > maxScopeEntries {
		return nil, redirect(ErrInvalidScope("too many scopes"))
	}
	openid := false
	for _, s := range scopes {
		if s == "openid" {
			openid = true
		}
		// Unknown scopes are ignored (RFC 6749 §3.3 lets the server grant
		// fewer); the token response's scope says what was granted.
		if p.scopeSupported(s) && !req.HasScope(s) {
			req.Scopes = append(req.Scopes, s)
		}
	}
	if !openid {
		return nil, redirect(ErrInvalidScope("the scope parameter must contain openid"))
	}

	req.Nonce = params["nonce"]
	if len(req.Nonce) > MaxNonceBytes {
		return nil, redirect(ErrInvalidRequest("nonce is longer than %d bytes", MaxNonceBytes))
	}

	if e := p.parsePKCE(client, params, req); e != nil {
		return nil, redirect(e)
	}

	if v := params["prompt"]; v != "" {
		for _, pr := range strings.Fields(v) {
			switch pr {
			case PromptNone, PromptLogin, PromptConsent, PromptSelectAccount:
				req.Prompt = append(req.Prompt, pr)
			default:
				return nil, redirect(ErrInvalidRequest("prompt value %q is not supported", printable(pr)))
			}
		}
		// §3.1.2.1: none with any other value is an error.
		if req.HasPrompt(PromptNone) && len(req.Prompt) > 1 {
			return nil, redirect(ErrInvalidRequest("prompt=none cannot be combined with other prompt values"))
		}
	}
	if v := params["max_age"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, redirect(ErrInvalidRequest("max_age must be a non-negative integer number of seconds"))
		}
		req.MaxAge = n
	}
	req.IDTokenHint = params["id_token_hint"]
	req.LoginHint = params["login_hint"]
	req.UILocales = params["ui_locales"]
	for _, k := range p.ExtraAuthorizeParams {
		if v, ok := params[k]; ok {
			if req.Extra == nil {
				req.Extra = map[string]string{}
			}
			req.Extra[k] = v
		}
	}
	return req, nil
}

func (p *Provider) scopeSupported(s string) bool {
	if s == "openid" {
		return true
	}
	_, ok := p.ScopeClaims[s]
	return ok
}
