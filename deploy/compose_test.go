package deploy_test

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wechat-oidc/wechat-oidc/bridge"
	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

type composeHealthcheck struct {
	Test    []string `yaml:"test"`
	Disable bool     `yaml:"disable"`
}

type composeService struct {
	Image       string              `yaml:"image"`
	Build       map[string]string   `yaml:"build"`
	Command     []string            `yaml:"command"`
	Environment map[string]string   `yaml:"environment"`
	EnvFile     string              `yaml:"env_file"`
	Volumes     []string            `yaml:"volumes"`
	Expose      []string            `yaml:"expose"`
	Ports       []string            `yaml:"ports"`
	Healthcheck *composeHealthcheck `yaml:"healthcheck"`
}

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
}

const composeDir = "compose"

func loadCompose(t *testing.T) (composeFile, []byte) {
	t.Helper()
	raw := readFile(t, filepath.Join(composeDir, "docker-compose.yml"))
	var f composeFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f, raw
}

// productionServices is the commented production variant of
// docker-compose.yml (between "# production:begin" and "# production:end"),
// uncommented and parsed.
func productionServices(t *testing.T, raw []byte) map[string]composeService {
	t.Helper()
	var block strings.Builder
	in := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		switch strings.TrimSpace(line) {
		case "# production:begin":
			in = true
			continue
		case "# production:end":
			in = false
			continue
		}
		// The service definition: "  # " followed by YAML; prose lines
		// before it are skipped until the first key line.
		if rest, ok := strings.CutPrefix(line, "  # "); in && ok && (block.Len() > 0 || strings.HasSuffix(rest, ":") && !strings.HasPrefix(rest, " ")) {
			block.WriteString(rest + "\n")
		}
	}
	services := map[string]composeService{}
	if err := yaml.Unmarshal([]byte(block.String()), &services); err != nil {
		t.Fatalf("the production variant does not parse once uncommented: %v\n%s", err, block.String())
	}
	if len(services) == 0 {
		t.Fatal("docker-compose.yml has no production variant between # production:begin and # production:end")
	}
	return services
}

// mountedFile is the host file mounted at path in s ("./x:path[:ro]").
func mountedFile(t *testing.T, name string, s composeService, path string) string {
	t.Helper()
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && parts[1] == path {
			return filepath.Join(composeDir, parts[0])
		}
	}
	t.Fatalf("service %s does not mount a file at %s (volumes %v)", name, path, s.Volumes)
	return ""
}

// caddySites reads the Caddyfile's site blocks (comments skipped): site
// address → reverse_proxy upstream.
func caddySites(t *testing.T) map[string]string {
	t.Helper()
	sites := map[string]string{}
	site := ""
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(composeDir, "Caddyfile"))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasSuffix(line, "{") && site == "":
			site = strings.TrimSpace(strings.TrimSuffix(line, "{"))
		case line == "}":
			site = ""
		case strings.HasPrefix(line, "reverse_proxy ") && site != "":
			sites[site] = strings.Fields(line)[1]
		}
	}
	return sites
}

