package loadtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"syscall"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// UserAgentWeChat is WeChat's in-app browser: the provider picks the
// Official Account's web authorization for it.
const UserAgentWeChat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"

// maxHops bounds the browser's redirects from /authorize to the client.
const maxHops = 8

// maxBody is the most of a response body a sign-in reads.
const maxBody = 1 << 20

// target is one provider, discovered: what every sign-in against it needs.
type target struct {
	issuer      string
	authorize   string
	token       string
	userinfo    string
	redirectURI string
	clientID    string
	secret      string
	scope       string
	verifier    *gooidc.IDTokenVerifier
	hc          *http.Client // no cookies, no redirects: the RP's own calls
	transport   http.RoundTripper
	userAgent   string
	timeout     time.Duration
}

// discover reads the provider's metadata with go-oidc (which checks that
// its issuer is the one asked for) and prepares the ID token verifier.
func discover(ctx context.Context, cfg *Config, transport http.RoundTripper) (*target, error) {
	hc := &http.Client{Transport: transport, Timeout: cfg.Timeout, CheckRedirect: noRedirects}
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, hc), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery at %s: %w (is the provider running? start it with `wechat-oidc dev --bench`)", cfg.Issuer, err)
	}
	var meta struct {
		Userinfo string `json:"userinfo_endpoint"`
	}
	if err := p.Claims(&meta); err != nil || meta.Userinfo == "" {
		return nil, fmt.Errorf("discovery at %s: no userinfo_endpoint", cfg.Issuer)
	}
	t := &target{
		issuer:      cfg.Issuer,
		authorize:   p.Endpoint().AuthURL,
		token:       p.Endpoint().TokenURL,
		userinfo:    meta.Userinfo,
		redirectURI: cfg.RedirectURI,
		clientID:    cfg.ClientID,
		secret:      cfg.ClientSecret,
		scope:       strings.Join(cfg.Scopes, " "),
		hc:          hc,
		transport:   transport,
		userAgent:   cfg.UserAgent,
		timeout:     cfg.Timeout,
	}
	// The verifier keeps its JWKS fetched once (go-oidc's RemoteKeySet),
	// as a relying party does; its context carries our HTTP client.
	t.verifier = p.VerifierContext(gooidc.ClientContext(context.Background(), hc), &gooidc.Config{ClientID: cfg.ClientID})
	return t, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// stepTime is how long one step of a sign-in took.
type stepTime struct {
	name string
	d    time.Duration
}

// signIn is one sign-in in progress.
type signIn struct {
	t       *target
	ctx     context.Context
	browser *http.Client
	user    string
	steps   []stepTime
	// alg is the ID token's signing algorithm.
	alg string
}

// failure is a failed sign-in: the step and a short reason (its kind,
// for counting), and the detail for the first few printed.
type failure struct {
	kind   string
	detail string
}

func (f *failure) Error() string { return f.kind + ": " + f.detail }

func fail(step, reason string, detail error) *failure {
	f := &failure{kind: step + ": " + reason}
	if detail != nil {
		f.detail = detail.Error()
	}
	return f
}

// signIn does one whole sign-in as user ("" sends no approve header).
func (t *target) signIn(ctx context.Context, user string) (*signIn, *failure) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fail("setup", "cookie jar", err)
	}
	s := &signIn{
		t:       t,
		ctx:     ctx,
		browser: &http.Client{Transport: t.transport, Jar: jar, Timeout: t.timeout, CheckRedirect: noRedirects},
		user:    user,
		steps:   make([]stepTime, 0, 6),
	}
	state, nonce, verifier := oidc.NewToken(), oidc.NewToken(), oauth2.GenerateVerifier()
	q := url.Values{
		"response_type": {"code"}, "client_id": {t.clientID}, "redirect_uri": {t.redirectURI},
		"scope": {t.scope}, "state": {state}, "nonce": {nonce},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
	resp, f := s.browse(t.authorize + "?" + q.Encode())
	if f != nil {
		return nil, f
	}
	if f := checkAuthorizationResponse(resp, state, t.issuer); f != nil {
		return nil, f
	}
	tok, f := s.exchange(resp.Get("code"), verifier)
	if f != nil {
		return nil, f
	}
	sub, f := s.verify(tok, nonce)
	if f != nil {
		return nil, f
	}
	if f := s.userinfo(tok.AccessToken, sub); f != nil {
		return nil, f
	}
	return s, nil
}

