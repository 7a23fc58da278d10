package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the configuration file as written (the YAML shape);
// config.example.yaml documents every key. The program uses Options, which
// File.Options derives after defaults and validation.
type File struct {
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
	// Directory is the durable people directory (SQLite or PostgreSQL).
	Directory DirectoryConfig `yaml:"directory"`
	// Access decides who may sign in.
	Access AccessConfig `yaml:"access"`
	Audit  AuditConfig  `yaml:"audit"`
	// Groups was the static subject → groups list. It is refused: the
	// directory is the one source of groups (wechat-oidc people import).
	Groups any       `yaml:"groups"`
	Log    LogConfig `yaml:"log"`
	// Metrics serves Prometheus metrics on a listener of its own.
	Metrics MetricsConfig `yaml:"metrics"`
	// Shutdown says how a stopping process drains.
	Shutdown ShutdownConfig `yaml:"shutdown"`
	// UI is what the pages show of the organisation running the service.
	UI UIConfig `yaml:"ui"`

	// privateNetworkHTTP lets the issuer use http on a private-network IP
	// address (AllowPrivateNetworkHTTP; dev mode only).
	privateNetworkHTTP bool
	// logoDataURL is ui.logo read and encoded by Validate.
	logoDataURL string
}

// UIConfig is what every page a person sees shows of who is asking: in
// WeChat's in-app browser there is no address bar, so the page itself must
// say whose sign-in it is.
type UIConfig struct {
	// Organization is the organisation's name, shown at the top of every
	// page (at most 64 characters). Empty: the issuer's host name.
	Organization string `yaml:"organization"`
	// Logo is a PNG or JPEG file (at most 64 KiB), read once at start and
	// embedded in every page. Empty: no logo.
	Logo string `yaml:"logo"`
}

type MetricsConfig struct {
	// Listen is host:port of the metrics listener (GET /metrics), apart
	// from the public port; empty: no metrics.
	Listen string `yaml:"listen"`
}

type ShutdownConfig struct {
	// DrainDelay: on SIGTERM, /readyz fails at once but requests are still
	// served this long, so that load balancers stop sending new ones first.
	DrainDelay Duration `yaml:"drain_delay"`
	// Timeout bounds how long in-flight requests may take to finish once
	// the listener is closed.
	Timeout Duration `yaml:"timeout"`
}

type SessionConfig struct {
	// IdleTTL ends an SSO session not used for this long.
	IdleTTL Duration `yaml:"idle_ttl"`
	// AbsoluteTTL ends an SSO session this long after the WeChat login, used or not.
	AbsoluteTTL Duration `yaml:"absolute_ttl"`
}

type LimitsConfig struct {
	// TokenPerClient limits the requests of an authenticated confidential
	// client to the token, revocation and introspection endpoints (per
	// client_id; public clients per client_id and IP). Only successful
	// authentications count, so strangers cannot use up a client's budget.
	TokenPerClient RateConfig `yaml:"token_per_client"`
	// TokenAuthFailures limits failed client authentications per claimed
	// client_id and client IP (secret guessing, RFC 6819 §5.1.4.2.3).
	TokenAuthFailures RateConfig `yaml:"token_auth_failures"`
	// AuthorizePerIP limits authorization requests per client IP.
	AuthorizePerIP RateConfig `yaml:"authorize_per_ip"`
	// LogoutPerIP limits requests to the logout endpoint per client IP.
	LogoutPerIP RateConfig `yaml:"logout_per_ip"`
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
	// SubjectPerson: sub is the directory's person id, stable across
	// re-bound WeChat accounts and upstreams.
	SubjectPerson = "person"
)

// Access modes (access.mode).
const (
	// AccessOpen admits anyone the upstream vouches for; a person record is
	// made at the first sign-in.
	AccessOpen = "open"
	// AccessApproval: an unknown person's first sign-in makes a pending
	// person, and nothing is issued until an administrator approves.
	AccessApproval = "approval"
	// AccessInvite admits only people who were invited or imported.
	AccessInvite = "invite"
)

// DirectoryConfig says where the people directory lives.
type DirectoryConfig struct {
	Type string `yaml:"type"` // sqlite (default) or postgres
	Path string `yaml:"path"` // sqlite: the database file (":memory:" for a throwaway one)
	URL  string `yaml:"url"`  // postgres: postgres://user:pass@host:5432/db?sslmode=verify-full
	// SignInTimeout bounds what one sign-in waits for the directory, all
	// its reads and writes together (a lock held by an import, a console
	// action or a backup; a database that does not answer). Past it the
	// sign-in gets the "try again shortly" page.
	SignInTimeout Duration `yaml:"sign_in_timeout"`
}

