package config

import (
	"encoding/hex"
	"net"
	"time"
)

// Options is the configuration the program runs with: defaults applied,
// validated, and in the types the code uses (durations, parsed networks,
// resolved flags). Nothing outside this package sees the YAML shapes.
type Options struct {
	Issuer  string
	Listen  string
	Subject string
	WeChat  WeChat
	Clients []Client
	Store   Store
	Keys    Keys
	Tokens  Tokens
	Login   Login
	Session Session
	Limits  Limits
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	Directory      Directory
	Access         Access
	Audit          Audit
	Log            Log
}

// WeChat is the WeChat connector's configuration.
type WeChat struct {
	OfficialAccount *WeChatApp // always set
	WebsiteApp      *WeChatApp // nil: no website app (qrconnect)
	MiniProgram     *WeChatApp // nil: no mini-program token exchange
	OpenBaseURL     string
	APIBaseURL      string
	Timeout         time.Duration
	// UserinfoRetryDeadline bounds the retries of /sns/userinfo.
	UserinfoRetryDeadline time.Duration
	AvatarSize            int
	QRTicketTTL           time.Duration
	SnapshotForcePopup    bool
	// VerifyFiles: WeChat's domain-verification files, name → content.
	VerifyFiles map[string]string
}

// WeChatApp is one WeChat app's credentials; Scope is the Official
// Account's scope mode (snsapi_userinfo, snsapi_base, silent_first).
type WeChatApp struct {
	AppID, AppSecret, Scope string
}

// Client is one registered relying party.
type Client struct {
	ID, Name string
	// Secret is the plain secret, or "" when SecretHash is set.
	Secret     string
	SecretHash *[32]byte
	// AuthMethod is token_endpoint_auth_method ("" means basic or post).
	AuthMethod             string
	RedirectURIs           []string
	RequirePKCE            bool
	AllowPlainPKCE         bool
	LoopbackAnyPort        bool
	RefreshTokens          bool
	PostLogoutRedirectURIs []string
	BackchannelLogoutURI   string
	AllowedOrigins         []string
	// Upstream settings for this client (WeChat connector).
	ForcePopup  bool
	WeChatFlow  string
	MiniProgram bool
	Claims      ClaimTemplates
	// AllowedGroups: only members of one of them may sign in (empty: anyone admitted).
	AllowedGroups    []string
	InitiateLoginURI string
}

// ClaimTemplates are the per-client claim templates (see File).
type ClaimTemplates struct {
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
}

type Store struct {
	Type  string // memory, redis
	Redis Redis
}

type Redis struct {
	Addr, Username, Password string
	DB                       int
	Prefix                   string
}

type Keys struct {
	Dir              string
	PublishBeforeUse time.Duration
}

type Tokens struct {
	CodeTTL, AccessTokenTTL, IDTokenTTL                   time.Duration
	RefreshIdleTTL, RefreshAbsoluteTTL, RefreshReuseGrace time.Duration
}

type Login struct {
	PendingTTL time.Duration
}

type Session struct {
	IdleTTL, AbsoluteTTL time.Duration
}

type Limits struct {
	TokenPerClient, AuthorizePerIP Rate
}

// Rate is a token bucket: Rate per second on average, bursts of Burst.
type Rate struct {
	Rate  float64
	Burst int
}

// Directory is where the people directory lives.
type Directory struct {
	Type, Path, URL string
}

// Access decides who may sign in.
type Access struct {
	Mode       string // AccessOpen, AccessApproval, AccessInvite
	AdminGroup string
	PendingTTL time.Duration
}

type Audit struct {
	Retention time.Duration
}

type Log struct {
	Level, Format string
}

// Resolve applies the defaults to f, validates it and returns its Options.
func (c *File) Resolve() (*Options, error) {
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c.Options(), nil
}

