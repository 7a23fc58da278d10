package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// Core is what the console needs from the login core (bridge.Server): ending
// a person's access everywhere, and their live SSO sessions. The console
// defines it so that tests can use a fake.
type Core interface {
	// EndPersonAccess ends every SSO session of the person, revokes every
	// token of theirs and sends back-channel logout tokens. Idempotent. The
	// console calls it right after disabling or removing a person (the
	// person and their identities still exist when it is called).
	EndPersonAccess(ctx context.Context, personID string) error
	// PersonSessions lists the person's live SSO sessions.
	PersonSessions(ctx context.Context, personID string) ([]SessionInfo, error)
	// EndSession ends one SSO session: its non-offline tokens are revoked
	// and back-channel logout is sent.
	EndSession(ctx context.Context, sid string) error
	// PersonGrants lists the person's live refresh token families.
	PersonGrants(ctx context.Context, personID string) ([]GrantInfo, error)
	// EndGrant revokes one refresh token family of the person: its refresh
	// token and the access tokens issued from it stop working; nothing
	// else of the person changes. ErrGrantNotFound when the family is not
	// one of the person's live ones.
	EndGrant(ctx context.Context, personID, familyID string) error
}

// ErrGrantNotFound is EndGrant's answer for a family that is not one of
// the person's live refresh token families (ended meanwhile, or never
// theirs).
var ErrGrantNotFound = errors.New("admin: the person has no such live refresh token family")

// GrantInfo is one live refresh token family of a person: one sign-in to
// one application, kept alive by refreshing.
type GrantInfo struct {
	ID       string // the family's handle for EndGrant (not a token)
	ClientID string
	Subject  string
	Scopes   []string
	// Offline: issued for offline_access; it outlives the end of its
	// session.
	Offline bool
	// SessionID is the sid of the session it was issued in ("" if none).
	SessionID string
	Created   time.Time
	// LastUsed is when it was last refreshed (its newest refresh token
	// was issued); zero when unknown.
	LastUsed time.Time
	// IdleExpires is when it ends unless refreshed; zero when unknown.
	IdleExpires time.Time
	// Expires is when it ends however often it is refreshed.
	Expires time.Time
}

// SessionInfo is one live SSO session of a person, as the login core
// reports it.
type SessionInfo struct {
	ID       string    // the sid
	Subject  string    // the sub the session signs in as
	AuthTime time.Time // when the person last authenticated upstream
	Created  time.Time
	Clients  []string // ids of the applications signed in through it
}

// Verifier verifies the signature of a token the provider signed and
// returns its payload (keys.Set and keys.Keyring do).
type Verifier interface {
	Verify(token string) ([]byte, error)
}

// Application is a relying party an invitation may land in.
type Application struct {
	ID, Name string
}

// Defaults and limits.
const (
	// MaxAuthAge is how old a sign-in may be for a dangerous action
	// (disable, remove, admin group changes).
	MaxAuthAge = 10 * time.Minute
	// DefaultSessionIdleTTL ends a console session unused this long.
	DefaultSessionIdleTTL = 30 * time.Minute
	// DefaultSessionAbsoluteTTL ends a console session this long after
	// sign-in, used or not.
	DefaultSessionAbsoluteTTL = 12 * time.Hour
	// DefaultAdminGroup is access.admin_group's default.
	DefaultAdminGroup = "admins"
)

// Options build a Console.
type Options struct {
	// Issuer is the provider's issuer URL; the console lives at
	// {issuer}/admin.
	Issuer string
	// Prefix is the issuer's path without a trailing slash ("" at the
	// root); derived from Issuer when empty.
	Prefix    string
	Directory *directory.Directory
	// Store keeps the console's sessions and pending sign-ins.
	Store store.Store
	// Provider is the bridge's OpenID Provider: the console redeems its
	// codes through Provider.HandleToken. Its Clients must include
	// ClientConfig(Issuer).
	Provider *oidc.Provider
	// Keys verify the ID token (default: Provider.Signer).
	Keys Verifier
	// AdminGroup is the directory group whose active members may use the
	// console (default DefaultAdminGroup).
	AdminGroup string
	Core       Core
	Logger     *slog.Logger
	Now        func() time.Time
	// Secure marks the cookies Secure; always on when Issuer is https.
	Secure bool
	// Applications are offered as an invitation's landing application.
	Applications []Application
	// PersonForSubject maps the sub of the console's ID token to a person
	// id. Default: the sub is the person id (subject: person, or a core
	// that issues the person id to this client).
	PersonForSubject func(ctx context.Context, sub string) (string, error)
	// Session lifetimes (defaults DefaultSessionIdleTTL,
	// DefaultSessionAbsoluteTTL).
	SessionIdleTTL, SessionAbsoluteTTL time.Duration
	// Location is the time zone pages show times in (default time.Local).
	Location *time.Location
	// SignInMiddleware runs before the sign-in route, the one route that
	// stores something for an anonymous request (the pending sign-in, ten
	// minutes): give it the bridge's per-address authorize limiter.
	SignInMiddleware []echo.MiddlewareFunc
	// Organization is shown at the top of every page (ui.organization);
	// default: the issuer's host name.
	Organization string
	// LogoDataURL is the organisation's logo as a data:image/png or
	// data:image/jpeg base64 URL (ui.logo); "" for none.
	LogoDataURL string
}

