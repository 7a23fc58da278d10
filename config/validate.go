package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
)

// Validate checks the whole configuration, section by section; each message
// names the key and the fix. Defaults must have been applied.
func (c *File) Validate() error {
	for _, check := range []func() error{
		c.validateTop, c.validateWeChat, c.validateClients, c.validateTokens,
		c.validateStore, c.validateKeys, c.validateSession, c.validateLimits,
		c.validateGroups, c.validateDirectory, c.validateAccess, c.validateTrustedProxies, c.validateLog, c.validateMetrics, c.validateShutdown,
		c.validateUI,
	} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *File) validateTop() error {
	if c.Issuer == "" {
		return errors.New("issuer is missing: set it to the public URL of this service, e.g. issuer: https://sso.example.com")
	}
	if err := validateIssuer(c.Issuer, c.privateNetworkHTTP); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q is not host:port (e.g. 0.0.0.0:8080)", c.Listen)
	}
	switch c.Subject {
	case SubjectUnionID, SubjectOpenID, SubjectPerson:
	default:
		return fmt.Errorf("subject %q is not supported: use person (the directory's stable id), unionid (one identity across all your WeChat apps) or openid", c.Subject)
	}
	return nil
}

func (c *File) validateWeChat() error {
	if err := c.validateVerifyFiles(); err != nil {
		return err
	}
	oa := c.WeChat.OfficialAccount
	if oa == nil {
		return errors.New("wechat.official_account is missing: add { app_id: wx..., app_secret: ${WECHAT_OA_SECRET} } for your verified Official Account")
	}
	if oa.AppID == "" {
		return errors.New("wechat.official_account.app_id is missing: copy the AppID from the Official Account admin (开发 → 基本配置)")
	}
	if oa.AppSecret == "" {
		return errors.New("wechat.official_account.app_secret is missing: set it, preferably as ${WECHAT_OA_SECRET} from the environment")
	}
	switch oa.Scope {
	case ScopeUserInfo, ScopeBase, ScopeSilentFirst:
	default:
		return fmt.Errorf("wechat.official_account.scope %q is not supported: use silent_first, snsapi_userinfo or snsapi_base", oa.Scope)
	}
	for _, a := range []struct {
		key string
		app *WeChatAppConfig
	}{{"wechat.website_app", c.WeChat.WebsiteApp}, {"wechat.mini_program", c.WeChat.MiniProgram}} {
		if a.app == nil {
			continue
		}
		if a.app.AppID == "" || a.app.AppSecret == "" {
			return fmt.Errorf("%s needs app_id and app_secret (e.g. app_secret: ${WECHAT_%s_SECRET})", a.key, strings.ToUpper(strings.TrimPrefix(a.key, "wechat.")))
		}
		if a.app.Scope != "" {
			return fmt.Errorf("%s.scope is not used (website apps always use snsapi_login; mini programs have no scope): remove it", a.key)
		}
	}
	if c.Subject == SubjectOpenID && (c.WeChat.WebsiteApp != nil || c.WeChat.MiniProgram != nil) {
		return errors.New("subject: openid cannot be used with wechat.website_app or wechat.mini_program: each WeChat app gives the same person a different openid, so one person would get several subs; use subject: unionid")
	}
	switch *c.WeChat.AvatarSize {
	case 0, 46, 64, 96, 132:
	default:
		return fmt.Errorf("wechat.avatar_size %d: WeChat serves 0 (640x640), 46, 64, 96 or 132", *c.WeChat.AvatarSize)
	}
	if d := c.WeChat.UserinfoRetryDeadline.D(); d < 0 || d > 30*time.Second {
		return errors.New("wechat.userinfo_retry_deadline must be between 0 and 30s")
	}
	if d := c.WeChat.QRTicketTTL.D(); d < 30*time.Second || d > 10*time.Minute {
		return errors.New("wechat.qr_ticket_ttl must be between 30s and 10m")
	}
	for _, k := range []struct{ key, val string }{{"wechat.open_base_url", c.WeChat.OpenBaseURL}, {"wechat.api_base_url", c.WeChat.APIBaseURL}} {
		u, err := url.Parse(k.val)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%s %q must be an absolute http(s) URL without query or fragment", k.key, k.val)
		}
	}
	if !*c.WeChat.CrossDevice && c.WeChat.CrossDeviceSSO {
		return errors.New("wechat.cross_device_sso has no effect with wechat.cross_device: false; remove it")
	}
	if c.WeChat.Timeout.D() <= 0 || c.WeChat.Timeout.D() > time.Minute {
		return errors.New("wechat.timeout must be between 1ms and 1m (e.g. 5s)")
	}
	return nil
}

