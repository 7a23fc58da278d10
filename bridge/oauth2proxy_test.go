package bridge

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// oauth2-proxy (v7.15.6, built by scripts/install-oauth2-proxy.sh) is a real
// relying party that other people wrote: these tests run it in front of a
// tiny upstream, against the real server and the WeChat simulator.

const (
	proxyClientID    = "proxy"
	proxySecret      = "proxy-secret-0123456789abcdef"
	proxyEmailDomain = "wechat.example.com"
)

// oauth2ProxyBin finds the oauth2-proxy binary, or skips (fails in CI).
func oauth2ProxyBin(t *testing.T) string {
	t.Helper()
	return toolBinary(t, "OAUTH2_PROXY_BIN", "oauth2-proxy", oauth2ProxyVersion, "oauth2-proxy", "scripts/install-oauth2-proxy.sh")
}

// freeLoopbackPort returns a port that was free a moment ago.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type oauth2Proxy struct {
	url string // http://127.0.0.1:PORT
	out *syncBuffer
}

var errPortTaken = errors.New("port taken")

// startOAuth2Proxy runs oauth2-proxy on port against h's issuer, with the
// flags of docs/integrations/oauth2-proxy.md and then extra (a flag given
// again overrides the one before), and waits until /ping answers.
// errPortTaken means another process got the port first.
func startOAuth2Proxy(t *testing.T, bin string, h *harness, port int, upstream string, extra ...string) (*oauth2Proxy, error) {
	t.Helper()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := &oauth2Proxy{url: base, out: &syncBuffer{}}
	cmd := exec.Command(bin,
		"--provider=oidc",
		"--oidc-issuer-url="+h.issuer(),
		"--client-id="+proxyClientID,
		"--client-secret="+proxySecret,
		"--redirect-url="+base+"/oauth2/callback",
		fmt.Sprintf("--http-address=127.0.0.1:%d", port),
		"--cookie-secret="+base64.URLEncoding.EncodeToString(secret),
		"--cookie-secure=false",
		"--email-domain=*",
		"--upstream="+upstream,
		"--skip-provider-button",
		"--approval-prompt=auto",
		"--set-xauthrequest",
		"--scope=openid profile email",
		"--code-challenge-method=S256",
	)
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = p.out, p.out

	// One request to the provider from this process first. Besides checking
	// discovery, it is what tells the race detector that newHarness finished
	// setting up the server before another process's requests reach it: the
	// detector orders socket I/O within a process, and knows nothing of
	// another process, so without this the harness's late assignment of the
	// handler is reported as a race with oauth2-proxy's discovery request.
	resp, err := http.Get(h.issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery = %d", resp.StatusCode)
	}

	if err := cmd.Start(); err != nil {
		t.Fatalf("start oauth2-proxy: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			if strings.Contains(p.out.String(), "address already in use") {
				return nil, errPortTaken
			}
			t.Fatalf("oauth2-proxy exited before answering /ping; its output:\n%s", p.out.String())
		default:
		}
		resp, err := http.Get(base + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("oauth2-proxy did not answer /ping in 10 s; its output:\n%s", p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", p.out.String())
		}
	})
	return p, nil
}

// echoUpstream is the application behind the proxy: it answers "upstream
// ok" and says, in Echo-* headers, who the proxy said it was talking to.
func echoUpstream(t *testing.T) *httptest.Server {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range r.Header {
			if k == "X-Forwarded-User" || k == "X-Forwarded-Email" || k == "X-Forwarded-Groups" || strings.HasPrefix(k, "X-Auth-Request-") {
				w.Header()["Echo-"+k] = vs
			}
		}
		io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(upstream.Close)
	return upstream
}

// runOAuth2Proxy starts the provider (with opts and the proxy's client) and
// oauth2-proxy in front of upstream (with extra flags).
func runOAuth2Proxy(t *testing.T, bin, upstream string, opts []harnessOption, extra ...string) (*harness, *oauth2Proxy) {
	t.Helper()
	// The proxy's port is in its redirect URI, which the provider must know
	// beforehand: pick a port, configure the provider, start the proxy; pick
	// again if another process took the port in between.
	var (
		h     *harness
		proxy *oauth2Proxy
	)
	for attempt := 0; ; attempt++ {
		port := freeLoopbackPort(t)
		// require_pkce and client_secret_basic: the login below succeeds only
		// if oauth2-proxy sent a code_challenge and then authenticated to the
		// token endpoint with HTTP Basic and a code_verifier, which is what the
		// proxy does by default plus --code-challenge-method=S256.
		all := append([]harnessOption{withConfig(func(c *config.File) {
			c.Clients = append(c.Clients, config.ClientConfig{
				ID:                      proxyClientID,
				Secret:                  proxySecret,
				RedirectURIs:            []string{fmt.Sprintf("http://127.0.0.1:%d/oauth2/callback", port)},
				TokenEndpointAuthMethod: "client_secret_basic",
				RequirePKCE:             true,
				Claims:                  config.ClientClaimsConfig{Email: "{preferred_username}@" + proxyEmailDomain, EmailVerified: true},
			})
		})}, opts...)
		h = newHarness(t, all...)
		var err error
		proxy, err = startOAuth2Proxy(t, bin, h, port, upstream, extra...)
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("no free port for oauth2-proxy: %v", err)
		}
	}
	t.Cleanup(func() {
		if strings.Contains(h.logs.String(), proxySecret) {
			t.Errorf("the log contains the proxy's client secret")
		}
	})
	return h, proxy
}

