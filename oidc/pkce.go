package oidc

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// PKCE methods (RFC 7636 §4.2).
const (
	PKCES256  = "S256"
	PKCEPlain = "plain"
)

// validPKCEString checks the ABNF shared by code_verifier and code_challenge:
// 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
// (RFC 7636 §4.1, §4.2).
func validPKCEString(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

func (p *Provider) parsePKCE(client *Client, params Params, req *AuthRequest) *Error {
	challenge, method := params["code_challenge"], params["code_challenge_method"]
	if challenge == "" {
		if method != "" {
			return ErrInvalidRequest("code_challenge_method was sent without code_challenge")
		}
		// RFC 9700 §2.1.1: public clients MUST use PKCE; a confidential
		// client may be configured to require it.
		if client.Public() || client.RequirePKCE {
			return ErrInvalidRequest("this client must use PKCE: send code_challenge with code_challenge_method=S256")
		}
		return nil
	}
	if method == "" {
		// RFC 7636 §4.3: an absent method means plain.
		method = PKCEPlain
	}
	switch method {
	case PKCES256:
	case PKCEPlain:
		if !client.AllowPlainPKCE {
			return ErrInvalidRequest("code_challenge_method=plain is not allowed for this client; use S256")
		}
	default:
		return ErrInvalidRequest("code_challenge_method %q is not supported; use S256", printable(method))
	}
	if !validPKCEString(challenge) {
		return ErrInvalidRequest("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]")
	}
	req.CodeChallenge, req.CodeChallengeMethod = challenge, method
	return nil
}

// VerifyPKCE checks a code_verifier against the challenge stored with a code
// (RFC 7636 §4.6). An empty challenge means no PKCE was used: then a verifier
// is an error too, so a client cannot be confused about what was checked.
func VerifyPKCE(challenge, method, verifier string) *Error {
	if challenge == "" {
		if verifier != "" {
			return ErrInvalidGrant("code_verifier was sent but the authorization request had no code_challenge")
		}
		return nil
	}
	if verifier == "" {
		// The PKCE downgrade attack: a challenge was sent, no verifier now.
		return ErrInvalidGrant("code_verifier is required: the authorization request used PKCE")
	}
	if !validPKCEString(verifier) {
		return ErrInvalidGrant("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")
	}
	var computed string
	switch method {
	case PKCES256:
		sum := sha256.Sum256([]byte(verifier))
		computed = base64.RawURLEncoding.EncodeToString(sum[:])
	case PKCEPlain:
		computed = verifier
	default:
		return ErrInvalidGrant("unsupported code_challenge_method")
	}
	if subtle.ConstantTimeCompare([]byte(computed), []byte(challenge)) != 1 {
		return ErrInvalidGrant("code_verifier does not match the code_challenge")
	}
	return nil
}