func (c *File) validateClients() error {
	if len(c.Clients) == 0 {
		return errors.New("clients is empty: register at least one application (id, secret, redirect_uris)")
	}
	ids := map[string]bool{}
	for i, cl := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)
		if cl.ID == "" {
			return fmt.Errorf("%s.id is missing: give each client a unique id", key)
		}
		if cl.ID == "wechat-oidc-admin" {
			return fmt.Errorf("%s.id %q is reserved for the admin console (%s/admin): rename this client", key, cl.ID, strings.TrimSuffix(c.Issuer, "/"))
		}
		if ids[cl.ID] {
			return fmt.Errorf("%s.id %q is a duplicate: client ids must be unique; rename one of them", key, cl.ID)
		}
		ids[cl.ID] = true
		if err := c.validateClient(key, cl); err != nil {
			return err
		}
	}
	return nil
}

// validateClient checks one client; key is its path (clients[i]).
func (c *File) validateClient(key string, cl ClientConfig) error {
	crossDevice := *c.WeChat.CrossDevice && (cl.CrossDevice == nil || *cl.CrossDevice)
	if cl.CrossDevice != nil && *cl.CrossDevice && !*c.WeChat.CrossDevice {
		return fmt.Errorf("%s (%s).cross_device: true has no effect while wechat.cross_device is false; remove it or allow cross-device sign-in for the deployment", key, cl.ID)
	}
	switch cl.WeChatFlow {
	case "", FlowOfficialAccount:
	case FlowCrossDevice:
		if !crossDevice {
			return fmt.Errorf("%s (%s).wechat_flow cross_device is disabled (wechat.cross_device or the client's cross_device is false): pin another flow or allow it", key, cl.ID)
		}
	case FlowWebsiteApp:
		if c.WeChat.WebsiteApp == nil {
			return fmt.Errorf("%s (%s).wechat_flow website_app needs wechat.website_app to be configured", key, cl.ID)
		}
	default:
		return fmt.Errorf("%s (%s).wechat_flow %q: use official_account, website_app or cross_device, or leave it empty to choose by browser", key, cl.ID, cl.WeChatFlow)
	}
	if cl.MiniProgram && c.WeChat.MiniProgram == nil {
		return fmt.Errorf("%s (%s).mini_program needs wechat.mini_program to be configured", key, cl.ID)
	}
	if err := c.validateClientAlg(key, cl); err != nil {
		return err
	}
	for _, check := range []func(string, ClientConfig) error{validateClientAuth, validateClientURIs, validateClientClaims} {
		if err := check(key, cl); err != nil {
			return err
		}
	}
	return nil
}

