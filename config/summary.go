package config

import (
	"fmt"
	"io"
	"net/url"
	"strings"
)

// WriteSummary describes what a validated configuration will run, for an
// operator reading it before a start (wechat-oidc check-config): the
// issuer, the WeChat flows, who may sign in, where state and keys live, and
// each client with its redirect URIs and access rule. No secret is written:
// URLs that may carry a password appear as their host.
func (o *Options) WriteSummary(w io.Writer) {
	line := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-11s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	line("issuer", "%s", o.Issuer)
	listen := o.Listen
	if o.Metrics.Listen != "" {
		listen += " (metrics on " + o.Metrics.Listen + ")"
	}
	line("listen", "%s", listen)
	line("subject", "%s", o.Subject)
	fmt.Fprintln(w, "flows:")
	for _, f := range o.flowSummary() {
		fmt.Fprintf(w, "  %-17s %s\n", f[0], f[1])
	}
	line("access", "%s", o.accessSummary())
	line("store", "%s", o.storeSummary())
	line("directory", "%s", o.directorySummary())
	line("keys", "%s", o.keysSummary())
	fmt.Fprintf(w, "clients (%d):\n", len(o.Clients))
	for _, cl := range o.Clients {
		name := cl.ID
		if cl.Name != "" {
			name += " (" + cl.Name + ")"
		}
		fmt.Fprintf(w, "  %s\n", name)
		fmt.Fprintf(w, "    redirect_uris: %s\n", strings.Join(cl.RedirectURIs, ", "))
		rule := "every admitted person"
		if len(cl.AllowedGroups) > 0 {
			rule = "members of " + strings.Join(cl.AllowedGroups, ", ")
		}
		fmt.Fprintf(w, "    may sign in:   %s\n", rule)
		if cl.WeChatFlow != "" {
			fmt.Fprintf(w, "    wechat_flow:   %s\n", cl.WeChatFlow)
		}
	}
}

// flowSummary: each WeChat flow, on or off, with what it is for.
func (o *Options) flowSummary() [][2]string {
	oa := o.WeChat.OfficialAccount
	flows := [][2]string{{"official account", fmt.Sprintf("on: %s, scope %s (inside WeChat's browser)", oa.AppID, oa.Scope)}}
	cross := "on: desktop browsers scan a QR with WeChat (the Official Account)"
	if a := o.WeChat.WebsiteApp; a != nil {
		flows = append(flows, [2]string{"website app", fmt.Sprintf("on: %s (desktop browsers: QR on WeChat's page)", a.AppID)})
		cross = "on: for clients with wechat_flow: cross_device or ?wechat_flow=cross_device (QR for the Official Account)"
	} else {
		flows = append(flows, [2]string{"website app", "off (no wechat.website_app)"})
	}
	var noCross []string
	for _, cl := range o.Clients {
		if !cl.CrossDevice {
			noCross = append(noCross, cl.ID)
		}
	}
	switch {
	case !o.WeChat.CrossDevice:
		cross = "off (wechat.cross_device: false)"
	case len(noCross) > 0:
		cross += "; not for " + strings.Join(noCross, ", ")
	}
	if o.WeChat.CrossDevice && o.WeChat.CrossDeviceSSO {
		cross += "; the desktop gets an SSO session too (cross_device_sso)"
	}
	flows = append(flows, [2]string{"cross-device", cross})
	if a := o.WeChat.MiniProgram; a != nil {
		var ids []string
		for _, cl := range o.Clients {
			if cl.MiniProgram {
				ids = append(ids, cl.ID)
			}
		}
		allowed := "no client has mini_program: true"
		if len(ids) > 0 {
			allowed = "for " + strings.Join(ids, ", ")
		}
		flows = append(flows, [2]string{"mini program", fmt.Sprintf("on: %s, code exchange at the token endpoint %s", a.AppID, allowed)})
	} else {
		flows = append(flows, [2]string{"mini program", "off (no wechat.mini_program)"})
	}
	return flows
}

func (o *Options) accessSummary() string {
	what := map[string]string{
		AccessOpen:     "anyone with a WeChat account is admitted",
		AccessApproval: "a new person waits for an administrator",
		AccessInvite:   "only invited or imported people",
	}[o.Access.Mode]
	return fmt.Sprintf("%s (%s); administrators: group %s at %s/admin", o.Access.Mode, what, o.Access.AdminGroup, strings.TrimSuffix(o.Issuer, "/"))
}

func (o *Options) storeSummary() string {
	s := o.Store
	if s.Type != "redis" {
		if s.SnapshotFile != "" {
			return "memory, one instance only; kept across a graceful restart in " + s.SnapshotFile + " (a crash signs everyone out)"
		}
		return "memory, one instance only; a restart signs everyone out (store.snapshot_file keeps it across a graceful one)"
	}
	u, err := url.Parse(s.Redis.URL)
	if err != nil {
		return "redis"
	}
	tls := "no TLS"
	if u.Scheme == "rediss" {
		tls = "TLS"
	}
	if sn := s.Redis.Sentinel; sn != nil {
		return fmt.Sprintf("redis, master %q through sentinels %s (%s)", sn.Master, strings.Join(sn.Addrs, ", "), tls)
	}
	prefix := ""
	if s.Redis.Prefix != "" {
		prefix = fmt.Sprintf(", key prefix %q", s.Redis.Prefix)
	}
	return fmt.Sprintf("redis at %s, database %s (%s)%s", u.Host, redisDB(u), tls, prefix)
}

func redisDB(u *url.URL) string {
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		return db
	}
	return "0"
}

func (o *Options) directorySummary() string {
	d := o.Directory
	if d.Type != "postgres" {
		return "sqlite " + d.Path + " (one instance)"
	}
	hosts, sslmode := postgresTarget(d.URL)
	where := "the local socket"
	if len(hosts) > 0 {
		where = strings.Join(hosts, ", ")
	}
	if sslmode == "" {
		sslmode = "not set (prefer)"
	}
	return fmt.Sprintf("postgres at %s, sslmode %s", where, sslmode)
}

func (o *Options) keysSummary() string {
	k := o.Keys
	where := "in " + k.Dir
	if k.Shared {
		where = "in the shared store (Redis), sealed with keys.encryption_key"
	}
	rotate := "by hand (wechat-oidc keys rotate)"
	if k.RotateEvery > 0 {
		rotate = "every " + k.RotateEvery.String()
	}
	return fmt.Sprintf("%s; algorithms %s; rotated %s, a new key signs %s after it is published",
		where, strings.Join(k.Algorithms, ", "), rotate, k.PublishBeforeUse)
}
