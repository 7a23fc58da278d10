// Package connector is the seam between the provider-neutral login core
// (package bridge) and the upstreams people sign in with (WeChat, later
// WeCom). A connector knows one upstream: its authorization URLs, its legs,
// its errors and how a person is identified there. It never issues codes or
// tokens; it returns identities, and the core decides the rest (access,
// sessions, codes).
//
// One sign-in, as the core drives it:
//
//	core: Start(request)      → a Leg to run in this browser, or on a phone (cross-device)
//	core: LoginURL(leg, state) → redirect the browser to the upstream
//	upstream → core callback   → HandleCallback(leg, params) → exactly one of
//	                             an Identity, a Next leg, a Retry page, or a Failure
package connector

import (
	"context"
	"encoding/json"
	"time"

	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// CallbackPath is where an upstream returns the browser, under the issuer.
// (It names WeChat because that is what operators registered on WeChat's
// side before there were other upstreams.)
const CallbackPath = "/wechat/callback"

// Leg is a connector's own description of one round trip to its upstream
// (which app, which scope, ...). The core stores it with the pending login
// and hands it back at the callback; it never looks inside.
type Leg = json.RawMessage

// Connector signs people in at one upstream through the browser.
type Connector interface {
	// Start chooses how an authorization request signs in: a leg the
	// browser runs now, or one that a phone runs after scanning the core's
	// cross-device QR code. An error is sent to the client.
	Start(r StartRequest) (Start, *oidc.Error)
	// LoginURL is the upstream URL that runs leg. state is the core's
	// handle for the leg ([A-Za-z0-9], 32 characters); the upstream returns
	// it to CallbackURL.
	LoginURL(leg Leg, state string) (string, error)
	// HandleCallback finishes a leg with the callback's parameters (state
	// already checked by the core).
	HandleCallback(ctx context.Context, leg Leg, params map[string]string) Outcome
	// CanRunPhoneLeg says whether a browser (by its User-Agent) can run the
	// phone leg of a cross-device sign-in (WeChat: only WeChat's own browser).
	CanRunPhoneLeg(userAgent string) bool
}

// StartRequest is what Start may base its choice on.
type StartRequest struct {
	ClientID  string
	UserAgent string
	// Extra are the request's non-OIDC parameters the core accepted.
	Extra map[string]string
	// Consent is prompt=consent: the upstream's consent page is wanted.
	Consent bool
}

// Start is a connector's choice for one request.
type Start struct {
	Leg Leg
	// CrossDevice: the leg runs on a phone after the core's QR handoff.
	CrossDevice bool
	// Flow names the choice (for logs and audit).
	Flow string
}

// Outcome is the result of a callback: exactly one field is set.
type Outcome struct {
	Identity *Identity
	// Next is another leg to run at once (e.g. silent-first's second hop).
	Next Leg
	// Retry is a page that offers the person a fresh leg (e.g. WeChat's
	// snapshot page, whose virtual user never gets a token).
	Retry *Retry
	// Failure ends the sign-in.
	Failure *Failure
}

// Identity is the person an upstream vouched for.
type Identity struct {
	// Subject is the stable sub under the connector's subject rule.
	Subject string
	// Claims are what the upstream told about the person (name, picture, ...).
	Claims map[string]any
	// The upstream account, as the people directory binds it: the provider
	// (e.g. "wechat"), the app the per-app id belongs to, that id (openid)
	// and the provider-wide id (unionid), when known.
	Provider, AppID, OpenID, UnionID string
}

// Retry is a page with a button that starts Leg.
type Retry struct {
	Leg Leg
	// Name is the page's stable marker (e.g. "snapshot").
	Name                                 string
	Title, Heading, MessageZH, MessageEN string
}

// Failure is an unsuccessful leg.
type Failure struct {
	// Error goes to the relying party (ASCII description).
	Error *oidc.Error
	// Declined: the person refused at the upstream.
	Declined bool
	// PersonZH and PersonEN, if set, are what a person is shown on a page
	// (the phone of a cross-device sign-in).
	PersonZH, PersonEN string
}

// Failed is a Failure outcome for e.
func Failed(e *oidc.Error) Outcome { return Outcome{Failure: &Failure{Error: e}} }

// CodeExchanger is an optional capability: a connector that can turn a code
// obtained by an app without a browser (a mini program's wx.login js_code)
// into an identity, for the token exchange grant (RFC 8693).
type CodeExchanger interface {
	// ExchangeEnabled says whether the exchange is configured at all
	// (otherwise the grant is unsupported).
	ExchangeEnabled() bool
	// TokenType is the subject_token_type (a URI) of the codes it takes.
	TokenType() string
	// ExchangeCode turns a code into an identity; errors are token endpoint
	// errors (RFC 6749 §5.2).
	ExchangeCode(ctx context.Context, clientID, code string) (Identity, *oidc.Error)
	// AllowsClient says whether clientID may use the exchange.
	AllowsClient(clientID string) bool
}

// ScopeClaimer is an optional capability: scopes of the connector's own
// that release claims it sets (WeChat: scope wechat releases openid and
// unionid).
type ScopeClaimer interface {
	ScopeClaims() map[string][]string
}

// ParamAccepter is an optional capability: authorize parameters of the
// connector's own that the core must keep (and pass back in StartRequest.Extra).
type ParamAccepter interface {
	AuthorizeParams() []string
}

// CallbackBound is an optional capability: the longest HandleCallback may
// take (upstream timeouts and retries). A duplicate callback waits this long
// for the first one's answer.
type CallbackBound interface {
	MaxCallbackDuration() time.Duration
}