// validateClientAuth checks how a client authenticates and its secret.
func validateClientAuth(key string, cl ClientConfig) error {
	switch cl.TokenEndpointAuthMethod {
	case "", "client_secret_basic", "client_secret_post":
		if cl.Secret == "" && cl.SecretSHA256 == "" {
			return fmt.Errorf("%s (%s).secret is missing: set a long random secret (e.g. ${%s_SECRET}) or its secret_sha256, or token_endpoint_auth_method: none for a public client", key, cl.ID, envName(cl.ID))
		}
		if cl.Secret != "" && cl.SecretSHA256 != "" {
			return fmt.Errorf("%s (%s): set secret or secret_sha256, not both", key, cl.ID)
		}
		if h := cl.SecretSHA256; h != "" {
			if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
				return fmt.Errorf("%s (%s).secret_sha256 must be 64 hex digits (e.g. printf %%s \"$SECRET\" | sha256sum)", key, cl.ID)
			}
		}
		if cl.Secret != "" && len(cl.Secret) < 16 {
			return fmt.Errorf("%s (%s).secret is too short (%d characters): use at least 16 random characters, e.g. openssl rand -base64 32", key, cl.ID, len(cl.Secret))
		}
	case "none":
		if cl.Secret != "" || cl.SecretSHA256 != "" {
			return fmt.Errorf("%s (%s): a public client (token_endpoint_auth_method: none) has no secret; remove secret", key, cl.ID)
		}
	default:
		return fmt.Errorf("%s (%s).token_endpoint_auth_method %q is not supported: use client_secret_basic, client_secret_post or none", key, cl.ID, cl.TokenEndpointAuthMethod)
	}
	return nil
}

// validateClientURIs checks a client's redirect, logout and back-channel URIs.
func validateClientURIs(key string, cl ClientConfig) error {
	if len(cl.RedirectURIs) == 0 {
		return fmt.Errorf("%s (%s).redirect_uris is empty: list the exact callback URL(s) of the application", key, cl.ID)
	}
	for j, r := range cl.RedirectURIs {
		if err := validateRedirectURI(r); err != nil {
			return fmt.Errorf("%s (%s).redirect_uris[%d] %q: %v", key, cl.ID, j, r, err)
		}
	}
	if cl.LoopbackAnyPort {
		loopback := false
		for _, r := range cl.RedirectURIs {
			loopback = loopback || strings.HasPrefix(r, "http://127.0.0.1") || strings.HasPrefix(r, "http://[::1]")
		}
		if !loopback {
			return fmt.Errorf("%s (%s).loopback_any_port needs a redirect URI on http://127.0.0.1 or http://[::1] (RFC 8252 §7.3; not localhost)", key, cl.ID)
		}
	}
	for j, r := range cl.PostLogoutRedirectURIs {
		if err := validateRedirectURI(r); err != nil {
			return fmt.Errorf("%s (%s).post_logout_redirect_uris[%d] %q: %v", key, cl.ID, j, r, err)
		}
	}
	if u := cl.BackchannelLogoutURI; u != "" {
		// OpenID Connect Back-Channel Logout 1.0 §2.2: absolute, no fragment.
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.Fragment != "" || strings.Contains(u, "#") {
			return fmt.Errorf("%s (%s).backchannel_logout_uri %q must be an absolute http(s) URL without a fragment", key, cl.ID, u)
		}
	}
	return nil
}

// validateClientClaims checks a client's claim templates.
func validateClientClaims(key string, cl ClientConfig) error {
	for _, t := range []struct{ key, tmpl string }{
		{"claims.email", cl.Claims.Email}, {"claims.given_name", cl.Claims.GivenName}, {"claims.family_name", cl.Claims.FamilyName},
	} {
		if err := validateClaimTemplate(t.tmpl); err != nil {
			return fmt.Errorf("%s (%s).%s %q: %v", key, cl.ID, t.key, t.tmpl, err)
		}
	}
	if e := cl.Claims.Email; e != "" {
		local, domain, ok := strings.Cut(e, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "{}@ ") {
			return fmt.Errorf("%s (%s).claims.email %q must look like {preferred_username}@a-domain-you-own", key, cl.ID, e)
		}
		if !strings.Contains(local, "{sub}") && !strings.Contains(local, "{preferred_username}") && !strings.Contains(local, "{username}") {
			return fmt.Errorf("%s (%s).claims.email %q must contain {sub}, {username} or {preferred_username} so that each person's address is unique", key, cl.ID, e)
		}
	}
	for j, o := range cl.AllowedOrigins {
		pu, err := url.Parse(o)
		if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.Path != "" || pu.RawQuery != "" || o != pu.Scheme+"://"+pu.Host {
			return fmt.Errorf("%s (%s).allowed_origins[%d] %q must be an origin: scheme://host[:port], nothing after it", key, cl.ID, j, o)
		}
	}
	return nil
}