// TestComposeKit: deploy/compose/docker-compose.yml runs what the program
// has. The bridge's config validates with the environment compose gives it
// and has exactly the warnings its comment owns up to; the simulator's apps,
// secrets and callback host are the config's; oauth2-proxy's client, secret,
// redirect URI and endpoint URLs are the bridge's routes; Redis and
// PostgreSQL credentials agree; Caddy sends each public host to the service
// and port that serves it; every command is a real subcommand.
func TestComposeKit(t *testing.T) {
	f, _ := loadCompose(t)
	svc := func(name string) composeService {
		t.Helper()
		s, ok := f.Services[name]
		if !ok {
			t.Fatalf("docker-compose.yml has no service %s", name)
		}
		return s
	}
	bridgeSvc, sim, proxy, redis, pg, caddy := svc("wechat-oidc"), svc("wechat-sim"), svc("oauth2-proxy"), svc("redis"), svc("postgres"), svc("caddy")
	for _, name := range []string{"wechat-oidc", "wechat-sim"} {
		requireSubcommand(t, name+" command", f.Services[name].Command)
	}
	if ctx := bridgeSvc.Build["context"]; ctx == "" {
		t.Error("the wechat-oidc service does not build the image")
	} else if _, err := os.Stat(filepath.Join(composeDir, ctx, bridgeSvc.Build["dockerfile"])); err != nil {
		t.Errorf("build: %v", err)
	}
	if sim.Image != bridgeSvc.Image {
		t.Errorf("the simulator runs image %q, the bridge %q: the same binary serves both", sim.Image, bridgeSvc.Image)
	}

	// The bridge's configuration, with the environment compose gives it.
	configPath, _ := flagValue(bridgeSvc.Command, "config")
	cfgFile := mountedFile(t, "wechat-oidc", bridgeSvc, configPath)
	raw := readFile(t, cfgFile)
	opt := parseConfig(t, cfgFile, raw, bridgeSvc.Environment)
	if got, want := warningKeys(opt), []string{"store.redis.url", "directory.url", "access.mode"}; !slices.Equal(got, want) {
		t.Errorf("%s warns about %v, want %v (as its comment says)", cfgFile, got, want)
	}
	listenPort := port(t, opt.Listen)
	checkHealthcheck(t, "wechat-oidc", bridgeSvc.Healthcheck, listenPort, issuerPath(t, opt.Issuer))

	// The simulator: the config's apps with the same secrets, and the
	// issuer's host as the only callback host.
	apps := map[string]*config.WeChatApp{"official_account": opt.WeChat.OfficialAccount, "website_app": opt.WeChat.WebsiteApp, "mini_program": opt.WeChat.MiniProgram}
	simApps := flagValues(sim.Command, "app")
	for kind, app := range apps {
		if app == nil {
			continue
		}
		found := false
		for _, a := range simApps {
			parts := strings.Split(a, ":")
			if len(parts) == 3 && parts[0] == kind && parts[1] == app.AppID {
				found = true
				if sim.Environment[parts[2]] != app.AppSecret {
					t.Errorf("simulator app %s reads its secret from %s, which differs from the bridge's app_secret", app.AppID, parts[2])
				}
			}
		}
		if !found {
			t.Errorf("the simulator has no --app %s:%s:... (it has %v)", kind, app.AppID, simApps)
		}
	}
	if hosts := flagValues(sim.Command, "callback-host"); !slices.Equal(hosts, []string{mustURL(t, opt.Issuer).Host}) {
		t.Errorf("simulator --callback-host %v, want the issuer's host only", hosts)
	}
	simListen, _ := flagValue(sim.Command, "listen")
	if api := mustURL(t, opt.WeChat.APIBaseURL); api.Hostname() != "wechat-sim" || api.Port() != port(t, simListen) {
		t.Errorf("wechat.api_base_url %s does not reach the wechat-sim service on its --listen port %s", opt.WeChat.APIBaseURL, simListen)
	}

	// Caddy: the issuer, the simulator's browser side and the app.
	sites := caddySites(t)
	mountedFile(t, "caddy", caddy, "/etc/caddy/Caddyfile")
	for _, want := range []struct{ public, upstream string }{
		{mustURL(t, opt.Issuer).Host, net.JoinHostPort("wechat-oidc", listenPort)},
		{mustURL(t, opt.WeChat.OpenBaseURL).Host, net.JoinHostPort("wechat-sim", port(t, simListen))},
	} {
		if sites[want.public] != want.upstream {
			t.Errorf("Caddy sends %s to %q, want %s (sites %v)", want.public, sites[want.public], want.upstream, sites)
		}
	}

	checkOAuth2Proxy(t, proxy, opt, listenPort, sites)

	// Redis and PostgreSQL: the services the URLs name, with the credentials given to them.
	ru := mustURL(t, opt.Store.Redis.URL)
	if ru.Hostname() != "redis" {
		t.Errorf("store.redis.url names host %s, not the redis service", ru.Hostname())
	}
	if pw, _ := ru.User.Password(); pw == "" || pw != redis.Environment["REDIS_PASSWORD"] || !strings.Contains(strings.Join(redis.Command, " "), "$$REDIS_PASSWORD") {
		t.Error("store.redis.url's password is not the one the redis service requires ($REDIS_PASSWORD)")
	}
	pu := mustURL(t, opt.Directory.URL)
	pw, _ := pu.User.Password()
	if pu.Hostname() != "postgres" || pu.User.Username() != pg.Environment["POSTGRES_USER"] || pw != pg.Environment["POSTGRES_PASSWORD"] ||
		strings.TrimPrefix(pu.Path, "/") != pg.Environment["POSTGRES_DB"] {
		t.Errorf("directory.url does not match the postgres service's user, password, database or name")
	}
}

func checkHealthcheck(t *testing.T, name string, h *composeHealthcheck, listenPort, prefix string) {
	t.Helper()
	if h == nil || len(h.Test) < 3 || h.Test[0] != "CMD" {
		t.Errorf("%s: want a healthcheck [CMD, /usr/local/bin/wechat-oidc, healthcheck, ...] (the image has no shell)", name)
		return
	}
	if h.Test[1] != "/usr/local/bin/wechat-oidc" {
		t.Errorf("%s healthcheck runs %s, the image's binary is /usr/local/bin/wechat-oidc", name, h.Test[1])
	}
	requireSubcommand(t, name+" healthcheck", h.Test[2:])
	if u, ok := flagValue(h.Test[2:], "url"); ok {
		pu := mustURL(t, u)
		if pu.Port() != listenPort || (pu.Path != prefix+bridge.PathReadyz && pu.Path != prefix+bridge.PathHealthz) {
			t.Errorf("%s healthcheck probes %s: want port %s and %s or %s", name, u, listenPort, bridge.PathHealthz, bridge.PathReadyz)
		}
	}
}

