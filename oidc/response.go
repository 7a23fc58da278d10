package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
)

// WriteAuthorizeResponse returns an authorization response or error to the
// client at req.RedirectURI, in req's response mode. It is the one place that
// decides how a response travels (query or form_post). iss is added to every
// response (RFC 9207 §2), state echoed exactly when the request had one.
func (p *Provider) WriteAuthorizeResponse(w http.ResponseWriter, req *AuthRequest, params url.Values) {
	if req.State != "" {
		params.Set("state", req.State)
	}
	params.Set("iss", p.Issuer)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if req.ResponseMode == ResponseModeFormPost {
		writeFormPost(w, req.RedirectURI, params)
		return
	}
	http.Redirect(w, &http.Request{Method: http.MethodGet}, AppendQuery(req.RedirectURI, params), http.StatusFound)
}

// WriteAuthorizeError redirects an error to the client (only for errors whose
// Redirect is true: the client and redirect_uri were validated).
func (p *Provider) WriteAuthorizeError(w http.ResponseWriter, req *AuthRequest, e *Error) {
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	p.WriteAuthorizeResponse(w, req, v)
}

// AppendQuery adds params to uri's query, keeping the query it already has
// (RFC 6749 §3.1.2: the redirection endpoint's query MUST be retained).
func AppendQuery(uri string, params url.Values) string {
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i] // a registered redirect_uri has no fragment (§3.1.2); never forward one
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
		if strings.HasSuffix(uri, "?") || strings.HasSuffix(uri, "&") {
			sep = ""
		}
	}
	return uri + sep + params.Encode()
}

const formPostScript = `document.forms[0].submit();`

var formPostScriptHash = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

var formPostTemplate = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Signing in…</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><form method="post" action="{{.Action}}">{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}
<noscript><p>JavaScript is off: press the button to continue.</p><button type="submit">Continue</button></noscript></form>
<script>` + formPostScript + `</script></body></html>`))

// writeFormPost renders the OAuth 2.0 Form Post Response Mode page: a form
// that submits itself to the redirect_uri. Its CSP allows exactly that one
// inline script (by hash) and posting to the redirect_uri's origin.
func writeFormPost(w http.ResponseWriter, action string, params url.Values) {
	formAction := "'none'"
	if u, err := url.Parse(action); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		formAction = u.Scheme + "://" + u.Host
	}
	w.Header().Set("Content-Security-Policy",
		"default-src 'none'; script-src '"+formPostScriptHash+"'; form-action "+formAction+"; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_ = formPostTemplate.Execute(w, struct {
		Action template.URL // a registered redirect_uri: trusted by configuration
		Params url.Values
	}{template.URL(action), params})
}