// timed runs fn as step name and records its duration.
func (s *signIn) timed(name string, fn func() *failure) *failure {
	start := time.Now()
	f := fn()
	s.steps = append(s.steps, stepTime{name, time.Since(start)})
	return f
}

// browse follows the browser's redirects from u until one goes to the
// client's redirect_uri, and returns that redirect's query. Each hop is a
// step named by its path.
func (s *signIn) browse(u string) (url.Values, *failure) {
	for hop := 0; hop < maxHops; hop++ {
		next, err := url.Parse(u)
		if err != nil {
			return nil, fail("browser", "bad redirect", err)
		}
		step := next.Path
		var location string
		f := s.timed(step, func() *failure {
			req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, u, nil)
			if err != nil {
				return fail(step, "bad URL", err)
			}
			req.Header.Set("User-Agent", s.t.userAgent)
			if s.user != "" {
				req.Header.Set(simulator.HeaderApproveAs, s.user)
			}
			resp, err := s.browser.Do(req)
			if err != nil {
				return fail(step, transportKind(err), err)
			}
			body, err := readBody(resp)
			if err != nil {
				return fail(step, transportKind(err), err)
			}
			if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
				return fail(step, pageKind(resp, body), errors.New(snippet(body)))
			}
			location = resp.Header.Get("Location")
			return nil
		})
		if f != nil {
			return nil, f
		}
		loc, err := next.Parse(location)
		if err != nil {
			return nil, fail(step, "bad Location", err)
		}
		if before, _, _ := strings.Cut(loc.String(), "?"); before == s.t.redirectURI {
			return loc.Query(), nil
		}
		u = loc.String()
	}
	return nil, fail("browser", "too many redirects", nil)
}

// checkAuthorizationResponse checks what reached the client: no error,
// our state, the issuer (RFC 9207), a code.
func checkAuthorizationResponse(q url.Values, state, issuer string) *failure {
	switch {
	case q.Get("error") != "":
		return fail("authorization response", "error="+q.Get("error"), errors.New(q.Get("error_description")))
	case q.Get("state") != state:
		return fail("authorization response", "state mismatch", nil)
	case q.Get("iss") != issuer:
		return fail("authorization response", "iss mismatch (RFC 9207)", fmt.Errorf("iss %q", q.Get("iss")))
	case q.Get("code") == "":
		return fail("authorization response", "no code", nil)
	}
	return nil
}

// tokenResponse is what the token endpoint answers.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	IDToken     string `json:"id_token"`
	Error       string `json:"error"`
}

// exchange redeems the code with client_secret_basic and the PKCE verifier.
func (s *signIn) exchange(code, verifier string) (*tokenResponse, *failure) {
	var tok tokenResponse
	f := s.timed("token", func() *failure {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.t.redirectURI}, "code_verifier": {verifier}}
		req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.t.token, strings.NewReader(form.Encode()))
		if err != nil {
			return fail("token", "bad URL", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
		req.SetBasicAuth(url.QueryEscape(s.t.clientID), url.QueryEscape(s.t.secret))
		resp, err := s.t.hc.Do(req)
		if err != nil {
			return fail("token", transportKind(err), err)
		}
		body, err := readBody(resp)
		if err != nil {
			return fail("token", transportKind(err), err)
		}
		if err := json.Unmarshal(body, &tok); err != nil {
			return fail("token", fmt.Sprintf("status %d, not JSON", resp.StatusCode), errors.New(snippet(body)))
		}
		if resp.StatusCode != http.StatusOK || tok.Error != "" {
			return fail("token", fmt.Sprintf("status %d error=%s", resp.StatusCode, tok.Error), errors.New(snippet(body)))
		}
		if tok.AccessToken == "" || tok.IDToken == "" || !strings.EqualFold(tok.TokenType, "Bearer") {
			return fail("token", "incomplete response", errors.New(snippet(body)))
		}
		return nil
	})
	return &tok, f
}