func (c *File) validateClientAlg(key string, cl ClientConfig) error {
	if a := cl.IDTokenSignedResponseAlg; a != "" && !slices.Contains(keys.SupportedAlgorithms(), a) {
		return fmt.Errorf("%s (%s).id_token_signed_response_alg %q is not supported: use RS256, ES256 or EdDSA, or leave it empty for keys.algorithm", key, cl.ID, a)
	}
	return nil
}

func (c *File) validateTokens() error {
	if c.Tokens.RefreshIdleTTL > c.Tokens.RefreshAbsoluteTTL {
		return errors.New("tokens.refresh_idle_ttl must not be longer than tokens.refresh_absolute_ttl")
	}
	for _, d := range []struct {
		key string
		v   Duration
		max time.Duration
	}{
		{"tokens.code_ttl", c.Tokens.CodeTTL, 10 * time.Minute},
		{"tokens.access_token_ttl", c.Tokens.AccessTokenTTL, 24 * time.Hour},
		{"tokens.id_token_ttl", c.Tokens.IDTokenTTL, 24 * time.Hour},
		{"login.pending_ttl", c.Login.PendingTTL, time.Hour},
		{"keys.publish_before_use", c.Keys.PublishBeforeUse, 30 * 24 * time.Hour},
		{"tokens.refresh_idle_ttl", c.Tokens.RefreshIdleTTL, 365 * 24 * time.Hour},
		{"tokens.refresh_absolute_ttl", c.Tokens.RefreshAbsoluteTTL, 365 * 24 * time.Hour},
	} {
		if d.v.D() <= 0 || d.v.D() > d.max {
			return fmt.Errorf("%s must be positive and at most %s", d.key, d.max)
		}
	}
	if g := c.Tokens.RefreshReuseGrace.D(); g < 0 || g > time.Minute {
		return errors.New("tokens.refresh_reuse_grace must be between 0 (strict rotation, the default) and 1m")
	}
	return nil
}

func (c *File) validateStore() error {
	if c.Store.Memory.MaxEntries < 1000 {
		return errors.New("store.memory.max_entries must be at least 1000 (the default is 250000)")
	}
	r := c.Store.Redis
	switch c.Store.Type {
	case "memory":
		return nil
	case "redis":
	default:
		return fmt.Errorf("store.type %q is not supported: use memory (one instance) or redis (several replicas)", c.Store.Type)
	}
	if c.Store.SnapshotFile != "" {
		return errors.New("store.snapshot_file is for the memory store only: Redis keeps its entries across restarts of the bridge; remove it")
	}
	if r.URL == "" {
		return errors.New("store.redis.url is missing: set it to redis://[user:password@]host:port[/db] (rediss:// for TLS), e.g. \"redis://:${REDIS_PASSWORD}@redis.internal:6379/0\"")
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		// url's error would quote the URL and its password.
		return errors.New("store.redis.url is not a URL: write redis://[user:password@]host:port[/db]; a password with special characters must be percent-encoded")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("store.redis.url scheme %q: use redis:// (or rediss:// for TLS)", u.Scheme)
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return fmt.Errorf("store.redis.url: the path must be a database number (/0), not %q", "/"+db)
		}
	}
	if r.CAFile != "" && u.Scheme != "rediss" {
		return errors.New("store.redis.ca_file is set but store.redis.url is not rediss://: use rediss:// to connect over TLS, or remove ca_file")
	}
	if s := r.Sentinel; s.set() {
		if u.Host != "" {
			return errors.New("store.redis.url: with store.redis.sentinel, leave the host out (redis://user:password@/0): the sentinels name the master")
		}
		if s.Master == "" || len(s.Addrs) == 0 {
			return errors.New("store.redis.sentinel needs master (the name in sentinel.conf) and addrs (host:port of one or more sentinels)")
		}
		for i, a := range s.Addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("store.redis.sentinel.addrs[%d] %q is not host:port (e.g. sentinel-1:26379)", i, a)
			}
		}
	} else if u.Host == "" {
		return errors.New("store.redis.url has no host: write redis://host:port/0")
	}
	return nil
}

