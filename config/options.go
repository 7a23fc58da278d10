package config

import (
	"encoding/hex"
	"net"
	"slices"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
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
	Metrics        Metrics
	Shutdown       Shutdown
	// UI is what every page shows of the organisation.
	UI UI
}

// Metrics: Listen is the metrics listener's host:port; empty: none.
type Metrics struct {
	Listen string
}

// Shutdown says how a stopping process drains (see ShutdownConfig).
type Shutdown struct {
	DrainDelay, Timeout time.Duration
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
	// CrossDevice allows cross-device QR sign-in in this deployment.
	CrossDevice bool
	// CrossDeviceSSO gives the desktop an SSO session after a cross-device sign-in.
	CrossDeviceSSO bool
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
	// CrossDevice: this client may use cross-device QR sign-in (the
	// deployment's switch and the client's, resolved).
	CrossDevice bool
	Claims      ClaimTemplates
	// AllowedGroups: only members of one of them may sign in (empty: anyone admitted).
	AllowedGroups    []string
	InitiateLoginURI string
	// IDTokenAlg is id_token_signed_response_alg; "" means keys' default.
	IDTokenAlg string
}

// ClaimTemplates are the per-client claim templates (see File).
type ClaimTemplates struct {
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
}

type Store struct {
	Type string // memory, redis
	// MemoryMaxEntries bounds the memory store's entries.
	MemoryMaxEntries int
	Redis            Redis
	// SnapshotFile keeps the memory store across a graceful restart; "": none.
	SnapshotFile string
}

type Redis struct {
	URL, CAFile string
	Sentinel    *Sentinel // nil: no Sentinel
	Prefix      string
}

type Sentinel struct {
	Master   string
	Addrs    []string
	Password string
}

// Keys says where the signing keys live and how they rotate.
type Keys struct {
	// Dir is the key directory; "" means the shared store (Shared).
	Dir string
	// Shared: the keys live in the shared store (Redis), sealed with
	// EncryptionKey (32 bytes).
	Shared        bool
	EncryptionKey []byte
	// Algorithms to sign with: keys.algorithm first, then every other one
	// a client's id_token_signed_response_alg names.
	Algorithms       []string
	PublishBeforeUse time.Duration
	// RotateEvery: 0 means no automatic rotation.
	RotateEvery time.Duration
	// RetainAfterRetire: how long a retired key stays published, the
	// longest lifetime of a token it signed (ID tokens; access tokens are
	// opaque, but their lifetime is counted too in case a deployment turns
	// them into JWTs later).
	RetainAfterRetire time.Duration
}

type Tokens struct {
	CodeTTL, AccessTokenTTL, IDTokenTTL                   time.Duration
	RefreshIdleTTL, RefreshAbsoluteTTL, RefreshReuseGrace time.Duration
}

type Login struct {
	PendingTTL time.Duration
	// MaxPendingPerIP and MaxPending cap the sign-ins started and not
	// finished, per client network and in total.
	MaxPendingPerIP, MaxPending int
}

type Session struct {
	IdleTTL, AbsoluteTTL time.Duration
}

type Limits struct {
	TokenPerClient, TokenAuthFailures, AuthorizePerIP, LogoutPerIP Rate
}

// Rate is a token bucket: Rate per second on average, bursts of Burst.
type Rate struct {
	Rate  float64
	Burst int
}

