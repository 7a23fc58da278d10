package bridge

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole configuration file; config.example.yaml documents
// every key.
type Config struct {
	Issuer  string         `yaml:"issuer"`
	Listen  string         `yaml:"listen"`
	Subject string         `yaml:"subject"`
	WeChat  WeChatConfig   `yaml:"wechat"`
	Clients []ClientConfig `yaml:"clients"`
	Store   StoreConfig    `yaml:"store"`
	Keys    KeysConfig     `yaml:"keys"`
	Tokens  TokensConfig   `yaml:"tokens"`
	Login   LoginConfig    `yaml:"login"`
	Session SessionConfig  `yaml:"session"`
	Limits  LimitsConfig   `yaml:"limits"`
	// TrustedProxies are the CIDRs of reverse proxies whose X-Forwarded-For
	// is believed when finding a client's IP (rate limits, logs). Empty:
	// the connection's address is used and the header is ignored.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// Groups lists, per group name, the subjects (sub values) in it; released
	// as the groups claim under scope groups.
	Groups map[string][]string `yaml:"groups"`
	Log    LogConfig           `yaml:"log"`
}

type SessionConfig struct {
	// IdleTTL ends an SSO session not used for this long.
	IdleTTL Duration `yaml:"idle_ttl"`
	// AbsoluteTTL ends an SSO session this long after the WeChat login, used or not.
	AbsoluteTTL Duration `yaml:"absolute_ttl"`
}

type LimitsConfig struct {
	// TokenPerClient limits token endpoint requests per client_id.
	TokenPerClient RateConfig `yaml:"token_per_client"`
	// AuthorizePerIP limits authorization requests per client IP.
	AuthorizePerIP RateConfig `yaml:"authorize_per_ip"`
}

// RateConfig is a token bucket: Rate requests per second on average, bursts of Burst.
type RateConfig struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Subject modes.
const (
	SubjectUnionID = "unionid"
	SubjectOpenID  = "openid"
)

// Official Account scope modes (wechat.official_account.scope).
const (
	ScopeUserInfo    = "snsapi_userinfo"
	ScopeBase        = "snsapi_base"
	ScopeSilentFirst = "silent_first"
)

// WeChat flows (clients[].wechat_flow and the wechat_flow authorize parameter).
const (
	FlowOfficialAccount = "official_account"
	FlowWebsiteApp      = "website_app"
	FlowCrossDevice     = "cross_device"
)

type WeChatConfig struct {
	OfficialAccount *WeChatAppConfig `yaml:"official_account"`
	// WebsiteApp is an Open Platform website app (网站应用): desktop QR login
	// through WeChat's qrconnect page.
	WebsiteApp *WeChatAppConfig `yaml:"website_app"`
	// MiniProgram is a mini program whose wx.login codes may be exchanged at
	// the token endpoint (RFC 8693 token exchange).
	MiniProgram *WeChatAppConfig `yaml:"mini_program"`
	OpenBaseURL string           `yaml:"open_base_url"`
	APIBaseURL  string           `yaml:"api_base_url"`
	// Timeout bounds each call to WeChat's API.
	Timeout Duration `yaml:"timeout"`
	// UserinfoRetryDeadline bounds the retries of /sns/userinfo after -1 or
	// 45011 (the code exchange itself is never retried).
	UserinfoRetryDeadline Duration `yaml:"userinfo_retry_deadline"`
	// AvatarSize picks the picture claim's size: 0 (640x640), 46, 64, 96 or 132.
	AvatarSize *int `yaml:"avatar_size"`
	// QRTicketTTL is the lifetime of a cross-device QR login ticket.
	QRTicketTTL Duration `yaml:"qr_ticket_ttl"`
	// SnapshotForcePopup makes the snapshot page's retry add forcePopup=true.
	SnapshotForcePopup *bool `yaml:"snapshot_force_popup"`
}

type WeChatAppConfig struct {
	AppID     string `yaml:"app_id"`
	AppSecret string `yaml:"app_secret"`
	// Scope (official_account only): snsapi_userinfo (consent popup, profile),
	// snsapi_base (silent, openid only) or silent_first (snsapi_base, then
	// snsapi_userinfo once if the unionid is not known yet). Default:
	// silent_first with subject unionid, snsapi_userinfo with subject openid.
	Scope string `yaml:"scope"`
}