func checkOAuth2Proxy(t *testing.T, proxy composeService, opt *config.Options, listenPort string, sites map[string]string) {
	t.Helper()
	flag := func(name string) string {
		t.Helper()
		v, ok := flagValue(proxy.Command, name)
		if !ok {
			t.Errorf("oauth2-proxy has no --%s", name)
		}
		return v
	}
	internal := "http://" + net.JoinHostPort("wechat-oidc", listenPort) + issuerPath(t, opt.Issuer)
	for _, want := range []struct{ flag, value string }{
		{"oidc-issuer-url", opt.Issuer},
		{"login-url", strings.TrimSuffix(opt.Issuer, "/") + oidc.PathAuthorize},
		{"redeem-url", internal + oidc.PathToken},
		{"oidc-jwks-url", internal + oidc.PathJWKS},
	} {
		if got := flag(want.flag); got != want.value {
			t.Errorf("oauth2-proxy --%s=%s, want %s", want.flag, got, want.value)
		}
	}
	id, redirect := flag("client-id"), flag("redirect-url")
	var client *config.Client
	for i := range opt.Clients {
		if opt.Clients[i].ID == id {
			client = &opt.Clients[i]
		}
	}
	if client == nil {
		t.Fatalf("oauth2-proxy's --client-id %s is not a client of the bridge", id)
	}
	if !slices.Contains(client.RedirectURIs, redirect) {
		t.Errorf("oauth2-proxy's --redirect-url %s is not among %s's redirect_uris %v", redirect, id, client.RedirectURIs)
	}
	if s := proxy.Environment["OAUTH2_PROXY_CLIENT_SECRET"]; s == "" || s != client.Secret {
		t.Errorf("oauth2-proxy's OAUTH2_PROXY_CLIENT_SECRET is not the secret of client %s", id)
	}
	if n := len(proxy.Environment["OAUTH2_PROXY_COOKIE_SECRET"]); n != 16 && n != 24 && n != 32 {
		t.Errorf("OAUTH2_PROXY_COOKIE_SECRET has %d bytes; oauth2-proxy wants 16, 24 or 32", n)
	}
	if client.RequirePKCE && flag("code-challenge-method") != "S256" {
		t.Errorf("client %s requires PKCE: oauth2-proxy needs --code-challenge-method=S256", id)
	}
	if client.Claims.Email == "" {
		t.Errorf("oauth2-proxy requires an email: client %s needs claims.email", id)
	}
	if sites[mustURL(t, redirect).Host] != net.JoinHostPort("oauth2-proxy", port(t, flag("http-address"))) {
		t.Errorf("Caddy does not send %s to oauth2-proxy's --http-address", mustURL(t, redirect).Host)
	}
}

// TestComposeProductionVariant: the commented production variant serves
// config.yaml with secrets from .env; config.yaml validates with every
// variable .env.example lists set to a dummy, and its only warnings are
// Redis and PostgreSQL without TLS on the compose network.
func TestComposeProductionVariant(t *testing.T) {
	_, raw := loadCompose(t)
	prod := productionServices(t, raw)
	s, ok := prod["wechat-oidc"]
	if !ok {
		t.Fatalf("the production variant has no wechat-oidc service")
	}
	requireSubcommand(t, "production command", s.Command)
	if s.EnvFile != ".env" {
		t.Errorf("the production variant reads env_file %q, want .env (secrets from the environment)", s.EnvFile)
	}
	configPath, _ := flagValue(s.Command, "config")
	cfgFile := mountedFile(t, "wechat-oidc (production)", s, configPath)
	if filepath.Base(cfgFile) != "config.yaml" {
		t.Errorf("the production variant mounts %s, want config.yaml", cfgFile)
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join(composeDir, ".env.example"))))
	for sc.Scan() {
		if k, _, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = dummyValue
		}
	}
	cfgRaw := readFile(t, cfgFile)
	for _, v := range variables(string(cfgRaw)) {
		if _, ok := env[v]; !ok {
			t.Errorf("%s uses ${%s}, which .env.example does not list", cfgFile, v)
		}
	}
	opt := parseConfig(t, cfgFile, cfgRaw, env)
	if got, want := warningKeys(opt), []string{"store.redis.url", "directory.url"}; !slices.Equal(got, want) {
		t.Errorf("%s warns about %v, want only %v", cfgFile, got, want)
	}
	if opt.Access.Mode == config.AccessOpen {
		t.Error("the production config admits everyone")
	}
	checkHealthcheck(t, "wechat-oidc (production)", s.Healthcheck, port(t, opt.Listen), issuerPath(t, opt.Issuer))
}