// Console is the administration console. Mount it on the bridge's router.
type Console struct {
	issuer       string
	base         string // the console's path: {prefix}/admin
	dir          *directory.Directory
	store        store.Store
	provider     *oidc.Provider
	keys         Verifier
	adminGroup   string
	core         Core
	log          *slog.Logger
	now          func() time.Time
	secure       bool
	apps         []Application
	personForSub func(ctx context.Context, sub string) (string, error)
	idleTTL      time.Duration
	absoluteTTL  time.Duration
	loc          *time.Location
	signinMW     []echo.MiddlewareFunc
	org          string
	logo         template.URL
}

// New checks the options and builds a Console.
func New(o Options) (*Console, error) {
	switch {
	case o.Issuer == "":
		return nil, errors.New("admin: the issuer is required")
	case o.Directory == nil || o.Store == nil || o.Provider == nil || o.Core == nil:
		return nil, errors.New("admin: a directory, a store, the provider and the login core are required")
	}
	iss, err := url.Parse(o.Issuer)
	if err != nil || iss.Host == "" || (iss.Scheme != "https" && iss.Scheme != "http") {
		return nil, fmt.Errorf("admin: issuer %q is not an absolute http(s) URL", o.Issuer)
	}
	if o.Provider.Issuer != o.Issuer {
		return nil, fmt.Errorf("admin: the provider's issuer %q is not the console's %q", o.Provider.Issuer, o.Issuer)
	}
	if cl := o.Provider.Clients.Lookup(ClientID); cl == nil || !cl.HasRedirectURI(redirectURI(o.Issuer)) {
		return nil, fmt.Errorf("admin: the provider has no client %q with redirect URI %s: register admin.ClientConfig(issuer)", ClientID, redirectURI(o.Issuer))
	}
	if l := o.LogoDataURL; l != "" && !strings.HasPrefix(l, "data:image/png;base64,") && !strings.HasPrefix(l, "data:image/jpeg;base64,") {
		return nil, errors.New("admin: the logo must be a data:image/png or data:image/jpeg base64 URL")
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = strings.TrimSuffix(iss.EscapedPath(), "/")
	}
	c := &Console{
		issuer: o.Issuer, base: prefix + "/admin", dir: o.Directory, store: o.Store, provider: o.Provider,
		keys: o.Keys, adminGroup: o.AdminGroup, core: o.Core, log: o.Logger, now: o.Now,
		secure: o.Secure || iss.Scheme == "https", apps: o.Applications, personForSub: o.PersonForSubject,
		idleTTL: o.SessionIdleTTL, absoluteTTL: o.SessionAbsoluteTTL, loc: o.Location,
		signinMW: o.SignInMiddleware,
		// Checked above: a PNG or JPEG data URL, safe in an img src.
		org: o.Organization, logo: template.URL(o.LogoDataURL),
	}
	if c.org == "" {
		c.org = iss.Hostname()
	}
	if c.keys == nil {
		if o.Provider.Signer == nil {
			return nil, errors.New("admin: keys to verify the ID token are required (the provider has no signer)")
		}
		c.keys = o.Provider.Signer
	}
	if c.adminGroup == "" {
		c.adminGroup = DefaultAdminGroup
	}
	if c.log == nil {
		c.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.personForSub == nil {
		c.personForSub = func(_ context.Context, sub string) (string, error) { return sub, nil }
	}
	if c.idleTTL <= 0 {
		c.idleTTL = DefaultSessionIdleTTL
	}
	if c.absoluteTTL <= 0 {
		c.absoluteTTL = DefaultSessionAbsoluteTTL
	}
	if c.loc == nil {
		c.loc = time.Local
	}
	return c, nil
}

// providerLogoutPath is the bridge's RP-initiated logout (bridge.PathLogout;
// the console does not import the bridge).
const providerLogoutPath = "/logout"

// Paths under {prefix}/admin.
const (
	PathSignIn   = "/signin"
	PathCallback = "/callback"
)

// Mount registers the console's routes on e. Sign-in and its callback are
// the only routes outside the guarded group.
func (c *Console) Mount(e *echo.Echo) {
	e.GET(c.base+PathSignIn, c.handleSignIn, append([]echo.MiddlewareFunc{c.headers}, c.signinMW...)...)
	e.GET(c.base+PathCallback, c.handleCallback, c.headers)

	// Every other route is in this group: guard runs before each of them
	// (and before the group's not-found answer), by construction.
	g := e.Group(c.base, c.headers, c.guard)
	g.GET("", c.handleHome)
	g.GET("/", c.handleHome)
	g.GET("/reauth", c.handleReauth)
	g.POST("/signout", c.handleSignOut)

	g.GET("/pending", c.handlePending)
	g.POST("/pending/:id/approve", c.handleApprove)
	g.POST("/pending/:id/deny", c.handleDeny)

	g.GET("/people", c.handlePeople)
	g.GET("/people/:id", c.handlePerson)
	g.POST("/people/:id/groups", c.handleGroups)
	g.POST("/people/:id/disable", c.handleDisable)
	g.POST("/people/:id/enable", c.handleEnable)
	g.POST("/people/:id/remove", c.handleRemove)
	g.POST("/people/:id/sessions/revoke", c.handleRevokeSession)
	g.POST("/people/:id/grants/revoke", c.handleRevokeGrant)

	g.GET("/invitations", c.handleInvitations)
	g.POST("/invitations", c.handleCreateInvitation)
	g.POST("/invitations/:id/revoke", c.handleRevokeInvitation)

	g.GET("/audit", c.handleAudit)
}

// url is an absolute path of the console.
func (c *Console) url(path string) string { return c.base + path }