type ClientConfig struct {
	ID     string `yaml:"id"`
	Name   string `yaml:"name"`
	Secret string `yaml:"secret"`
	// SecretSHA256 is the hex SHA-256 of the secret, instead of secret, to
	// keep the plain secret out of the config (secrets must be long and random:
	// a fast hash is right for them).
	SecretSHA256 string   `yaml:"secret_sha256"`
	RedirectURIs []string `yaml:"redirect_uris"`
	// TokenEndpointAuthMethod: client_secret_basic, client_secret_post,
	// none (public client, PKCE required). Empty: basic or post.
	TokenEndpointAuthMethod string `yaml:"token_endpoint_auth_method"`
	RequirePKCE             bool   `yaml:"require_pkce"`
	AllowPlainPKCE          bool   `yaml:"allow_plain_pkce"`
	// LoopbackAnyPort (native apps): a registered http://127.0.0.1/... or
	// http://[::1]/... redirect URI matches any port (RFC 8252 §7.3).
	LoopbackAnyPort bool `yaml:"loopback_any_port"`
	// RefreshTokens issues refresh tokens even when offline_access is not requested.
	RefreshTokens bool `yaml:"refresh_tokens"`
	// PostLogoutRedirectURIs are where RP-initiated logout may return (exact match).
	PostLogoutRedirectURIs []string `yaml:"post_logout_redirect_uris"`
	// BackchannelLogoutURI receives a logout_token when a session ends.
	BackchannelLogoutURI string `yaml:"backchannel_logout_uri"`
	// AllowedOrigins may call discovery, JWKS, token, userinfo and revocation from a browser (CORS).
	AllowedOrigins []string `yaml:"allowed_origins"`
	// ForcePopup adds forcePopup=true to WeChat's authorize URL for this
	// client (WeChat's consent popup even for returning users).
	ForcePopup bool `yaml:"force_popup"`
	// WeChatFlow fixes the WeChat flow for this client: "" (by browser: the
	// WeChat in-app browser uses the Official Account, others the desktop
	// flow), official_account, website_app (qrconnect) or cross_device (QR
	// for an Official Account).
	WeChatFlow string `yaml:"wechat_flow"`
	// MiniProgram allows this client the mini-program token exchange grant.
	MiniProgram bool `yaml:"mini_program"`
	// Claims shapes extra claims for this client (WeChat has no email or
	// first/last name; many applications insist on them).
	Claims ClientClaimsConfig `yaml:"claims"`
}

// ClientClaimsConfig holds claim templates. Placeholders: {sub},
// {preferred_username}, {name}, {openid}, {unionid}.
type ClientClaimsConfig struct {
	// Email is a synthetic address template, e.g. "{preferred_username}@wechat.example.com";
	// it must contain {sub} or {preferred_username} so that it is unique.
	Email string `yaml:"email"`
	// EmailVerified is the email_verified value sent with the synthetic email.
	EmailVerified bool `yaml:"email_verified"`
	// GivenName and FamilyName are templates, e.g. given_name: "{name}", family_name: "(WeChat)".
	GivenName  string `yaml:"given_name"`
	FamilyName string `yaml:"family_name"`
}

type StoreConfig struct {
	Type  string      `yaml:"type"`
	Redis RedisConfig `yaml:"redis"`
}

