package dev

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/internal/qrtest"
)

// lanTestIP is the private-network address the tests give the issuer. No
// test connects to it: the phone below reaches it through loopback, and
// dev mode's own calls must too.
const lanTestIP = "192.168.77.10"

// loopbackOnly is a dialer that refuses anything but loopback, so that a
// test cannot send a packet to a network.
var loopbackOnly = &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("the test tried to connect to %s, not loopback", address)
	}
	return nil
}}

// phoneOnLAN is a phone on the network: it asks for lanHost and reaches
// the loopback listener (as if lanHost were routed here), keeps cookies by
// the URLs it asked for, and records every URL it asked for.
type phoneOnLAN struct {
	client  *http.Client
	mu      sync.Mutex
	visited []string
}

func newPhoneOnLAN(lanHost, loopback string) *phoneOnLAN {
	p := &phoneOnLAN{}
	jar, _ := cookiejar.New(nil)
	inner := &http.Transport{DialContext: loopbackOnly.DialContext}
	p.client = &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		p.mu.Lock()
		p.visited = append(p.visited, r.URL.String())
		p.mu.Unlock()
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", uaWeChat)
		if r.URL.Host == lanHost {
			r.URL.Host = loopback
			r.Host = lanHost
		}
		return inner.RoundTrip(r)
	})}
	return p
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (p *phoneOnLAN) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := p.client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestDevLANIssuer: `dev --issuer http://192.168.x.x:PORT` (what --lan
// picks) makes every URL a browser or phone sees the LAN address — the
// discovery document, WeChat's page and its redirect_uri, the callbacks —
// while dev mode's own calls (the demo app's token request, the
// connector's calls to the simulated WeChat) stay on loopback. A phone
// signs in end to end, and the start warns about plain http.
func TestDevLANIssuer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	lanHost := net.JoinHostPort(lanTestIP, port)
	issuer := "http://" + lanHost
	d, err := NewWithOptions(Options{Listen: ln.Addr().String(), Issuer: issuer + "/"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	if d.BaseURL != issuer || d.SimulatorURL != issuer+"/wechat-sim" {
		t.Fatalf("BaseURL %q, SimulatorURL %q", d.BaseURL, d.SimulatorURL)
	}
	warned := strings.Join(d.Warnings, "\n")
	for _, want := range []string{"plain http on your network", "never put real accounts", "listening on 127.0.0.1 only", "--listen 0.0.0.0:PORT"} {
		if !strings.Contains(warned, want) {
			t.Errorf("warnings lack %q: %q", want, d.Warnings)
		}
	}
	if qr := d.PhoneQRText(); qr == "" {
		t.Error("no QR code for the terminal")
	}

	phone := newPhoneOnLAN(lanHost, ln.Addr().String())
	_, disco := phone.get(t, issuer+"/.well-known/openid-configuration")
	var doc map[string]any
	if err := json.Unmarshal([]byte(disco), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint"} {
		if v, _ := doc[k].(string); !strings.HasPrefix(v, issuer) {
			t.Errorf("discovery %s = %q, want it on %s", k, v, issuer)
		}
	}

	// The demo's home page shows a QR code of itself for the phone.
	_, home := phone.get(t, issuer+"/")
	m := regexp.MustCompile(`<div class="phone" data-phone-qr><img src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(home)
	if m == nil {
		t.Fatalf("no phone QR code on the home page:\n%s", home)
	}
	pix, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(m[1], "&#43;", "+"))
	if text, err := qrtest.DecodePNG(pix); err != nil || text != issuer+"/" {
		t.Errorf("the home page's QR code says %q (%v), want %s/", text, err, issuer)
	}

	// The phone signs in: WeChat's page, alice, the demo shows her claims.
	resp, consent := phone.get(t, issuer+"/demo/login")
	if !strings.Contains(consent, "<title>微信授权</title>") {
		t.Fatalf("not the simulated WeChat page (%s):\n%s", resp.Request.URL, consent)
	}
	phone.mu.Lock()
	wechatPage, _ := url.Parse(phone.visited[len(phone.visited)-1]) // the URL it asked for
	phone.mu.Unlock()
	if wechatPage.Host != lanHost || wechatPage.Path != "/wechat-sim/connect/oauth2/authorize" ||
		wechatPage.Query().Get("redirect_uri") != issuer+"/wechat/callback" {
		t.Errorf("WeChat's page is %s", wechatPage)
	}
	tok := regexp.MustCompile(`name="t" value="([^"]+)"`).FindStringSubmatch(consent)
	if tok == nil {
		t.Fatalf("no consent form:\n%s", consent)
	}
	r2, err := phone.client.PostForm(issuer+"/wechat-sim/_sim/authorize", url.Values{"t": {tok[1]}, "user": {"alice"}, "action": {"allow"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if !strings.Contains(string(body), "Signed in as <b>Alice 爱丽丝</b>") || !strings.Contains(string(body), `&#34;iss&#34;: &#34;`+issuer+`&#34;`) {
		t.Fatalf("not signed in with the LAN issuer:\n%s", body)
	}
	phone.mu.Lock()
	defer phone.mu.Unlock()
	for _, u := range phone.visited {
		if !strings.HasPrefix(u, issuer+"/") {
			t.Errorf("the phone was sent to %s, not to the issuer %s", u, issuer)
		}
	}
}

// TestSelfClientStaysOnThisMachine: dev mode's own HTTP client sends the
// issuer's requests to its listener and refuses every other address.
func TestSelfClientStaysOnThisMachine(t *testing.T) {
	issuer, _ := url.Parse("http://" + lanTestIP + ":8080")
	self, _ := url.Parse("http://127.0.0.1:1") // nothing listens on port 1
	hc := selfClient(issuer, self)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, u := range []string{"http://203.0.113.9/x", "http://" + lanTestIP + ":9090/x", "http://[2001:db8::1]/x"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if _, err := hc.Do(req); err == nil || !strings.Contains(err.Error(), "dev mode connects only to itself") {
			t.Errorf("%s: err = %v, want refused", u, err)
		}
	}
	// The issuer's own origin goes to self (refused there: nothing listens).
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, issuer.String()+"/jwks", nil)
	if _, err := hc.Do(req); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("the issuer's request did not go to the listener: %v", err)
	}
}

// TestDevIssuerRefused: an issuer dev mode cannot serve, or that would send
// sign-ins over plain http beyond a private network, stops the start with
// what to write instead.
func TestDevIssuerRefused(t *testing.T) {
	for issuer, want := range map[string]string{
		"http://203.0.113.5:8080":       "private-network IP address",
		"http://devbox.lan:8080":        "private-network IP address",
		"http://192.168.1.10:8080/sso":  "no path",
		"http://192.168.1.10:8080/?a=b": "no path",
		"ftp://192.168.1.10":            "scheme://host[:port]",
		"192.168.1.10:8080":             "scheme://host[:port]",
	} {
		_, err := NewWithOptions(Options{Listen: "127.0.0.1:18080", Issuer: issuer}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want one saying %q", issuer, err, want)
		}
	}
	// https (a tunnel) and a private address are fine; listening on every
	// interface, there is nothing to warn about but plain http.
	for issuer, warnings := range map[string]int{"https://dev.example.com": 0, "http://10.1.2.3:8080": 1} {
		d, err := NewWithOptions(Options{Listen: "0.0.0.0:18080", Issuer: issuer}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil || len(d.Warnings) != warnings {
			t.Errorf("%s: err %v, warnings %q (want %d)", issuer, err, d.Warnings, warnings)
		}
	}
}

// TestPickLANAddress: the address a phone on the same Wi-Fi most likely
// reaches; never a public, loopback, link-local or IPv6 one.
func TestPickLANAddress(t *testing.T) {
	nets := func(cidrs ...string) []net.Addr {
		var out []net.Addr
		for _, c := range cidrs {
			ip, n, err := net.ParseCIDR(c)
			if err != nil {
				t.Fatal(err)
			}
			n.IP = ip
			out = append(out, n)
		}
		return out
	}
	for _, c := range []struct {
		addrs []net.Addr
		want  string
	}{
		{nets("172.17.0.1/16", "10.0.0.5/8", "192.168.1.23/24"), "192.168.1.23"},
		{nets("172.17.0.1/16", "10.0.0.5/8"), "10.0.0.5"},
		{nets("203.0.113.7/24", "172.20.1.2/16"), "172.20.1.2"},
		{nets("203.0.113.7/24", "169.254.1.1/16", "fd00::1/64", "127.0.0.1/8"), ""},
		{nil, ""},
	} {
		ip, err := pickLANAddress(c.addrs)
		switch {
		case c.want == "" && (err == nil || !strings.Contains(err.Error(), "--issuer http://ADDRESS:PORT")):
			t.Errorf("%v: %v, %v; want an error saying what to do", c.addrs, ip, err)
		case c.want != "" && (err != nil || ip.String() != c.want):
			t.Errorf("%v: %v, %v; want %s", c.addrs, ip, err, c.want)
		}
	}
}