// Options converts a validated File (Parse or Resolve) into Options.
func (c *File) Options() *Options {
	o := &Options{
		Issuer:  c.Issuer,
		Listen:  c.Listen,
		Subject: c.Subject,
		WeChat: WeChat{
			OfficialAccount:       app(c.WeChat.OfficialAccount),
			WebsiteApp:            app(c.WeChat.WebsiteApp),
			MiniProgram:           app(c.WeChat.MiniProgram),
			OpenBaseURL:           c.WeChat.OpenBaseURL,
			APIBaseURL:            c.WeChat.APIBaseURL,
			Timeout:               c.WeChat.Timeout.D(),
			UserinfoRetryDeadline: c.WeChat.UserinfoRetryDeadline.D(),
			AvatarSize:            *c.WeChat.AvatarSize,
			QRTicketTTL:           c.WeChat.QRTicketTTL.D(),
			SnapshotForcePopup:    *c.WeChat.SnapshotForcePopup,
			VerifyFiles:           c.WeChat.VerifyFiles,
		},
		Store: Store{Type: c.Store.Type, Redis: Redis{Addr: c.Store.Redis.Addr, Username: c.Store.Redis.Username,
			Password: c.Store.Redis.Password, DB: c.Store.Redis.DB, Prefix: c.Store.Redis.Prefix}},
		Keys: Keys{Dir: c.Keys.Dir, PublishBeforeUse: c.Keys.PublishBeforeUse.D()},
		Tokens: Tokens{
			CodeTTL: c.Tokens.CodeTTL.D(), AccessTokenTTL: c.Tokens.AccessTokenTTL.D(), IDTokenTTL: c.Tokens.IDTokenTTL.D(),
			RefreshIdleTTL: c.Tokens.RefreshIdleTTL.D(), RefreshAbsoluteTTL: c.Tokens.RefreshAbsoluteTTL.D(),
			RefreshReuseGrace: c.Tokens.RefreshReuseGrace.D(),
		},
		Login:   Login{PendingTTL: c.Login.PendingTTL.D()},
		Session: Session{IdleTTL: c.Session.IdleTTL.D(), AbsoluteTTL: c.Session.AbsoluteTTL.D()},
		Limits: Limits{
			TokenPerClient: Rate(c.Limits.TokenPerClient),
			AuthorizePerIP: Rate(c.Limits.AuthorizePerIP),
		},
		Directory: Directory{Type: c.Directory.Type, Path: c.Directory.Path, URL: c.Directory.URL},
		Access:    Access{Mode: c.Access.Mode, AdminGroup: c.Access.AdminGroup, PendingTTL: c.Access.PendingTTL.D()},
		Audit:     Audit{Retention: c.Audit.Retention.D()},
		Log:       Log{Level: c.Log.Level, Format: c.Log.Format},
	}
	for _, p := range c.TrustedProxies {
		if _, n, err := net.ParseCIDR(p); err == nil { // validated
			o.TrustedProxies = append(o.TrustedProxies, n)
		}
	}
	for _, cc := range c.Clients {
		o.Clients = append(o.Clients, client(cc))
	}
	return o
}

func app(a *WeChatAppConfig) *WeChatApp {
	if a == nil {
		return nil
	}
	return &WeChatApp{AppID: a.AppID, AppSecret: a.AppSecret, Scope: a.Scope}
}

func client(cc ClientConfig) Client {
	cl := Client{
		ID: cc.ID, Name: cc.Name, Secret: cc.Secret, AuthMethod: cc.TokenEndpointAuthMethod,
		RedirectURIs: cc.RedirectURIs, RequirePKCE: cc.RequirePKCE, AllowPlainPKCE: cc.AllowPlainPKCE,
		LoopbackAnyPort: cc.LoopbackAnyPort, RefreshTokens: cc.RefreshTokens,
		PostLogoutRedirectURIs: cc.PostLogoutRedirectURIs, BackchannelLogoutURI: cc.BackchannelLogoutURI,
		AllowedOrigins: cc.AllowedOrigins, ForcePopup: cc.ForcePopup, WeChatFlow: cc.WeChatFlow, MiniProgram: cc.MiniProgram,
		AllowedGroups: cc.AllowedGroups, InitiateLoginURI: cc.InitiateLoginURI,
		Claims: ClaimTemplates{Email: cc.Claims.Email, EmailVerified: cc.Claims.EmailVerified,
			GivenName: cc.Claims.GivenName, FamilyName: cc.Claims.FamilyName},
	}
	if cc.SecretSHA256 != "" {
		var h [32]byte
		if _, err := hex.Decode(h[:], []byte(cc.SecretSHA256)); err == nil { // validated: 64 hex digits
			cl.SecretHash = &h
		}
	}
	return cl
}
