package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
)

// Warning is a setting that is valid, so the server starts with it, but is
// probably not what the operator meant (wechat-oidc check-config prints
// them; --strict refuses them).
type Warning struct {
	// Key is the key path, written as in error messages:
	// clients[1] (wiki).allowed_groups.
	Key string
	// Message says what is wrong and what it means for the deployment.
	Message string
	// Fix says what to change.
	Fix string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s: %s; fix: %s", w.Key, w.Message, w.Fix)
}

// Warnings returns the warnings of a validated configuration, in the
// order of the file's sections. None of them quotes a secret: URLs that may
// carry a password are described by their host.
func (o *Options) Warnings() []Warning {
	var ws []Warning
	for _, check := range []func() []Warning{
		o.issuerWarnings, o.appIDWarnings, o.redirectURIWarnings, o.storeWarnings,
		o.directoryWarnings, o.accessWarnings, o.allowedGroupsWarnings,
	} {
		ws = append(ws, check()...)
	}
	return ws
}

func (o *Options) issuerWarnings() []Warning {
	var ws []Warning
	u, err := url.Parse(o.Issuer)
	if err != nil {
		return nil // validated
	}
	if strings.HasSuffix(u.Path, "/") {
		ws = append(ws, Warning{
			Key: "issuer",
			Message: fmt.Sprintf("%q ends with a slash: relying parties compare the issuer byte for byte (OpenID Connect Core 1.0 §3.1.3.7), "+
				"and most are configured without it, so their ID token check fails", o.Issuer),
			Fix: fmt.Sprintf("write issuer: %s, and the same in every relying party", strings.TrimRight(o.Issuer, "/")),
		})
	}
	if u.Scheme == "http" {
		ws = append(ws, Warning{
			Key: "issuer",
			Message: fmt.Sprintf("%q uses http: allowed on a loopback host for development only; WeChat, phones and relying parties "+
				"on other machines cannot reach it, and tokens would travel in clear text (OpenID Connect Core 1.0 §16.17)", o.Issuer),
			Fix: "serve the bridge over https (a TLS-terminating reverse proxy is enough) and write issuer: https://your.host",
		})
	}
	return ws
}

// weChatAppID is the shape of every WeChat app id (Official Account, Open
// Platform website app, mini program): "wx" and 16 hexadecimal digits.
var (
	weChatAppID     = regexp.MustCompile(`^wx[0-9a-f]{16}$`)
	weChatAppSecret = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

func (o *Options) appIDWarnings() []Warning {
	var ws []Warning
	for _, a := range []struct {
		key, where string
		app        *WeChatApp
	}{
		{"wechat.official_account.app_id", "the Official Account admin (设置与开发 → 基本配置 → AppID)", o.WeChat.OfficialAccount},
		{"wechat.website_app.app_id", "the Open Platform (管理中心 → 网站应用 → AppID)", o.WeChat.WebsiteApp},
		{"wechat.mini_program.app_id", "the mini program admin (开发 → 开发管理 → 开发设置 → AppID)", o.WeChat.MiniProgram},
	} {
		if a.app == nil || weChatAppID.MatchString(a.app.AppID) {
			continue
		}
		// The value is not quoted: a pasted AppSecret must not be printed.
		msg := fmt.Sprintf("does not look like a WeChat app id (wx followed by 16 lowercase hexadecimal digits; this one has %d characters)", len(a.app.AppID))
		if weChatAppSecret.MatchString(a.app.AppID) {
			msg = "looks like an AppSecret (32 hexadecimal digits), not an app id: the secret belongs in app_secret, preferably as ${VAR}; rotate it if this file was shared"
		}
		ws = append(ws, Warning{Key: a.key, Message: msg, Fix: "copy the AppID from " + a.where})
	}
	return ws
}

func (o *Options) redirectURIWarnings() []Warning {
	var ws []Warning
	for i, cl := range o.Clients {
		for j, r := range cl.RedirectURIs {
			u, err := url.Parse(r)
			if err != nil || u.Scheme != "http" || isLoopbackHost(u.Hostname()) {
				continue
			}
			ws = append(ws, Warning{
				Key: fmt.Sprintf("clients[%d] (%s).redirect_uris[%d]", i, cl.ID, j),
				Message: fmt.Sprintf("%q is http on a non-loopback host: the authorization code travels in clear text "+
					"and can be stolen on the way (RFC 6749 §3.1.2.1: the redirection endpoint should require TLS)", r),
				Fix: "serve the application over https and register its https callback URL",
			})
		}
	}
	return ws
}

func (o *Options) storeWarnings() []Warning {
	if o.Store.Type != "redis" {
		return nil
	}
	u, err := url.Parse(o.Store.Redis.URL)
	if err != nil || u.Scheme != "redis" {
		return nil // validated; rediss:// is TLS
	}
	hosts := []string{u.Hostname()}
	if s := o.Store.Redis.Sentinel; s != nil {
		hosts = nil
		for _, a := range s.Addrs {
			h, _, _ := net.SplitHostPort(a) // validated
			hosts = append(hosts, h)
		}
	}
	remote := remoteHosts(hosts)
	if len(remote) == 0 {
		return nil
	}
	what := "the Redis password, sessions, refresh tokens and pending sign-ins"
	if o.Keys.Shared {
		what = "the Redis password, sessions, refresh tokens, pending sign-ins and the (sealed) signing keys"
	}
	return []Warning{{
		Key: "store.redis.url",
		Message: fmt.Sprintf("redis:// reaches %s without TLS: %s cross the network in clear text",
			strings.Join(remote, ", "), what),
		Fix: "use rediss:// (with store.redis.ca_file for a private CA), or run Redis on this host",
	}}
}

func (o *Options) directoryWarnings() []Warning {
	if o.Directory.Type != "postgres" {
		return nil
	}
	hosts, sslmode := postgresTarget(o.Directory.URL)
	remote := remoteHosts(hosts)
	if len(remote) == 0 {
		return nil
	}
	switch sslmode {
	case "", "disable", "allow", "prefer":
	default:
		return nil // require, verify-ca, verify-full
	}
	said := "no sslmode (the driver's default is prefer)"
	if sslmode != "" {
		said = "sslmode=" + sslmode
	}
	return []Warning{{
		Key: "directory.url",
		Message: fmt.Sprintf("%s to %s: the connection may be unencrypted, or encrypted to a server nobody checked; "+
			"the database password, people's names, emails, groups and the audit trail cross the network", said, strings.Join(remote, ", ")),
		Fix: "add sslmode=verify-full to the URL (with sslrootcert=/path/to/ca.pem for a private CA), or run PostgreSQL on this host",
	}}
}

// postgresTarget reads the hosts and the sslmode of a PostgreSQL connection
// string, a URL (postgres://user:pw@host:5432,host2/db?sslmode=...) or
// key=value pairs (host=db sslmode=require). An empty host list means the
// default, a local socket.
func postgresTarget(dsn string) (hosts []string, sslmode string) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		// Not url.Parse: a multi-host authority (h1:5432,h2:5432) is not a
		// URL host. The authority is what follows :// up to the path.
		rest := dsn[strings.Index(dsn, "://")+3:]
		authority, tail, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			authority = authority[at+1:]
		}
		for _, hp := range strings.Split(authority, ",") {
			if h := hostOnly(hp); h != "" {
				hosts = append(hosts, h)
			}
		}
		if _, query, ok := strings.Cut(tail, "?"); ok {
			q, _ := url.ParseQuery(query)
			if h := q.Get("host"); h != "" {
				hosts = strings.Split(h, ",")
			}
			sslmode = q.Get("sslmode")
		}
		return hosts, sslmode
	}
	for _, kv := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(kv, "=")
		v = strings.Trim(v, "'")
		switch k {
		case "host", "hostaddr":
			hosts = append(hosts, strings.Split(v, ",")...)
		case "sslmode":
			sslmode = v
		}
	}
	return hosts, sslmode
}