// set: the sentinel section says something (the example's empty one does not).
func (s *SentinelConfig) set() bool {
	return s != nil && (s.Master != "" || len(s.Addrs) > 0 || s.Password != "")
}

func (c *File) validateKeys() error {
	if !slices.Contains(keys.SupportedAlgorithms(), c.Keys.Algorithm) {
		return fmt.Errorf("keys.algorithm %q is not supported: use RS256 (every relying party accepts it), ES256 or EdDSA", c.Keys.Algorithm)
	}
	if c.Keys.Dir == "" {
		if c.Store.Type != "redis" {
			return errors.New("keys.dir is missing: set a directory for the signing keys (e.g. /var/lib/wechat-oidc/keys) so ID tokens stay valid across restarts; with store.type redis the keys may live in Redis instead (keys.encryption_key)")
		}
		if c.Keys.EncryptionKey == "" {
			return errors.New("keys.encryption_key is missing: with store.type redis and no keys.dir, the signing keys live in Redis, encrypted with this key; generate one with `openssl rand -base64 32`, give the same value to every replica (e.g. encryption_key: ${WECHAT_OIDC_KEYS_KEY}), or set keys.dir")
		}
		if _, err := keys.ParseEncryptionKey(c.Keys.EncryptionKey); err != nil {
			return errors.New(strings.TrimPrefix(err.Error(), "keys: "))
		}
	}
	if r := c.Keys.RotateEvery.D(); r != 0 {
		if r <= c.Keys.PublishBeforeUse.D() || r > 366*24*time.Hour {
			return fmt.Errorf("keys.rotate_every (%s) must be longer than keys.publish_before_use (%s) and at most 8784h (a year), e.g. 720h; or 0 to rotate only by hand", r, c.Keys.PublishBeforeUse.D())
		}
	}
	return nil
}

func (c *File) validateSession() error {
	if c.Session.IdleTTL.D() <= 0 || c.Session.AbsoluteTTL.D() < c.Session.IdleTTL.D() {
		return errors.New("session.idle_ttl must be positive and session.absolute_ttl at least as long")
	}
	return nil
}

func (c *File) validateLimits() error {
	for _, l := range []struct {
		key string
		r   RateConfig
	}{
		{"limits.token_per_client", c.Limits.TokenPerClient}, {"limits.token_auth_failures", c.Limits.TokenAuthFailures},
		{"limits.authorize_per_ip", c.Limits.AuthorizePerIP}, {"limits.logout_per_ip", c.Limits.LogoutPerIP},
	} {
		if l.r.Rate <= 0 || l.r.Burst < 1 {
			return fmt.Errorf("%s needs rate > 0 (requests per second) and burst >= 1", l.key)
		}
	}
	if c.Login.MaxPendingPerIP < 1 || c.Login.MaxPending < c.Login.MaxPendingPerIP {
		return errors.New("login.max_pending_per_ip must be at least 1 and login.max_pending at least as large")
	}
	return nil
}

func (c *File) validateGroups() error {
	if c.Groups != nil {
		return errors.New("groups: the static groups list is gone: the people directory is the one source of groups. " +
			"Move its members into the directory with wechat-oidc people import --file people.csv (columns username,name,email,groups,openid,unionid,app_id,status), then remove groups: from the config")
	}
	return nil
}

func (c *File) validateDirectory() error {
	d := c.Directory
	switch d.Type {
	case "sqlite":
		if d.Path == "" {
			return errors.New("directory.path is missing: set the SQLite database file, e.g. directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db } (its directory must exist)")
		}
		if d.URL != "" {
			return errors.New("directory.url is for type postgres; with type sqlite set path")
		}
	case "postgres":
		if d.URL == "" {
			return errors.New("directory.url is missing: set it to postgres://user:password@host:5432/db?sslmode=verify-full, preferably as ${DATABASE_URL}")
		}
		if d.Path != "" {
			return errors.New("directory.path is for type sqlite; with type postgres set url")
		}
	default:
		return fmt.Errorf("directory.type %q is not supported: use sqlite (one instance) or postgres (several replicas)", d.Type)
	}
	if t := d.SignInTimeout.D(); t < 100*time.Millisecond || t > 30*time.Second {
		return fmt.Errorf("directory.sign_in_timeout %s must be between 100ms and 30s (default %s): how long a sign-in may wait for the directory before the person is asked to try again",
			t, DefaultDirectorySignInTimeout)
	}
	return nil
}

