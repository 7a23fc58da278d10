package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client authentication methods (OpenID Connect Core 1.0 §9).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// Client is a registered relying party.
type Client struct {
	ID   string
	Name string
	// secretHash is SHA-256 of the secret. A fast hash is right here: client
	// secrets are high-entropy, and the token endpoint is a hot path (never
	// bcrypt there).
	secretHash [32]byte
	hasSecret  bool
	// AuthMethods are the token endpoint authentication methods this client
	// may use. Empty means client_secret_basic and client_secret_post.
	AuthMethods []string
	// RedirectURIs are compared byte for byte (RFC 9700 §4.1.3, exact match).
	RedirectURIs []string
	// RequirePKCE forces PKCE for a confidential client; public clients always
	// need it (RFC 9700 §2.1.1).
	RequirePKCE bool
	// AllowPlainPKCE permits code_challenge_method=plain (RFC 7636 §4.2).
	AllowPlainPKCE bool
	// LoopbackAnyPort lets a native app's loopback redirect URI use any
	// port (RFC 8252 §7.3); see HasRedirectURI.
	LoopbackAnyPort bool
	// RefreshTokens makes the authorization_code grant issue a refresh token
	// to this client even when offline_access was not requested.
	RefreshTokens bool
	// AllowTokenExchange lets this client use the token exchange grant
	// (RFC 8693) with the provider's TokenExchangers.
	AllowTokenExchange bool
	// IDTokenSignedResponseAlg is the JWS algorithm of this client's ID
	// tokens (OpenID Connect Dynamic Client Registration 1.0 §2); empty
	// means the Signer's default. It must be one of the Signer's Algorithms.
	IDTokenSignedResponseAlg string
}

// NewClient registers a client with a plain secret (kept only as a hash).
func NewClient(id, secret string, redirectURIs []string) *Client {
	c := &Client{ID: id, RedirectURIs: redirectURIs}
	c.SetSecret(secret)
	return c
}

// SetSecret replaces the client's secret; an empty secret removes it.
func (c *Client) SetSecret(secret string) {
	c.hasSecret = secret != ""
	c.secretHash = sha256.Sum256([]byte(secret))
}

// SetSecretHash sets the SHA-256 of the secret directly (hashed secrets in config).
func (c *Client) SetSecretHash(h [32]byte) {
	c.hasSecret = true
	c.secretHash = h
}

// Public reports whether the client cannot keep a secret (method none).
func (c *Client) Public() bool {
	return len(c.AuthMethods) == 1 && c.AuthMethods[0] == AuthMethodNone
}

func (c *Client) allowsMethod(m string) bool {
	if len(c.AuthMethods) == 0 {
		return m == AuthMethodBasic || m == AuthMethodPost
	}
	for _, a := range c.AuthMethods {
		if a == m {
			return true
		}
	}
	return false
}

// checkSecret compares in constant time: both sides are hashed first, so
// neither the length nor the content of the stored secret leaks through timing.
func (c *Client) checkSecret(secret string) bool {
	h := sha256.Sum256([]byte(secret))
	ok := subtle.ConstantTimeCompare(h[:], c.secretHash[:]) == 1
	return ok && c.hasSecret
}

// HasRedirectURI reports an exact, byte-for-byte match with a registered URI.
// No normalisation of any kind: case, trailing slash, port, query and
// percent-encoding all count (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3).
//
// The one exception, for native clients that opt in (LoopbackAnyPort):
// RFC 8252 §7.3 — a registered http://127.0.0.1/... or http://[::1]/...
// redirect URI matches the same URI with any port, since the app listens
// on whatever port the OS gives it. Everything but the port must still be
// identical, and "localhost" is not a loopback literal (§8.3).
func (c *Client) HasRedirectURI(uri string) bool {
	for _, r := range c.RedirectURIs {
		if r == uri {
			return true
		}
		if c.LoopbackAnyPort && sameLoopbackIgnoringPort(r, uri) {
			return true
		}
	}
	return false
}

func sameLoopbackIgnoringPort(registered, uri string) bool {
	ru, err1 := url.Parse(registered)
	u, err2 := url.Parse(uri)
	if err1 != nil || err2 != nil || ru.Scheme != "http" || u.Scheme != "http" {
		return false
	}
	host := ru.Hostname()
	if (host != "127.0.0.1" && host != "::1") || u.Hostname() != host || u.User != nil || !validLoopbackPort(u.Port()) {
		return false
	}
	// Everything after the authority must be byte-identical.
	rest := func(s, authority string) string {
		return strings.TrimPrefix(s, "http://"+authority)
	}
	return rest(registered, ru.Host) == rest(uri, u.Host) && strings.HasPrefix(uri, "http://"+u.Host)
}

