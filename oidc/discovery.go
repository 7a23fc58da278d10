package oidc

import (
	"net/http"
	"sort"
)

// Discovery is the OpenID Provider Metadata document (OpenID Connect
// Discovery 1.0 §3). It lists exactly what is implemented.
type Discovery struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// Discovery builds the metadata document from the provider's configuration;
// every URL derives from the issuer.
func (p *Provider) Discovery() *Discovery {
	scopes := []string{"openid"}
	claimSet := map[string]bool{}
	for s, claims := range p.ScopeClaims {
		scopes = append(scopes, s)
		for _, c := range claims {
			claimSet[c] = true
		}
	}
	sort.Strings(scopes[1:])
	claims := []string{"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "sid"}
	extra := make([]string, 0, len(claimSet))
	for c := range claimSet {
		extra = append(extra, c)
	}
	sort.Strings(extra)
	claims = append(claims, extra...)

	pkce := []string{PKCES256}
	authMethods := []string{AuthMethodBasic, AuthMethodPost}
	plain, none := false, false
	for _, c := range p.Clients.clients {
		plain = plain || c.AllowPlainPKCE
		none = none || c.allowsMethod(AuthMethodNone)
	}
	if plain {
		pkce = append(pkce, PKCEPlain)
	}
	if none {
		authMethods = append(authMethods, AuthMethodNone)
	}
	return &Discovery{
		Issuer:                                     p.Issuer,
		AuthorizationEndpoint:                      p.URL(PathAuthorize),
		TokenEndpoint:                              p.URL(PathToken),
		UserinfoEndpoint:                           p.URL(PathUserinfo),
		JWKSURI:                                    p.URL(PathJWKS),
		ScopesSupported:                            scopes,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{ResponseModeQuery, ResponseModeFormPost},
		GrantTypesSupported:                        []string{GrantAuthorizationCode},
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           []string{p.Signer.Algorithm()},
		TokenEndpointAuthMethodsSupported:          authMethods,
		ClaimsSupported:                            claims,
		CodeChallengeMethodsSupported:              pkce,
		PromptValuesSupported:                      []string{PromptNone, PromptLogin, PromptConsent, PromptSelectAccount},
		AuthorizationResponseIssParameterSupported: true,
	}
}

// HandleDiscovery serves the metadata document.
func (p *Provider) HandleDiscovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, p.Discovery())
}
