package dev

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
)

// parseDevIssuer checks --issuer: scheme://host[:port], nothing more (dev
// mode serves its demo at / and cannot run under a path). Which hosts may
// use http is config's rule (loopback, or a private-network IP address in
// dev mode).
func parseDevIssuer(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" ||
		u.User != nil || strings.ContainsAny(raw, "?#") {
		return nil, fmt.Errorf("--issuer %q must be scheme://host[:port] with no path, e.g. http://192.168.1.10:8080", raw)
	}
	return u, nil
}

// issuerWarnings are what the person starting dev mode with --issuer must
// know.
func issuerWarnings(base *url.URL, listenHost string) []string {
	var w []string
	if base.Scheme == "http" && !isLoopback(base.Hostname()) {
		w = append(w, fmt.Sprintf("the issuer %s uses plain http on your network: anyone on it can watch these sign-ins. "+
			"Dev mode only, with simulated WeChat users: never put real accounts or applications behind it", base))
	}
	if isLoopback(listenHost) && !isLoopback(base.Hostname()) {
		w = append(w, fmt.Sprintf("listening on %s only, so other devices cannot reach %s: listen on 0.0.0.0 (--listen 0.0.0.0:PORT) "+
			"unless a tunnel or proxy forwards to this port", listenHost, base))
	}
	return w
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LANIssuer is `dev --lan`'s issuer: http://ADDRESS:port with a
// private-network IPv4 address of one of this machine's interfaces that is
// up, so that a phone on the same network can reach dev mode. It only
// reads the interfaces; it sends nothing.
func LANIssuer(port string) (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("--lan: list the network interfaces: %w", err)
	}
	var addrs []net.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		a, err := ifc.Addrs()
		if err != nil {
			continue // an interface that vanished: the others may do
		}
		addrs = append(addrs, a...)
	}
	ip, err := pickLANAddress(addrs)
	if err != nil {
		return "", err
	}
	return "http://" + net.JoinHostPort(ip.String(), port), nil
}

// pickLANAddress picks the private-network IPv4 address a phone on the same
// Wi-Fi most likely reaches: 192.168.0.0/16 first (home and office
// networks), then 10.0.0.0/8, then 172.16.0.0/12 (where container bridges
// live too).
func pickLANAddress(addrs []net.Addr) (net.IP, error) {
	var found []net.IP
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if ip4 := ip.To4(); ip4 != nil && ip4.IsPrivate() {
			found = append(found, ip4)
		}
	}
	rank := func(ip net.IP) int {
		switch {
		case ip[0] == 192:
			return 0
		case ip[0] == 10:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(found, func(a, b net.IP) int { return rank(a) - rank(b) })
	if len(found) == 0 {
		return nil, errors.New("--lan: this machine has no private-network IPv4 address (192.168.x.x, 10.x.x.x, 172.16-31.x.x) on an interface that is up: " +
			"connect to the phone's network, or pass --issuer http://ADDRESS:PORT")
	}
	return found[0], nil
}

// selfClient is how dev mode's own parts — the demo app and the WeChat
// connector — call the provider and the simulator: a request for the
// issuer's origin goes to the listener's own address (self) with the
// issuer's Host, so that an issuer only a phone can reach (a LAN address,
// a tunnel) works, and a connection to anything but this machine is
// refused: dev mode calls nobody else.
func selfClient(issuer, self *url.URL) *http.Client {
	selfIP := net.ParseIP(self.Hostname())
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !(ip.IsLoopback() || ip.Equal(selfIP)) {
				return fmt.Errorf("dev mode connects only to itself, not to %s", address)
			}
			return nil
		},
	}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: toSelf{issuer: issuer, self: self, next: transport}}
}

// toSelf sends requests for the issuer's origin to self.
type toSelf struct {
	issuer, self *url.URL
	next         http.RoundTripper
}

func (t toSelf) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == t.issuer.Scheme && r.URL.Host == t.issuer.Host {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = t.self.Scheme, t.self.Host
		r.Host = t.issuer.Host
	}
	return t.next.RoundTrip(r)
}

// phoneQR is a QR code of the demo's home page for a phone to scan, when
// the issuer is one a phone can reach (not loopback); "" otherwise.
func phoneQR(base *url.URL) template.URL {
	if isLoopback(base.Hostname()) {
		return ""
	}
	png, err := qrcode.Encode(base.String()+"/", qrcode.Medium, -4)
	if err != nil {
		return "" // a URL too long for a QR code: the page shows the link
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

// PhoneQRText is a QR code of the demo's home page drawn with text, for a
// terminal, when the issuer is one a phone can reach; "" otherwise.
func (d *Dev) PhoneQRText() string {
	u, err := url.Parse(d.BaseURL)
	if err != nil || isLoopback(u.Hostname()) {
		return ""
	}
	q, err := qrcode.New(d.BaseURL+"/", qrcode.Medium)
	if err != nil {
		return ""
	}
	return q.ToSmallString(false)
}
