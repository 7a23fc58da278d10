package bridge

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/wechat-oidc/wechat-oidc/admin"
	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/metrics"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// Signer is what the server needs of the signing keys: a keys.Set, or a
// keys.Keyring that rotates them.
type Signer interface {
	oidc.Signer
	SignWithType(payload []byte, typ string) (string, error)
	JWKS() jose.JSONWebKeySet
	KeyID() string
}

var (
	_ Signer = (*keys.Set)(nil)
	_ Signer = (*keys.Keyring)(nil)
)

// Deps are the parts a Server is built from; cmd wires them.
type Deps struct {
	Store     store.Store
	Directory *directory.Directory
	// SignIns and Audit, when set, replace the directory's people and
	// audit on the sign-in path and at every token use (see SignInPeople);
	// nil: the Directory's own. Only the load command's baseline sets them.
	SignIns   SignInPeople
	Audit     AuditLog
	Keys      Signer
	Connector connector.Connector
	Logger    *slog.Logger
	Now       func() time.Time
	// Metrics records sign-ins, tokens, rate-limit refusals and gauges;
	// nil records nothing.
	Metrics *metrics.Metrics
	// DevLinks shows dev-mode helpers on pages (e.g. the QR code's link, to
	// play the phone in another window). Never in production.
	DevLinks bool
}

// Server is the wechat-oidc HTTP server: routes, pages and the
// provider-neutral login core.
type Server struct {
	opt      *config.Options
	store    store.Store
	dir      *directory.Directory
	people   SignInPeople // the sign-in path's view of dir
	auditLog AuditLog
	keys     Signer
	conn     connector.Connector
	log      *slog.Logger
	provider *oidc.Provider
	echo     *echo.Echo
	prefix   string // issuer path without trailing slash
	secure   bool   // issuer is https: cookies are Secure
	origin   string // the issuer's origin (scheme://host[:port])
	now      func() time.Time
	devLinks bool

	clients      map[string]*config.Client
	callbackWait time.Duration // how long a duplicate callback waits for the first
	bc           backchannel
	// tokenLimit: requests of authenticated clients; tokenFailures: failed
	// client authentications per (client, network). Both per replica (see
	// limitToken). authLimit and logoutLimit are shared across replicas
	// when the store can share them (newLimiter).
	tokenLimit    *rateLimiter
	tokenFailures *rateLimiter
	authLimit     Limiter
	logoutLimit   Limiter
	corsOrigins   map[string]bool
	metrics       *metrics.Metrics
	ready         readiness

	macMu       sync.Mutex
	macKeyCache []byte // see macKey
}