// proxyBrowser is the WeChat in-app browser; it follows every redirect.
func proxyBrowser() *http.Client { return followingBrowser(10 * time.Second) }

// followingBrowser is a new WeChat in-app browser with its own cookies that
// follows every redirect (up to 20), for tests of real relying parties.
func followingBrowser(timeout time.Duration) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: uaTransport{ua: uaWeChat},
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > 20 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// proxyGet GETs u with b and returns the final response and its body.
func proxyGet(t *testing.T, h *harness, b *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v\nprovider log:\n%s", u, err, h.logs.String())
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestOAuth2ProxyEndToEnd(t *testing.T) {
	bin := oauth2ProxyBin(t)
	upstream := echoUpstream(t)
	h, proxy := runOAuth2Proxy(t, bin, upstream.URL, nil)

	browser := proxyBrowser
	get := func(t *testing.T, b *http.Client, u string) (*http.Response, string) {
		t.Helper()
		return proxyGet(t, h, b, u)
	}

	t.Run("alice signs in", func(t *testing.T) {
		sub := h.sim.UnionID("alice")
		email := wechatconn.PreferredUsername(sub) + "@" + proxyEmailDomain
		b := browser()
		h.sim.AutoApprove("alice")

		// proxy → /authorize → simulated WeChat → /wechat/callback → proxy's /oauth2/callback → upstream.
		resp, body := get(t, b, proxy.url+"/")
		if resp.StatusCode != http.StatusOK || body != "upstream ok" {
			t.Fatalf("final page %s (%d): %.300q\nprovider log:\n%s", resp.Request.URL, resp.StatusCode, body, h.logs.String())
		}
		if got := resp.Header.Get("Echo-X-Forwarded-User"); got != sub {
			t.Errorf("upstream got X-Forwarded-User %q, want %q", got, sub)
		}
		if got := resp.Header.Get("Echo-X-Forwarded-Email"); got != email {
			t.Errorf("upstream got X-Forwarded-Email %q, want %q", got, email)
		}

		resp, _ = get(t, b, proxy.url+"/oauth2/auth")
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("/oauth2/auth = %d, want 202", resp.StatusCode)
		}
		if got := resp.Header.Get("X-Auth-Request-User"); got != sub {
			t.Errorf("X-Auth-Request-User = %q, want the unionid %q", got, sub)
		}
		if got := resp.Header.Get("X-Auth-Request-Email"); got != email {
			t.Errorf("X-Auth-Request-Email = %q, want %q", got, email)
		}
	})

	t.Run("carol without a unionid is refused", func(t *testing.T) {
		b := browser()
		h.sim.AutoApprove("carol")

		resp, body := get(t, b, proxy.url+"/")
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("final page %s (%d), want oauth2-proxy's error page (403 or 500): %.300q", resp.Request.URL, resp.StatusCode, body)
		}
		if !strings.HasPrefix(resp.Request.URL.String(), proxy.url+"/oauth2/callback") {
			t.Errorf("the error page is at %s, want the proxy's callback", resp.Request.URL)
		}
		if strings.Contains(body, "upstream ok") {
			t.Fatal("carol reached the upstream")
		}

		resp, _ = get(t, b, proxy.url+"/oauth2/auth")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/oauth2/auth = %d, want 401", resp.StatusCode)
		}
	})
}

// TestOAuth2ProxyAllowedGroup: with the groups scope and --allowed-group=ops,
// oauth2-proxy lets in the person whose groups claim has ops (and passes the
// groups to the application) and refuses the person without it. The groups
// are the people directory's.
func TestOAuth2ProxyAllowedGroup(t *testing.T) {
	bin := oauth2ProxyBin(t)
	upstream := echoUpstream(t)
	h, proxy := runOAuth2Proxy(t, bin, upstream.URL, nil,
		"--scope=openid profile email groups", "--allowed-group=ops")
	h.addPerson("alice", "ops", "sales")
	h.addPerson("bob")

	t.Run("alice in ops gets in", func(t *testing.T) {
		b := proxyBrowser()
		h.sim.AutoApprove("alice")
		resp, body := proxyGet(t, h, b, proxy.url+"/")
		if resp.StatusCode != http.StatusOK || body != "upstream ok" {
			t.Fatalf("final page %s (%d): %.300q\nprovider log:\n%s", resp.Request.URL, resp.StatusCode, body, h.logs.String())
		}
		if got := resp.Header.Get("Echo-X-Forwarded-Groups"); got != "ops,sales" {
			t.Errorf("upstream got X-Forwarded-Groups %q, want ops,sales", got)
		}
		resp, _ = proxyGet(t, h, b, proxy.url+"/oauth2/auth")
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("/oauth2/auth = %d, want 202", resp.StatusCode)
		}
	})

	t.Run("bob in no group is refused", func(t *testing.T) {
		b := proxyBrowser()
		h.sim.AutoApprove("bob")
		resp, body := proxyGet(t, h, b, proxy.url+"/")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("final page %s (%d), want oauth2-proxy's 403: %.300q", resp.Request.URL, resp.StatusCode, body)
		}
		if strings.Contains(body, "upstream ok") {
			t.Fatal("bob reached the upstream")
		}
		resp, _ = proxyGet(t, h, b, proxy.url+"/oauth2/auth")
		if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden {
			t.Errorf("/oauth2/auth = %d, want 401 or 403", resp.StatusCode)
		}
	})
}