func (c *File) validateAccess() error {
	switch c.Access.Mode {
	case AccessOpen, AccessApproval, AccessInvite:
	default:
		return fmt.Errorf("access.mode %q is not supported: use approval (an administrator admits each new person), invite (only invited or imported people) or open (anyone with WeChat)", c.Access.Mode)
	}
	if !validGroupName(c.Access.AdminGroup) {
		return fmt.Errorf("access.admin_group %q: a group name is 1-64 of a-z, 0-9, '.', '_' and '-'", c.Access.AdminGroup)
	}
	if d := c.Access.PendingTTL.D(); d < time.Minute || d > 7*24*time.Hour {
		return errors.New("access.pending_ttl must be between 1m and 168h")
	}
	if d := c.Audit.Retention.D(); d < 24*time.Hour {
		return errors.New("audit.retention must be at least 24h (default 4320h, 180 days)")
	}
	for i, cl := range c.Clients {
		for j, g := range cl.AllowedGroups {
			if !validGroupName(g) {
				return fmt.Errorf("clients[%d] (%s).allowed_groups[%d] %q: a group name is 1-64 of a-z, 0-9, '.', '_' and '-'", i, cl.ID, j, g)
			}
		}
		if u := cl.InitiateLoginURI; u != "" {
			pu, err := url.Parse(u)
			if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.Fragment != "" {
				return fmt.Errorf("clients[%d] (%s).initiate_login_uri %q must be an absolute http(s) URL without a fragment", i, cl.ID, u)
			}
		}
	}
	return nil
}

// validGroupName is the directory's rule for group names.
func validGroupName(g string) bool {
	if g == "" || len(g) > 64 {
		return false
	}
	for i := 0; i < len(g); i++ {
		ch := g[i]
		if !(('a' <= ch && ch <= 'z') || ('0' <= ch && ch <= '9') || ch == '.' || ch == '_' || ch == '-') {
			return false
		}
	}
	return true
}

func (c *File) validateTrustedProxies() error {
	for i, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("trusted_proxies[%d] %q is not a CIDR (e.g. 10.0.0.0/8 or 127.0.0.1/32)", i, p)
		}
	}
	return nil
}

func (c *File) validateMetrics() error {
	if l := c.Metrics.Listen; l != "" {
		if _, _, err := net.SplitHostPort(l); err != nil {
			return fmt.Errorf("metrics.listen %q is not host:port (e.g. 127.0.0.1:9090), or leave it empty for no metrics", l)
		}
		if l == c.Listen {
			return errors.New("metrics.listen must differ from listen: metrics are served apart from the public port")
		}
	}
	return nil
}

func (c *File) validateShutdown() error {
	if d := c.Shutdown.DrainDelay.D(); d < 0 || d > 5*time.Minute {
		return errors.New("shutdown.drain_delay must be between 0 and 5m (e.g. 5s behind a load balancer)")
	}
	if d := c.Shutdown.Timeout.D(); d <= 0 || d > 10*time.Minute {
		return errors.New("shutdown.timeout must be positive and at most 10m (e.g. 10s)")
	}
	return nil
}

func (c *File) validateLog() error {
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("log.format %q: use text or json", c.Log.Format)
	}
	return nil
}

func envName(id string) string {
	return strings.ToUpper(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(id, "_"))
}