// hostOnly is the host of host[:port] or [v6]:port.
func hostOnly(hp string) string {
	if h, _, err := net.SplitHostPort(hp); err == nil {
		return h
	}
	return strings.Trim(hp, "[]")
}

// remoteHosts are the hosts that are reached over a network: neither a
// loopback address, nor localhost, nor a Unix socket directory.
func remoteHosts(hosts []string) []string {
	var remote []string
	for _, h := range hosts {
		if h == "" || strings.HasPrefix(h, "/") || strings.HasPrefix(h, "@") || isLoopbackHost(h) {
			continue
		}
		remote = append(remote, h)
	}
	return remote
}

func (o *Options) accessWarnings() []Warning {
	if o.Access.Mode != AccessOpen || len(o.Clients) == 0 {
		return nil
	}
	var open []string
	for _, cl := range o.Clients {
		if len(cl.AllowedGroups) == 0 {
			open = append(open, cl.ID)
		}
	}
	msg := "anyone with a WeChat account can sign in to every client"
	switch {
	case len(open) == 0:
		msg = "anyone with a WeChat account is admitted and gets a person record at the first sign-in; " +
			"only the clients' allowed_groups keep them out"
	case len(open) < len(o.Clients):
		msg = "anyone with a WeChat account can sign in to every client without allowed_groups: " + strings.Join(open, ", ")
	}
	return []Warning{{
		Key:     "access.mode",
		Message: "open: " + msg,
		Fix:     "use access.mode: approval (an administrator admits each new person) or invite, or give every client allowed_groups",
	}}
}

func (o *Options) allowedGroupsWarnings() []Warning {
	var limited, open []int
	for i, cl := range o.Clients {
		if len(cl.AllowedGroups) > 0 {
			limited = append(limited, i)
		} else {
			open = append(open, i)
		}
	}
	if len(limited) == 0 {
		return nil
	}
	var limitedIDs []string
	for _, i := range limited {
		limitedIDs = append(limitedIDs, o.Clients[i].ID)
	}
	var ws []Warning
	for _, i := range open {
		cl := o.Clients[i]
		ws = append(ws, Warning{
			Key: fmt.Sprintf("clients[%d] (%s).allowed_groups", i, cl.ID),
			Message: fmt.Sprintf("is empty while other clients have allowed_groups (%s): every admitted person may sign in to %s",
				strings.Join(limitedIDs, ", "), cl.ID),
			Fix: fmt.Sprintf("add allowed_groups: [a-group] to %s if only some people should use it", cl.ID),
		})
	}
	return ws
}