// validLoopbackPort reports whether port is a TCP port an app can listen on,
// in its one canonical decimal spelling: 1 to 65535, digits only, no leading
// zero. Port 0 means "any port" to the OS and is never where an app listens;
// url.Parse accepts any run of digits, so the range is checked here.
func validLoopbackPort(port string) bool {
	if port == "" || len(port) > 5 || port[0] == '0' {
		return false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// Registry holds the registered clients.
type Registry struct {
	clients map[string]*Client
}

// NewRegistry builds a registry; ids must be unique (the config checks that).
func NewRegistry(clients ...*Client) *Registry {
	r := &Registry{clients: make(map[string]*Client, len(clients))}
	for _, c := range clients {
		r.clients[c.ID] = c
	}
	return r
}

// Lookup returns the client with the id, or nil.
func (r *Registry) Lookup(id string) *Client {
	return r.clients[id]
}

// Authenticate identifies and authenticates the client of a token-endpoint
// style request (RFC 6749 §2.3). form is the parsed request body.
//
//   - client_secret_basic: the Authorization header; id and secret are
//     form-urlencoded before base64 (RFC 6749 §2.3.1), so both are decoded.
//   - client_secret_post: client_id and client_secret in the body.
//   - none: client_id in the body, no secret (public clients).
//
// A request that uses more than one method is refused (RFC 6749 §2.3).
// Every failure is invalid_client with HTTP 401; when the client tried the
// Authorization header the caller must answer with WWW-Authenticate (§5.2).
func (r *Registry) Authenticate(req *http.Request, form Params) (*Client, *Error) {
	cred, e := presentedCredentials(req.Header.Get("Authorization"), form)
	if e != nil {
		return nil, e
	}
	return r.authenticate(cred)
}

// credentials are what a request presents to say which client it is.
type credentials struct {
	id, secret string
	// method is the authentication method the request uses:
	// AuthMethodBasic, AuthMethodPost or AuthMethodNone.
	method string
}

// presentedCredentials reads the client credentials of a request from its
// Authorization header and its parsed form body, and nothing else: never
// the URL query (RFC 6749 §3.2 puts token request parameters in the body).
// It is the one place that decides which client a request claims to be, for
// the endpoints (Authenticate) and for ClaimedClientID alike. An error means
// the request is refused before any secret is checked.
func presentedCredentials(authz string, form Params) (credentials, *Error) {
	formID, formSecret := form["client_id"], form["client_secret"]
	if authz != "" {
		id, secret, ok := ParseBasicAuth(authz)
		if !ok {
			return credentials{}, ErrInvalidClient("the Authorization header is not valid HTTP Basic authentication")
		}
		if formSecret != "" {
			return credentials{}, ErrInvalidRequest("client authenticated with more than one method (Authorization header and client_secret)")
		}
		if formID != "" && formID != id {
			return credentials{}, ErrInvalidRequest("client_id in the body does not match the Authorization header")
		}
		return credentials{id: id, secret: secret, method: AuthMethodBasic}, nil
	}
	if formID == "" {
		return credentials{}, ErrInvalidClient("client authentication is required (HTTP Basic or client_id/client_secret in the body)")
	}
	if formSecret == "" {
		return credentials{id: formID, method: AuthMethodNone}, nil
	}
	return credentials{id: formID, secret: formSecret, method: AuthMethodPost}, nil
}

// authenticate checks presented credentials against the registry. An
// unknown id costs a hash like a wrong secret, so timing does not tell
// which client ids exist.
func (r *Registry) authenticate(cred credentials) (*Client, *Error) {
	failed := ErrInvalidClient("client authentication failed")
	c := r.Lookup(cred.id)
	if cred.method == AuthMethodNone {
		if c != nil && c.allowsMethod(AuthMethodNone) {
			return c, nil
		}
		return nil, failed
	}
	if c == nil {
		(&Client{}).checkSecret(cred.secret)
		return nil, failed
	}
	if !c.allowsMethod(cred.method) || !c.checkSecret(cred.secret) {
		return nil, failed
	}
	return c, nil
}

// ClaimedClientID says which client a token, revocation or introspection
// request claims to be, before it is authenticated: the user of an HTTP
// Basic Authorization header, otherwise client_id in the form body. It reads
// exactly what those endpoints read, with the same parser and the same
// precedence (presentedCredentials), so the two cannot disagree; client_id
// in the URL query is ignored by both (RFC 6749 §3.2). The body is read
// and put back unchanged: the handler that runs next reads it again.
//
// The error is non-nil, and the id empty, when the endpoint would refuse the
// request before checking any secret: not a POST, not a form body, a body
// that is too large or malformed, a malformed Authorization header, two
// authentication methods, or no client id at all.
//
// It is meant for throttling guesses of client secrets per claimed client
// (RFC 6819 §5.1.4.2.3); see also Provider.OnClientAuthFailure.
func ClaimedClientID(r *http.Request) (string, *Error) {
	form, e := peekForm(r)
	if e != nil {
		return "", e
	}
	cred, e := presentedCredentials(r.Header.Get("Authorization"), form)
	if e != nil {
		return "", e
	}
	return cred.id, nil
}

// ParseBasicAuth parses an HTTP Basic Authorization header value whose user
// and password are application/x-www-form-urlencoded (RFC 6749 §2.3.1).
func ParseBasicAuth(header string) (id, secret string, ok bool) {
	const prefix = "basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(header[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(user); err != nil || id == "" {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(pass); err != nil {
		return "", "", false
	}
	return id, secret, true
}