// validateIssuer: an https URL (http only for loopback hosts, and, when
// privateHTTP, for private-network IP addresses), no query, no fragment
// (OpenID Connect Discovery 1.0 §2; Core §16.15 on TLS).
func validateIssuer(issuer string, privateHTTP bool) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("issuer %q is not an absolute URL: write e.g. https://sso.example.com", issuer)
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.Contains(issuer, "#") || strings.Contains(issuer, "?") {
		return fmt.Errorf("issuer %q must not have a query or fragment", issuer)
	}
	if u.User != nil {
		return fmt.Errorf("issuer %q must not contain user information", issuer)
	}
	switch u.Scheme {
	case "https":
	case "http":
		switch {
		case isLoopbackHost(u.Hostname()):
		case privateHTTP && isPrivateIP(u.Hostname()):
		case privateHTTP:
			return fmt.Errorf("issuer %q uses http on a host that is neither loopback nor a private-network IP address: use https, or an address such as 192.168.1.10, 10.0.0.5 or 172.16.0.2", issuer)
		default:
			return fmt.Errorf("issuer %q uses http on a non-loopback host: use https (http is only allowed for 127.0.0.1, ::1 and localhost)", issuer)
		}
	default:
		return fmt.Errorf("issuer %q must use https", issuer)
	}
	return nil
}

// isPrivateIP: an IP address of a private network (RFC 1918, RFC 4193),
// not a name: a name could resolve anywhere.
func isPrivateIP(h string) bool {
	ip := net.ParseIP(h)
	return ip != nil && ip.IsPrivate()
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// validateRedirectURI: absolute, no fragment (RFC 6749 §3.1.2).
func validateRedirectURI(r string) error {
	u, err := url.Parse(r)
	if err != nil || u.Scheme == "" {
		return errors.New("not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(r, "#") {
		return errors.New("a redirect URI must not contain a fragment (RFC 6749 §3.1.2)")
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return errors.New("the URL has no host")
	}
	if u.User != nil {
		return errors.New("a redirect URI must not contain user information (user@host)")
	}
	return nil
}

// ClaimPlaceholder matches a {placeholder} of a claim template.
var ClaimPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

// claimPlaceholders are the values a claim template may use.
var claimPlaceholders = map[string]bool{"{sub}": true, "{preferred_username}": true, "{username}": true, "{email}": true, "{name}": true, "{openid}": true, "{unionid}": true}

func validateClaimTemplate(t string) error {
	for _, m := range ClaimPlaceholder.FindAllString(t, -1) {
		if !claimPlaceholders[m] {
			return fmt.Errorf("unknown placeholder %s (use {sub}, {username}, {preferred_username}, {email}, {name}, {openid} or {unionid})", m)
		}
	}
	if strings.Count(t, "{") != len(ClaimPlaceholder.FindAllString(t, -1)) {
		return errors.New("unbalanced braces")
	}
	return nil
}

// verifyFileName is WeChat's domain-verification file name (公众号 →
// 设置与开发 → 接口权限 → 网页授权域名).
var verifyFileName = regexp.MustCompile(`^MP_verify_[A-Za-z0-9]{1,64}\.txt$`)

func (c *File) validateVerifyFiles() error {
	if len(c.WeChat.VerifyFiles) == 0 {
		return nil
	}
	if u, err := url.Parse(c.Issuer); err == nil && strings.TrimSuffix(u.Path, "/") != "" {
		return fmt.Errorf("wechat.verify_files: the issuer %q has a path, so wechat-oidc cannot serve files at the host root where WeChat looks for them; "+
			"remove verify_files and serve the file from your reverse proxy (docs/wechat-setup.md shows the rule)", c.Issuer)
	}
	for name, content := range c.WeChat.VerifyFiles {
		if !verifyFileName.MatchString(name) {
			return fmt.Errorf("wechat.verify_files: %q is not a WeChat verification file name (MP_verify_<letters and digits>.txt, as the Official Account admin names it)", name)
		}
		if content == "" || len(content) > 256 || strings.ContainsAny(content, "<>\r\n") {
			return fmt.Errorf("wechat.verify_files.%s: the content must be the file's one line of text as WeChat gives it (1-256 characters)", name)
		}
	}
	return nil
}