// AccessConfig decides who may sign in.
type AccessConfig struct {
	// Mode: approval (default), invite or open.
	Mode string `yaml:"mode"`
	// AdminGroup is the directory group whose members may use /admin.
	AdminGroup string `yaml:"admin_group"`
	// PendingTTL is how long a pending person's waiting page keeps the
	// original sign-in open for an administrator's approval.
	PendingTTL Duration `yaml:"pending_ttl"`
}

// AuditConfig keeps the audit trail.
type AuditConfig struct {
	// Retention: rows older than this are pruned in the background.
	Retention Duration `yaml:"retention"`
}

// Official Account scope modes (wechat.official_account.scope).
const (
	ScopeUserInfo    = "snsapi_userinfo" // = wechat.ScopeUserInfo (a test checks)
	ScopeBase        = "snsapi_base"     // = wechat.ScopeBase
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
	// VerifyFiles are WeChat's domain-verification files (MP_verify_*.txt),
	// name → content, served at the host root when the issuer is there.
	VerifyFiles map[string]string `yaml:"verify_files"`
	// CrossDevice allows cross-device QR sign-in (a desktop shows a QR
	// code, a phone signs in with the Official Account). Default true.
	CrossDevice *bool `yaml:"cross_device"`
	// CrossDeviceSSO gives the desktop an SSO session cookie after a
	// cross-device sign-in. Default false: the desktop gets a code for the
	// requesting application only (a relayed QR code yields no session).
	CrossDeviceSSO bool `yaml:"cross_device_sso"`
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
	// AllowedGroups: only people in one of these directory groups may sign
	// in to this client (empty: every admitted person).
	AllowedGroups []string `yaml:"allowed_groups"`
	// InitiateLoginURI is where the application starts a sign-in (OpenID
	// Connect Registration §2): an invitation for this client lands there.
	InitiateLoginURI string `yaml:"initiate_login_uri"`
	// IDTokenSignedResponseAlg signs this client's ID tokens with another
	// algorithm than keys.algorithm: RS256, ES256 or EdDSA.
	IDTokenSignedResponseAlg string `yaml:"id_token_signed_response_alg"`
	// CrossDevice: false refuses cross-device QR sign-in for this client
	// even when wechat.cross_device allows it. Empty: as wechat.cross_device.
	CrossDevice *bool `yaml:"cross_device"`
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
	Type   string            `yaml:"type"`
	Memory MemoryStoreConfig `yaml:"memory"`
	Redis  RedisConfig       `yaml:"redis"`
	// SnapshotFile (memory store only): on a graceful stop the store is
	// written there (mode 0600) and read back, expired entries dropped, at
	// the next start. Empty: a restart forgets sessions and tokens.
	SnapshotFile string `yaml:"snapshot_file"`
}

type MemoryStoreConfig struct {
	// MaxEntries bounds the number of entries the memory store holds; a
	// new entry beyond it is refused (the request gets "temporarily
	// unavailable") instead of growing the process without end.
	MaxEntries int `yaml:"max_entries"`
}

type RedisConfig struct {
	// URL is redis://[user:password@]host:port[/db], rediss:// for TLS.
	URL string `yaml:"url"`
	// CAFile is the PEM certificate of the CA that signed the server's
	// certificate (rediss:// with a private CA).
	CAFile string `yaml:"ca_file"`
	// Sentinel finds the master through Redis Sentinel.
	Sentinel *SentinelConfig `yaml:"sentinel"`
	Prefix   string          `yaml:"prefix"`
}

type SentinelConfig struct {
	Master   string   `yaml:"master"`
	Addrs    []string `yaml:"addrs"`
	Password string   `yaml:"password"`
}