// Directory is where the people directory lives.
type Directory struct {
	Type, Path, URL string
	// SignInTimeout bounds a sign-in's directory calls, together.
	SignInTimeout time.Duration
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
			CrossDevice:           *c.WeChat.CrossDevice,
			CrossDeviceSSO:        c.WeChat.CrossDeviceSSO,
		},
		Store: c.storeOptions(),
		Keys:  c.keysOptions(),
		Tokens: Tokens{
			CodeTTL: c.Tokens.CodeTTL.D(), AccessTokenTTL: c.Tokens.AccessTokenTTL.D(), IDTokenTTL: c.Tokens.IDTokenTTL.D(),
			RefreshIdleTTL: c.Tokens.RefreshIdleTTL.D(), RefreshAbsoluteTTL: c.Tokens.RefreshAbsoluteTTL.D(),
			RefreshReuseGrace: c.Tokens.RefreshReuseGrace.D(),
		},
		Login:   Login{PendingTTL: c.Login.PendingTTL.D(), MaxPendingPerIP: c.Login.MaxPendingPerIP, MaxPending: c.Login.MaxPending},
		Session: Session{IdleTTL: c.Session.IdleTTL.D(), AbsoluteTTL: c.Session.AbsoluteTTL.D()},
		Limits: Limits{
			TokenPerClient:    Rate(c.Limits.TokenPerClient),
			TokenAuthFailures: Rate(c.Limits.TokenAuthFailures),
			AuthorizePerIP:    Rate(c.Limits.AuthorizePerIP),
			LogoutPerIP:       Rate(c.Limits.LogoutPerIP),
		},
		Directory: Directory{Type: c.Directory.Type, Path: c.Directory.Path, URL: c.Directory.URL,
			SignInTimeout: c.Directory.SignInTimeout.D()},
		Access:   Access{Mode: c.Access.Mode, AdminGroup: c.Access.AdminGroup, PendingTTL: c.Access.PendingTTL.D()},
		Audit:    Audit{Retention: c.Audit.Retention.D()},
		Log:      Log{Level: c.Log.Level, Format: c.Log.Format},
		Metrics:  Metrics{Listen: c.Metrics.Listen},
		Shutdown: Shutdown{DrainDelay: c.Shutdown.DrainDelay.D(), Timeout: c.Shutdown.Timeout.D()},
		UI:       c.uiOptions(),
	}
	for _, p := range c.TrustedProxies {
		if _, n, err := net.ParseCIDR(p); err == nil { // validated
			o.TrustedProxies = append(o.TrustedProxies, n)
		}
	}
	for _, cc := range c.Clients {
		cl := client(cc)
		cl.CrossDevice = o.WeChat.CrossDevice && (cc.CrossDevice == nil || *cc.CrossDevice)
		o.Clients = append(o.Clients, cl)
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
		IDTokenAlg: cc.IDTokenSignedResponseAlg,
	}
	if cc.SecretSHA256 != "" {
		var h [32]byte
		if _, err := hex.Decode(h[:], []byte(cc.SecretSHA256)); err == nil { // validated: 64 hex digits
			cl.SecretHash = &h
		}
	}
	return cl
}

func (c *File) storeOptions() Store {
	r := c.Store.Redis
	st := Store{Type: c.Store.Type, SnapshotFile: c.Store.SnapshotFile, MemoryMaxEntries: c.Store.Memory.MaxEntries,
		Redis: Redis{URL: r.URL, CAFile: r.CAFile, Prefix: r.Prefix}}
	if s := r.Sentinel; s.set() {
		st.Redis.Sentinel = &Sentinel{Master: s.Master, Addrs: s.Addrs, Password: s.Password}
	}
	return st
}

func (c *File) keysOptions() Keys {
	k := Keys{
		Dir:               c.Keys.Dir,
		Shared:            c.Keys.Dir == "",
		Algorithms:        []string{c.Keys.Algorithm},
		PublishBeforeUse:  c.Keys.PublishBeforeUse.D(),
		RotateEvery:       c.Keys.RotateEvery.D(),
		RetainAfterRetire: max(c.Tokens.IDTokenTTL.D(), c.Tokens.AccessTokenTTL.D()),
	}
	if k.Shared {
		k.EncryptionKey, _ = keys.ParseEncryptionKey(c.Keys.EncryptionKey) // validated
	}
	for _, cl := range c.Clients {
		if a := cl.IDTokenSignedResponseAlg; a != "" && !slices.Contains(k.Algorithms, a) {
			k.Algorithms = append(k.Algorithms, a)
		}
	}
	return k
}
