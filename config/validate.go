package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Validate checks the whole configuration, section by section; each message
// names the key and the fix. Defaults must have been applied.
func (c *File) Validate() error {
	for _, check := range []func() error{
		c.validateTop, c.validateWeChat, c.validateClients, c.validateTokens,
		c.validateStore, c.validateKeys, c.validateSession, c.validateLimits,
		c.validateGroups, c.validateTrustedProxies, c.validateLog,
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
	if err := validateIssuer(c.Issuer); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q is not host:port (e.g. 0.0.0.0:8080)", c.Listen)
	}
	switch c.Subject {
	case SubjectUnionID, SubjectOpenID:
	default:
		return fmt.Errorf("subject %q is not supported: use unionid (one identity across all your WeChat apps) or openid", c.Subject)
	}
	return nil
}

func (c *File) validateWeChat() error {
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
		if !strings.Contains(local, "{sub}") && !strings.Contains(local, "{preferred_username}") {
			return fmt.Errorf("%s (%s).claims.email %q must contain {sub} or {preferred_username} so that each person's address is unique", key, cl.ID, e)
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
	switch c.Store.Type {
	case "memory":
	case "redis":
		if c.Store.Redis.Addr == "" {
			return errors.New("store.redis.addr is missing: set host:port of the Redis server (store.type is redis)")
		}
	default:
		return fmt.Errorf("store.type %q is not supported: use memory (one instance) or redis (several replicas)", c.Store.Type)
	}
	return nil
}

func (c *File) validateKeys() error {
	if c.Keys.Dir == "" {
		return errors.New("keys.dir is missing: set a directory for the signing keys (e.g. /var/lib/wechat-oidc/keys) so ID tokens stay valid across restarts")
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
	for g, subs := range c.Groups {
		if g == "" || len(subs) == 0 {
			return fmt.Errorf("groups.%s must be a non-empty list of subjects (sub values)", g)
		}
	}
	return nil
}

func (c *File) validateTrustedProxies() error {
	for i, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("trusted_proxies[%d] %q is not a CIDR (e.g. 10.0.0.0/8 or 127.0.0.1/32)", i, p)
		}
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

// validateIssuer: an https URL (http only for loopback hosts), no query, no
// fragment (OpenID Connect Discovery 1.0 §2; Core §16.15 on TLS).
func validateIssuer(issuer string) error {
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
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("issuer %q uses http on a non-loopback host: use https (http is only allowed for 127.0.0.1, ::1 and localhost)", issuer)
		}
	default:
		return fmt.Errorf("issuer %q must use https", issuer)
	}
	return nil
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
var claimPlaceholders = map[string]bool{"{sub}": true, "{preferred_username}": true, "{name}": true, "{openid}": true, "{unionid}": true}

func validateClaimTemplate(t string) error {
	for _, m := range ClaimPlaceholder.FindAllString(t, -1) {
		if !claimPlaceholders[m] {
			return fmt.Errorf("unknown placeholder %s (use {sub}, {preferred_username}, {name}, {openid} or {unionid})", m)
		}
	}
	if strings.Count(t, "{") != len(ClaimPlaceholder.FindAllString(t, -1)) {
		return errors.New("unbalanced braces")
	}
	return nil
}