// New builds a server from validated options.
func New(opt *config.Options, d Deps) (*Server, error) {
	if d.Store == nil || d.Keys == nil || d.Connector == nil || d.Directory == nil {
		return nil, errors.New("bridge: a store, a directory, keys and a connector are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	// Every line logged while serving a request carries its request id,
	// the reference our error pages show.
	d.Logger = slog.New(requestIDHandler{d.Logger.Handler()})
	if d.Now == nil {
		d.Now = time.Now
	}
	iss, err := url.Parse(opt.Issuer)
	if err != nil {
		return nil, fmt.Errorf("bridge: issuer: %w", err)
	}
	if d.SignIns == nil {
		d.SignIns = d.Directory.People()
	}
	if d.Audit == nil {
		d.Audit = d.Directory.Audit()
	}
	// The admin console is a client of the core like any other, open only
	// to the admin group (the console checks it again on every request).
	withAdmin := *opt
	adminClient := admin.ClientConfig(opt.Issuer)
	adminClient.AllowedGroups = []string{opt.Access.AdminGroup}
	withAdmin.Clients = append(slices.Clone(opt.Clients), adminClient)
	opt = &withAdmin
	s := &Server{
		opt:      opt,
		store:    d.Store,
		dir:      d.Directory,
		people:   d.SignIns,
		auditLog: d.Audit,
		keys:     d.Keys,
		conn:     d.Connector,
		log:      d.Logger,
		prefix:   strings.TrimSuffix(iss.EscapedPath(), "/"),
		secure:   iss.Scheme == "https",
		origin:   origin(iss),
		now:      d.Now,
		devLinks: d.DevLinks,

		clients:       map[string]*config.Client{},
		callbackWait:  10 * time.Second,
		bc:            newBackchannel(d.Logger),
		tokenLimit:    newRateLimiter(opt.Limits.TokenPerClient.Rate, opt.Limits.TokenPerClient.Burst, d.Now),
		tokenFailures: newRateLimiter(opt.Limits.TokenAuthFailures.Rate, opt.Limits.TokenAuthFailures.Burst, d.Now),
		corsOrigins:   map[string]bool{},
		metrics:       d.Metrics,
	}
	if b, ok := d.Connector.(connector.CallbackBound); ok {
		s.callbackWait = b.MaxCallbackDuration()
	}
	for i := range opt.Clients {
		cc := &opt.Clients[i]
		s.clients[cc.ID] = cc
		for _, o := range cc.AllowedOrigins {
			s.corsOrigins[o] = true
		}
	}
	s.authLimit = s.newLimiter("authorize_per_ip", opt.Limits.AuthorizePerIP.Rate, opt.Limits.AuthorizePerIP.Burst)
	s.logoutLimit = s.newLimiter("logout_per_ip", opt.Limits.LogoutPerIP.Rate, opt.Limits.LogoutPerIP.Burst)
	s.provider = s.newProvider()
	s.echo = s.routes()
	s.registerGauges()
	if err := s.mountConsole(); err != nil {
		return nil, err
	}
	// Without its directory the bridge admits nobody: not ready.
	s.AddReadyCheck("directory", s.dir.Ping)
	return s, nil
}

// mountConsole puts the admin console at {issuer}/admin.
func (s *Server) mountConsole() error {
	var apps []admin.Application
	for _, cc := range s.opt.Clients {
		if cc.ID != admin.ClientID {
			apps = append(apps, admin.Application{ID: cc.ID, Name: s.clientName(cc.ID)})
		}
	}
	console, err := admin.New(admin.Options{
		Issuer: s.opt.Issuer, Prefix: s.prefix, Directory: s.dir, Store: s.store, Provider: s.provider,
		AdminGroup: s.opt.Access.AdminGroup, Core: s, Logger: s.log, Now: s.now, Secure: s.secure,
		Applications: apps, PersonForSubject: s.PersonForSubject,
		SignInMiddleware: []echo.MiddlewareFunc{s.limitAuthorize},
		Organization:     s.opt.UI.Organization, LogoDataURL: s.opt.UI.LogoDataURL,
	})
	if err != nil {
		return fmt.Errorf("bridge: admin console: %w", err)
	}
	console.Mount(s.echo)
	return nil
}

// newProvider is the OpenID Provider over the registered clients, with the
// connector's extras (its scopes, its authorize parameters, its code
// exchange).
func (s *Server) newProvider() *oidc.Provider {
	opt := s.opt
	exchanger, _ := s.conn.(connector.CodeExchanger)
	if exchanger != nil && !exchanger.ExchangeEnabled() {
		exchanger = nil
	}
	var clients []*oidc.Client
	for _, cc := range opt.Clients {
		c := oidc.NewClient(cc.ID, cc.Secret, cc.RedirectURIs)
		if cc.SecretHash != nil {
			c.SetSecretHash(*cc.SecretHash)
		}
		c.Name = cc.Name
		if cc.AuthMethod != "" {
			c.AuthMethods = []string{cc.AuthMethod}
		}
		c.RequirePKCE = cc.RequirePKCE
		c.AllowPlainPKCE = cc.AllowPlainPKCE
		c.LoopbackAnyPort = cc.LoopbackAnyPort
		c.RefreshTokens = cc.RefreshTokens
		c.AllowTokenExchange = exchanger != nil && exchanger.AllowsClient(cc.ID)
		c.IDTokenSignedResponseAlg = cc.IDTokenAlg
		clients = append(clients, c)
	}
	p := &oidc.Provider{
		Issuer:                  opt.Issuer,
		Clients:                 oidc.NewRegistry(clients...),
		Storage:                 oidcStorage{s.store},
		Signer:                  s.keys,
		ScopeClaims:             scopeClaims(s.conn),
		CodeTTL:                 opt.Tokens.CodeTTL,
		AccessTokenTTL:          opt.Tokens.AccessTokenTTL,
		IDTokenTTL:              opt.Tokens.IDTokenTTL,
		RefreshTokenIdleTTL:     opt.Tokens.RefreshIdleTTL,
		RefreshTokenAbsoluteTTL: opt.Tokens.RefreshAbsoluteTTL,
		RefreshReuseGrace:       opt.Tokens.RefreshReuseGrace,
		Now:                     s.now,
		Logger:                  s.log,
		AccountCheck:            s.accountCheck,
		OnClientAuthFailure:     s.clientAuthFailed,
		OnClientAuthSuccess:     s.clientAuthSucceeded,
	}
	if s.metrics != nil {
		p.OnTokenResponse = s.metrics.TokenResponse
	}
	if pa, ok := s.conn.(connector.ParamAccepter); ok {
		p.ExtraAuthorizeParams = pa.AuthorizeParams()
	}
	if exchanger != nil {
		p.TokenExchangers = map[string]oidc.TokenExchanger{exchanger.TokenType(): s.codeExchanger(exchanger)}
	}
	return p
}

// Echo returns the router, for mounting extra routes (dev mode).
func (s *Server) Echo() *echo.Echo { return s.echo }

// Provider returns the OpenID Provider (tests, dev mode).
func (s *Server) Provider() *oidc.Provider { return s.provider }

// ServeHTTP serves every route.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func (s *Server) url(path string) string { return s.provider.URL(path) }

func (s *Server) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	// Only believe X-Forwarded-For from configured proxies: a forged header
	// must not move a client to another rate-limit bucket.
	e.IPExtractor = echo.ExtractIPDirect()
	if len(s.opt.TrustedProxies) > 0 {
		var opts []echo.TrustOption
		for _, n := range s.opt.TrustedProxies {
			opts = append(opts, echo.TrustIPRange(n))
		}
		opts = append(opts, echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false))
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	}
	e.HTTPErrorHandler = s.httpError
	e.Use(
		// The request id and the one log line per request come first, so a
		// recovered panic is logged with its request id.
		s.requestLog,
		s.directoryBudget,
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			DisablePrintStack: true,
			LogErrorFunc: func(c echo.Context, err error, _ []byte) error {
				s.log.ErrorContext(c.Request().Context(), "panic while serving a request", "panic", err.Error(), "path", c.Request().URL.Path)
				return echo.NewHTTPError(http.StatusInternalServerError)
			},
		}),
		// (No Echo BodyLimit: the handlers read at most oidc.MaxParamsBytes
		// and answer a larger body with invalid_request on our page, where
		// BodyLimit would give a bare 413.)
		// No page of ours may be framed (clickjacking), sniffed, or leak its
		// URL (codes, state) in a Referer. Handlers may tighten the CSP.
		middleware.SecureWithConfig(middleware.SecureConfig{
			XFrameOptions:         "DENY",
			ContentTypeNosniff:    "nosniff",
			ReferrerPolicy:        "no-referrer",
			ContentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		}),
	)

	wrap := func(h http.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { h(c.Response(), c.Request()); return nil }
	}
	p := s.prefix
	cors := s.cors
	e.GET(p+oidc.PathDiscovery, s.handleDiscovery, cors)
	e.GET(p+oidc.PathJWKS, s.handleJWKS, cors)
	e.GET(p+oidc.PathAuthorize, s.handleAuthorize, s.limitAuthorize)
	e.POST(p+oidc.PathAuthorize, s.handleAuthorize, s.limitAuthorize)
	e.GET(p+connector.CallbackPath, s.handleCallback)
	e.GET(p+PathQR, s.handleQR)
	e.GET(p+PathQRScan, s.handleQRScan, s.limitAuthorize)
	e.POST(p+PathQRConfirm, s.handleQRConfirm)
	e.POST(p+oidc.PathToken, wrap(s.provider.HandleToken), cors, s.limitToken)
	e.GET(p+oidc.PathUserinfo, wrap(s.provider.HandleUserinfo), cors)
	e.POST(p+oidc.PathUserinfo, wrap(s.provider.HandleUserinfo), cors)
	e.POST(p+oidc.PathRevoke, wrap(s.provider.HandleRevoke), cors, s.limitToken)
	e.POST(p+oidc.PathIntrospect, wrap(s.provider.HandleIntrospect), s.limitToken)
	e.GET(p+PathLogout, s.handleLogout, s.limitLogout)
	e.POST(p+PathLogout, s.handleLogout, s.limitLogout)
	e.GET(p+PathWaiting, s.handleWaiting)
	e.GET(p+PathInvite+":token", s.handleInvite, s.limitAuthorize)
	e.GET(p+PathReturn, s.handleReturn)
	e.GET(p+PathHealthz, s.handleHealthz)
	e.GET(p+PathReadyz, s.handleReadyz)
	if len(s.opt.WeChat.VerifyFiles) > 0 {
		// WeChat fetches https://<domain>/MP_verify_<x>.txt before it
		// accepts the domain (validated: only when the issuer is at the root).
		e.GET("/:file", s.handleVerifyFile)
	}
	for _, path := range []string{oidc.PathDiscovery, oidc.PathJWKS, oidc.PathToken, oidc.PathUserinfo, oidc.PathRevoke} {
		e.OPTIONS(p+path, s.preflight)
	}
	return e
}