// verify checks the ID token as a relying party must (OpenID Connect Core
// 1.0 §3.1.3.7): signature against the JWKS, iss, aud, exp (go-oidc), the
// nonce, and at_hash against the access token (§3.1.3.8). It returns sub.
func (s *signIn) verify(tok *tokenResponse, nonce string) (string, *failure) {
	var sub string
	f := s.timed(stepVerify, func() *failure {
		idt, err := s.t.verifier.Verify(s.ctx, tok.IDToken)
		if err != nil {
			return fail("verify ID token", "rejected", err)
		}
		if idt.Nonce != nonce {
			return fail("verify ID token", "nonce mismatch", nil)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return fail("verify ID token", "at_hash mismatch", err)
		}
		sub = idt.Subject
		s.alg = jwsAlgorithm(tok.IDToken)
		return nil
	})
	return sub, f
}

// userinfo fetches the claims with the access token; sub must be the ID
// token's (OpenID Connect Core 1.0 §5.3.2).
func (s *signIn) userinfo(accessToken, sub string) *failure {
	return s.timed("userinfo", func() *failure {
		req, err := http.NewRequestWithContext(s.ctx, http.MethodGet, s.t.userinfo, nil)
		if err != nil {
			return fail("userinfo", "bad URL", err)
		}
		req.Header.Set("Authorization", "Bearer "+accessToken)
		resp, err := s.t.hc.Do(req)
		if err != nil {
			return fail("userinfo", transportKind(err), err)
		}
		body, err := readBody(resp)
		if err != nil {
			return fail("userinfo", transportKind(err), err)
		}
		if resp.StatusCode != http.StatusOK {
			return fail("userinfo", fmt.Sprintf("status %d", resp.StatusCode), errors.New(snippet(body)))
		}
		var claims struct {
			Subject string `json:"sub"`
		}
		if err := json.Unmarshal(body, &claims); err != nil {
			return fail("userinfo", "not JSON", err)
		}
		if claims.Subject != sub {
			return fail("userinfo", "sub differs from the ID token's", nil)
		}
		return nil
	})
}

// jwsAlgorithm reads alg from a compact JWS's header ("" if unreadable).
func jwsAlgorithm(token string) string {
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(raw, &h) != nil {
		return ""
	}
	return h.Alg
}

func readBody(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxBody))
}

// transportKind names a transport error by its kind, not its text (which
// carries ports and addresses), so that errors count by kind.
func transportKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "out of local ports"
	}
	return "transport error"
}

// pageKind names an answer that should have been a redirect: its status and
// the page's stable marker (data-page, or the simulator's error code).
func pageKind(resp *http.Response, body []byte) string {
	kind := fmt.Sprintf("status %d", resp.StatusCode)
	if code := resp.Header.Get("X-Sim-Errcode"); code != "" {
		return kind + " WeChat page " + code
	}
	if _, rest, ok := strings.Cut(string(body), `data-page="`); ok {
		if name, _, ok := strings.Cut(rest, `"`); ok && len(name) < 40 {
			return kind + " page " + name
		}
	}
	if strings.Contains(string(body), `name="t"`) {
		return kind + " WeChat consent page (start the provider with `wechat-oidc dev --bench`)"
	}
	return kind
}

// snippet is the start of a body, for the detail of an error.
func snippet(body []byte) string {
	const n = 200
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