type RedisConfig struct {
	Addr     string `yaml:"addr"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	Prefix   string `yaml:"prefix"`
}

type KeysConfig struct {
	Dir string `yaml:"dir"`
	// PublishBeforeUse: a key added for rotation is published in the JWKS at
	// once but signs only after this long, so that every replica and every
	// relying party's JWKS cache knows it first.
	PublishBeforeUse Duration `yaml:"publish_before_use"`
}

type TokensConfig struct {
	CodeTTL        Duration `yaml:"code_ttl"`
	AccessTokenTTL Duration `yaml:"access_token_ttl"`
	IDTokenTTL     Duration `yaml:"id_token_ttl"`
	// RefreshIdleTTL: a refresh token unused this long stops working.
	RefreshIdleTTL Duration `yaml:"refresh_idle_ttl"`
	// RefreshAbsoluteTTL: no refreshing beyond this long after the login.
	RefreshAbsoluteTTL Duration `yaml:"refresh_absolute_ttl"`
	// RefreshReuseGrace: how long a used refresh token may be presented again
	// (concurrent refreshes) before reuse revokes the whole family.
	RefreshReuseGrace Duration `yaml:"refresh_reuse_grace"`
}

type LoginConfig struct {
	// PendingTTL is how long a started login may take (WeChat page, consent)
	// before it is forgotten.
	PendingTTL Duration `yaml:"pending_ttl"`
}

type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text, json
}

// Duration is a time.Duration written as "60s", "5m", "1h".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration (write e.g. 60s, 5m, 1h)", n.Value)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) D() time.Duration { return time.Duration(d) }

// LoadConfig reads, expands, parses, defaults and validates a config file.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := ParseConfig(raw, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses YAML config text. ${VAR} in any value expands from
// lookup; an unset variable is an error naming it and the key.
func ParseConfig(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the file is empty: at least issuer, wechat.official_account and clients are required (see config.example.yaml)")
		}
		if regexp.MustCompile(`\{[^}\n]*\$\{`).Match(raw) {
			return nil, fmt.Errorf("not valid YAML: %v (inside { ... } a ${VAR} must be quoted: app_secret: \"${VAR}\")", err)
		}
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the top level must be a mapping of keys (issuer:, wechat:, clients:, ...)")
	}
	if err := checkKeys(root.Content[0], reflect.TypeOf(Config{}), ""); err != nil {
		return nil, err
	}
	// Values that came from the environment may be secrets: no error below
	// may quote them. Each is replaced by its ${NAME} in error messages.
	expanded := map[string]string{}
	recording := func(name string) (string, bool) {
		v, ok := lookup(name)
		if ok && v != "" {
			expanded[v] = "${" + name + "}"
		}
		return v, ok
	}
	if err := expandEnv(root.Content[0], "", recording); err != nil {
		return nil, err
	}
	redact := func(err error) error {
		msg := err.Error()
		for v, ref := range expanded {
			msg = strings.ReplaceAll(msg, v, ref)
			// yaml.v3 quotes at most the first 7 characters of a value it
			// cannot decode ("Zq7xK2m...").
			if len(v) > 7 {
				msg = strings.ReplaceAll(msg, v[:7]+"...", ref)
			}
		}
		return errors.New(msg)
	}
	var cfg Config
	if err := root.Content[0].Decode(&cfg); err != nil {
		return nil, redact(fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, redact(err)
	}
	return &cfg, nil
}

// checkKeys refuses keys that the Config type does not have, naming the key
// path, its line and the keys that are allowed there.
func checkKeys(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(Duration(0)) || n.Kind != yaml.MappingNode {
			return nil
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag != "" && tag != "-" {
				fields[tag] = t.Field(i).Type
				names = append(names, tag)
			}
		}
		sort.Strings(names)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			key := joinPath(path, k)
			ft, ok := fields[k]
			if !ok {
				return fmt.Errorf("unknown key %q (line %d): remove it or fix its spelling; keys allowed here: %s",
					key, n.Content[i].Line, strings.Join(names, ", "))
			}
			if seen[k] {
				return fmt.Errorf("key %q appears twice (line %d): keep one", key, n.Content[i].Line)
			}
			seen[k] = true
			if err := checkKeys(n.Content[i+1], ft, key); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

var envRef = regexp.MustCompile(`\$\{([^}]*)\}`)

// expandEnv replaces ${VAR} in scalar values (never in keys). $${VAR} is a
// literal ${VAR}.
func expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool)) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := expandEnv(n.Content[i+1], joinPath(path, n.Content[i].Value), lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expandEnv(c, fmt.Sprintf("%s[%d]", path, i), lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		var firstErr error
		const escaped = "\x00dollar\x00"
		v := strings.ReplaceAll(n.Value, "$${", escaped)
		v = envRef.ReplaceAllStringFunc(v, func(m string) string {
			name := m[2 : len(m)-1]
			if !validEnvName(name) {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s (line %d): %q is not a valid environment variable reference", path, n.Line, m)
				}
				return m
			}
			val, ok := lookup(name)
			if !ok {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s (line %d): environment variable %s is not set: export it before starting, or write the value in the file", path, n.Line, name)
				}
				return m
			}
			return val
		})
		if firstErr != nil {
			return firstErr
		}
		n.Value = strings.ReplaceAll(v, escaped, "${")
		// An expanded value is text: a secret of digits stays a string.
		n.Tag = "!!str"
	}
	return nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || ('A' <= r && r <= 'Z') || ('a' <= r && r <= 'z') || (i > 0 && '0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "0.0.0.0:8080"
	}
	if c.Subject == "" {
		c.Subject = SubjectUnionID
	}
	if c.WeChat.OpenBaseURL == "" {
		c.WeChat.OpenBaseURL = "https://open.weixin.qq.com"
	}
	if c.WeChat.APIBaseURL == "" {
		c.WeChat.APIBaseURL = "https://api.weixin.qq.com"
	}
	if c.WeChat.Timeout == 0 {
		c.WeChat.Timeout = Duration(5 * time.Second)
	}
	if oa := c.WeChat.OfficialAccount; oa != nil && oa.Scope == "" {
		oa.Scope = ScopeUserInfo
		if c.Subject == SubjectUnionID || c.Subject == "" {
			oa.Scope = ScopeSilentFirst
		}
	}
	if c.WeChat.UserinfoRetryDeadline == 0 {
		c.WeChat.UserinfoRetryDeadline = Duration(3 * time.Second)
	}
	if c.WeChat.AvatarSize == nil {
		size := 132
		c.WeChat.AvatarSize = &size
	}
	if c.WeChat.QRTicketTTL == 0 {
		c.WeChat.QRTicketTTL = Duration(3 * time.Minute)
	}
	if c.WeChat.SnapshotForcePopup == nil {
		t := true
		c.WeChat.SnapshotForcePopup = &t
	}
	if c.Store.Type == "" {
		c.Store.Type = "memory"
	}
	if c.Tokens.CodeTTL == 0 {
		c.Tokens.CodeTTL = Duration(60 * time.Second)
	}
	if c.Tokens.AccessTokenTTL == 0 {
		c.Tokens.AccessTokenTTL = Duration(time.Hour)
	}
	if c.Tokens.IDTokenTTL == 0 {
		c.Tokens.IDTokenTTL = Duration(time.Hour)
	}
	if c.Tokens.RefreshIdleTTL == 0 {
		c.Tokens.RefreshIdleTTL = Duration(7 * 24 * time.Hour)
	}
	if c.Tokens.RefreshAbsoluteTTL == 0 {
		c.Tokens.RefreshAbsoluteTTL = Duration(30 * 24 * time.Hour)
	}
	if c.Tokens.RefreshReuseGrace == 0 {
		c.Tokens.RefreshReuseGrace = Duration(10 * time.Second)
	}
	if c.Login.PendingTTL == 0 {
		c.Login.PendingTTL = Duration(10 * time.Minute)
	}
	if c.Session.IdleTTL == 0 {
		c.Session.IdleTTL = Duration(8 * time.Hour)
	}
	if c.Session.AbsoluteTTL == 0 {
		c.Session.AbsoluteTTL = Duration(7 * 24 * time.Hour)
	}
	if c.Limits.TokenPerClient == (RateConfig{}) {
		c.Limits.TokenPerClient = RateConfig{Rate: 20, Burst: 40}
	}
	if c.Limits.AuthorizePerIP == (RateConfig{}) {
		// Generous: a whole office often shares one egress IP.
		c.Limits.AuthorizePerIP = RateConfig{Rate: 20, Burst: 100}
	}
	if c.Keys.PublishBeforeUse == 0 {
		c.Keys.PublishBeforeUse = Duration(time.Hour)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}

// Validate checks the whole configuration; each message names the key and the fix.
func (c *Config) Validate() error {
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
	if c.WeChat.Timeout.D() <= 0 || c.WeChat.Timeout.D() > time.Minute {
		return errors.New("wechat.timeout must be between 1ms and 1m (e.g. 5s)")
	}
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
		switch cl.WeChatFlow {
		case "", FlowOfficialAccount, FlowCrossDevice:
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
	}
	if c.Tokens.RefreshIdleTTL > c.Tokens.RefreshAbsoluteTTL {
		return errors.New("tokens.refresh_idle_ttl must not be longer than tokens.refresh_absolute_ttl")
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
	if c.Keys.Dir == "" {
		return errors.New("keys.dir is missing: set a directory for the signing keys (e.g. /var/lib/wechat-oidc/keys) so ID tokens stay valid across restarts")
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
		{"tokens.refresh_reuse_grace", c.Tokens.RefreshReuseGrace, time.Minute},
	} {
		if d.v.D() <= 0 || d.v.D() > d.max {
			return fmt.Errorf("%s must be positive and at most %s", d.key, d.max)
		}
	}
	if c.Session.IdleTTL.D() <= 0 || c.Session.AbsoluteTTL.D() < c.Session.IdleTTL.D() {
		return errors.New("session.idle_ttl must be positive and session.absolute_ttl at least as long")
	}
	for _, l := range []struct {
		key string
		r   RateConfig
	}{{"limits.token_per_client", c.Limits.TokenPerClient}, {"limits.authorize_per_ip", c.Limits.AuthorizePerIP}} {
		if l.r.Rate <= 0 || l.r.Burst < 1 {
			return fmt.Errorf("%s needs rate > 0 (requests per second) and burst >= 1", l.key)
		}
	}
	for g, subs := range c.Groups {
		if g == "" || len(subs) == 0 {
			return fmt.Errorf("groups.%s must be a non-empty list of subjects (sub values)", g)
		}
	}
	for i, p := range c.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil {
			return fmt.Errorf("trusted_proxies[%d] %q is not a CIDR (e.g. 10.0.0.0/8 or 127.0.0.1/32)", i, p)
		}
	}
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

var claimPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

// claimPlaceholders are the values a claim template may use.
var claimPlaceholders = map[string]bool{"{sub}": true, "{preferred_username}": true, "{name}": true, "{openid}": true, "{unionid}": true}

func validateClaimTemplate(t string) error {
	for _, m := range claimPlaceholder.FindAllString(t, -1) {
		if !claimPlaceholders[m] {
			return fmt.Errorf("unknown placeholder %s (use {sub}, {preferred_username}, {name}, {openid} or {unionid})", m)
		}
	}
	if strings.Count(t, "{") != len(claimPlaceholder.FindAllString(t, -1)) {
		return errors.New("unbalanced braces")
	}
	return nil
}