type KeysConfig struct {
	// Dir is a key directory. Empty with store.type redis: the keys live in
	// the shared store, encrypted with EncryptionKey.
	Dir string `yaml:"dir"`
	// EncryptionKey seals the private keys kept in the shared store: 32
	// random bytes in standard base64 (openssl rand -base64 32).
	EncryptionKey string `yaml:"encryption_key"`
	// Algorithm is the default signing algorithm: RS256, ES256 or EdDSA.
	Algorithm string `yaml:"algorithm"`
	// RotateEvery rotates the signing keys automatically; 0: never.
	RotateEvery Duration `yaml:"rotate_every"`
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
	// MaxPendingPerIP caps the sign-ins started from one client network
	// (an IPv4 address, an IPv6 /64) and not finished yet.
	MaxPendingPerIP int `yaml:"max_pending_per_ip"`
	// MaxPending caps the sign-ins started and not finished yet, in total.
	MaxPending int `yaml:"max_pending"`
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

// Load reads, expands, parses, defaults and validates a config file and
// returns the options the program runs with.
func Load(path string) (*Options, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(raw, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return f.Options(), nil
}

// Parse parses YAML config text, applies the defaults and validates it.
// ${VAR} in any value expands from lookup; an unset variable is an error
// naming it and the key.
func Parse(raw []byte, lookup func(string) (string, bool)) (*File, error) {
	cfg, redact, err := decode(raw, lookup)
	if err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, redact(err)
	}
	return cfg, nil
}

// decode parses YAML config text into a File: unknown keys refused, ${VAR}
// expanded from lookup, nothing defaulted or validated. redact replaces
// every expanded value in an error message by its ${NAME}.
func decode(raw []byte, lookup func(string) (string, bool)) (*File, func(error) error, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, errors.New("the file is empty: at least issuer, wechat.official_account and clients are required (see config.example.yaml)")
		}
		if regexp.MustCompile(`\{[^}\n]*\$\{`).Match(raw) {
			return nil, nil, fmt.Errorf("not valid YAML: %v (inside { ... } a ${VAR} must be quoted: app_secret: \"${VAR}\")", err)
		}
		return nil, nil, fmt.Errorf("not valid YAML: %v", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, nil, errors.New("the top level must be a mapping of keys (issuer:, wechat:, clients:, ...)")
	}
	if err := checkKeys(root.Content[0], reflect.TypeOf(File{}), ""); err != nil {
		return nil, nil, err
	}
	// Values that came from the environment may be secrets: no error below
	// may quote them. Each is replaced by its ${NAME} in error messages.
	recording, redact := redactingLookup(lookup)
	if err := expandEnv(root.Content[0], "", recording); err != nil {
		return nil, nil, err
	}
	if err := checkValues(root.Content[0], reflect.TypeOf(File{}), ""); err != nil {
		return nil, nil, redact(err)
	}
	var cfg File
	if err := root.Content[0].Decode(&cfg); err != nil {
		return nil, nil, redact(fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	return &cfg, redact, nil
}

// redactingLookup wraps lookup so that it records every value it returns;
// redact replaces each recorded value in an error message by its ${NAME}:
// values from the environment may be secrets.
func redactingLookup(lookup func(string) (string, bool)) (func(string) (string, bool), func(error) error) {
	expanded := map[string]string{}
	recording := func(name string) (string, bool) {
		v, ok := lookup(name)
		if ok && v != "" {
			expanded[v] = "${" + name + "}"
		}
		return v, ok
	}
	redact := func(err error) error {
		msg := err.Error()
		for v, ref := range expanded {
			if len(v) < 6 {
				// Too short to replace wherever it occurs without mangling
				// the message's own words: only where a message quotes it.
				msg = strings.ReplaceAll(msg, strconv.Quote(v), ref)
				continue
			}
			msg = strings.ReplaceAll(msg, v, ref)
			// yaml.v3 quotes at most the first 7 characters of a value it
			// cannot decode ("Zq7xK2m...").
			if len(v) > 7 {
				msg = strings.ReplaceAll(msg, v[:7]+"...", ref)
			}
		}
		return errors.New(msg)
	}
	return recording, redact
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
			if why, retired := retiredKeys[key]; retired && !ok {
				return fmt.Errorf("%s (line %d) is no longer supported: %s", key, n.Content[i].Line, why)
			}
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

// retiredKeys are keys of earlier versions, each with what replaces it.
var retiredKeys = map[string]string{
	"store.redis.addr":     redisURLHelp,
	"store.redis.username": redisURLHelp,
	"store.redis.password": redisURLHelp,
	"store.redis.db":       redisURLHelp,
}

const redisURLHelp = "write the server as store.redis.url: redis://[user:password@]host:port[/db] (rediss:// for TLS), e.g. url: \"redis://:${REDIS_PASSWORD}@redis.internal:6379/0\""

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
