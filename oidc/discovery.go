package oidc

import "sort"

// Discovery is the OpenID Provider Metadata document (OpenID Connect
// Discovery 1.0 §3). It lists exactly what is implemented.
type Discovery struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
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
	// The refresh_token grant is advertised only when some client can get a
	// refresh token: by offline_access, or by its own configuration.
	refresh := p.scopeSupported(ScopeOfflineAccess)
	for _, c := range p.Clients.clients {
		plain = plain || c.AllowPlainPKCE
		none = none || c.allowsMethod(AuthMethodNone)
		refresh = refresh || c.RefreshTokens
	}
	grants := []string{GrantAuthorizationCode}
	if refresh {
		grants = append(grants, GrantRefreshToken)
	}
	if p.tokenExchangeEnabled() {
		grants = append(grants, GrantTokenExchange)
	}
	if plain {
		pkce = append(pkce, PKCEPlain)
	}
	if none {
		authMethods = append(authMethods, AuthMethodNone)
	}
	// Revocation authenticates clients exactly as the token endpoint does,
	// so it lists the same methods (RFC 7009 §5: public clients may revoke
	// their own tokens). Introspection refuses public clients (RFC 7662
	// §2.1, see HandleIntrospect): it never lists none.
	introspectionMethods := []string{AuthMethodBasic, AuthMethodPost}
	return &Discovery{
		Issuer:                                     p.Issuer,
		AuthorizationEndpoint:                      p.URL(PathAuthorize),
		TokenEndpoint:                              p.URL(PathToken),
		UserinfoEndpoint:                           p.URL(PathUserinfo),
		JWKSURI:                                    p.URL(PathJWKS),
		RevocationEndpoint:                         p.URL(PathRevoke),
		IntrospectionEndpoint:                      p.URL(PathIntrospect),
		ScopesSupported:                            scopes,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{ResponseModeQuery, ResponseModeFormPost},
		GrantTypesSupported:                        grants,
		SubjectTypesSupported:                      []string{"public"},
		IDTokenSigningAlgValuesSupported:           p.Signer.Algorithms(),
		TokenEndpointAuthMethodsSupported:          authMethods,
		RevocationEndpointAuthMethodsSupported:     authMethods,
		IntrospectionEndpointAuthMethodsSupported:  introspectionMethods,
		ClaimsSupported:                            claims,
		CodeChallengeMethodsSupported:              pkce,
		PromptValuesSupported:                      []string{PromptNone, PromptLogin, PromptConsent, PromptSelectAccount},
		AuthorizationResponseIssParameterSupported: true,
	}
}