// origin is the origin of u as a browser sends it in an Origin header
// (RFC 6454 §6.2): lower-case scheme and host, the port only if not the
// scheme's default.
func origin(u *url.URL) string {
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// handleDiscovery serves the provider metadata plus what the bridge adds
// (logout). Every URL derives from the issuer.
func (s *Server) handleDiscovery(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.discovery())
}

// discoveryDocument is oidc's metadata with the bridge's endpoints.
type discoveryDocument struct {
	*oidc.Discovery
	EndSessionEndpoint                string `json:"end_session_endpoint"`
	BackchannelLogoutSupported        bool   `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool   `json:"backchannel_logout_session_supported"`
	FrontchannelLogoutSupported       bool   `json:"frontchannel_logout_supported"`
}

func (s *Server) discovery() discoveryDocument {
	return discoveryDocument{
		Discovery:                         s.provider.Discovery(),
		EndSessionEndpoint:                s.url(PathLogout),
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
		FrontchannelLogoutSupported:       false,
	}
}

func (s *Server) handleJWKS(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSON(http.StatusOK, s.keys.JWKS())
}

// httpError renders echo's own errors (404, 405, ...) without leaking details.
func (s *Server) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
	} else {
		s.log.ErrorContext(c.Request().Context(), "unhandled error", "error", err)
	}
	s.renderPage(c, code, httpErrorPage(code))
}

// httpErrorPage is the page of an HTTP error, in both languages.
func httpErrorPage(code int) page {
	p := page{
		Name:    "http-" + strconv.Itoa(code),
		Title:   "无法处理这个请求 · " + http.StatusText(code),
		Heading: "无法处理这个请求",
		Message: "请回到原来的应用重新开始。",
		Detail:  http.StatusText(code) + ": go back to the application and start again.",
		Icon:    "warn",
	}
	switch {
	case code == http.StatusNotFound:
		p.Title = "页面不存在 · Page not found"
		p.Heading = "页面不存在"
		p.Message = "请检查链接是否完整、正确。"
		p.Detail = "Page not found. Check that the address is complete and correct."
	case code == http.StatusMethodNotAllowed:
		p.Title = "不支持这种访问方式 · Method not allowed"
		p.Heading = "不支持这种访问方式"
		p.Message = "这个地址不能这样打开。请回到原来的应用重新开始。"
		p.Detail = "This address cannot be opened this way. Go back to the application and start again."
	case code >= 500:
		p.Title = "服务出现问题 · Something went wrong"
		p.Heading = "服务出现问题"
		p.Message = "请稍后重试。如果问题持续，请联系管理员并告诉他页面底部的请求编号。"
		p.Detail = "Something went wrong on our side. Try again shortly; if it persists, give an administrator the request id at the bottom of this page."
	}
	return p
}

type ctxKey int

const requestIDKey ctxKey = iota

// requestLog writes one line per request with a request id. The query is
// never logged: it carries codes and state. (Echo's RequestID middleware
// would take any X-Request-Id as given; ours accepts only a short token of
// safe characters, so a client cannot write into our log lines.)
// directoryBudget gives each request a sign-in budget for the directory
// (directory.sign_in_timeout): the sign-in path's directory calls
// (directory.Bound at each) wait that long in total, not a held lock's or a
// silent database's time. Requests that make no bounded call (the admin
// console's) are not affected.
func (s *Server) directoryBudget(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(directory.WithSignInBudget(r.Context(), s.signInTimeout())))
		return next(c)
	}
}

// signInTimeout is directory.sign_in_timeout (its default for Options not
// made by config).
func (s *Server) signInTimeout() time.Duration {
	if t := s.opt.Directory.SignInTimeout; t > 0 {
		return t
	}
	return config.DefaultDirectorySignInTimeout
}

func (s *Server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := c.Request().Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = randomID(12)
		}
		c.Response().Header().Set("X-Request-Id", id)
		ctx := context.WithValue(c.Request().Context(), requestIDKey, id)
		c.SetRequest(c.Request().WithContext(ctx))
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		s.log.InfoContext(ctx, "request",
			"method", c.Request().Method,
			"path", c.Request().URL.Path,
			"status", c.Response().Status,
			"duration_ms", time.Since(start).Milliseconds(),
			"remote", c.RealIP())
		return nil
	}
}

// requestIDHandler adds the request id of a line's context (requestLog's)
// to the line.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := requestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r == '-' || r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')) {
			return false
		}
	}
	return true
}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// randomID returns n random characters of [A-Za-z0-9] (WeChat's state
// alphabet), without modulo bias. crypto/rand.Read never fails (Go 1.24+).
func randomID(n int) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/8+1)
	for len(out) < n {
		rand.Read(buf)
		for _, v := range buf {
			// 256 = 4*62 + 8: the top 8 values would bias the modulo.
			if v < 248 && len(out) < n {
				out = append(out, alphabet[v%62])
			}
		}
	}
	return string(out)
}

// randomToken is a fresh opaque token (cookies, confirmations): oidc's.
func randomToken() string { return oidc.NewToken() }

// handleVerifyFile serves a configured WeChat domain-verification file.
func (s *Server) handleVerifyFile(c echo.Context) error {
	content, ok := s.opt.WeChat.VerifyFiles[c.Param("file")]
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound)
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.String(http.StatusOK, content)
}
