package bridge

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// The Gitea harness: a real Gitea (v1.24.6, built by scripts/install-gitea.sh)
// with an OpenID Connect auth source on the bridge, set up the way
// docs/integrations/gitea.md tells an operator to:
//
//	gitea migrate
//	gitea admin user create --admin ...          (giteaSetup.localAdmin)
//	gitea admin auth add-oauth --provider openidConnect \
//	    --auto-discover-url ISSUER/.well-known/openid-configuration \
//	    --scopes openid --scopes profile --scopes email --scopes groups \
//	    --group-claim-name groups --admin-group ... --restricted-group ...
//	gitea web
//
// Gitea reads the discovery document once, when `gitea web` starts, and keeps
// its endpoints and issuer. The bridge therefore sits behind an issuerFront:
// a loopback server with a fixed URL, the issuer, that passes each request to
// the harness attached now. A test can attach another harness (another
// configuration of the same bridge, with a directory of its own) and sign
// the same people in again; Gitea sees one provider.
//
// Starting Gitea (migrate, admin, auth source, web) takes seconds, so most
// tests share one instance (sharedGitea), one test at a time, each with
// simulated WeChat users of its own (giteaUsers). Tests about the very first
// account start their own (newGitea).

const (
	giteaClientID        = "gitea"
	giteaSecret          = "gitea-secret-0123456789abcdef"
	giteaSourceName      = "wechat" // the auth source: /user/oauth2/wechat, its sign-in link
	giteaEmailDomain     = "wechat.example.com"
	giteaAdminGroup      = "gitea-admins"
	giteaRestrictedGroup = "gitea-restricted"
	giteaLocalAdmin      = "gitea-admin" // created with `gitea admin user create` before anyone signs in

	giteaStartTimeout = 90 * time.Second // migrate + web until /api/healthz, on a busy machine
	giteaCLITimeout   = 60 * time.Second // one `gitea admin ...` command
)

// giteaSetup is how the Gitea side is configured.
type giteaSetup struct {
	// localAdmin creates the Gitea administrator with `gitea admin user
	// create` before anyone signs in. Without it, Gitea makes the first
	// account it creates — the first person through the bridge — an
	// administrator (TestGiteaFirstSignInWithoutLocalAdminIsAdmin).
	localAdmin bool
	// adminGroup, restrictedGroup: --admin-group / --restricted-group of the
	// auth source ("" leaves the flag out).
	adminGroup, restrictedGroup string
}

// giteaRecommended is the setup docs/integrations/gitea.md recommends.
var giteaRecommended = giteaSetup{localAdmin: true, adminGroup: giteaAdminGroup, restrictedGroup: giteaRestrictedGroup}

// giteaInstall is a Gitea binary and the directory that holds the templates/,
// options/ and public/ trees a build without bindata reads at run time.
type giteaInstall struct{ bin, staticRoot string }

func findGitea(t *testing.T) giteaInstall {
	t.Helper()
	bin := toolBinary(t, "GITEA_BIN", "gitea", giteaVersion, "gitea", "scripts/install-gitea.sh")
	root := filepath.Dir(bin)
	for _, d := range []string{"templates", "options"} {
		if _, err := os.Stat(filepath.Join(root, d)); err != nil {
			missingTool(t, fmt.Sprintf("gitea at %s has no %s/ beside it (a build without bindata reads it from disk; scripts/install-gitea.sh lays it out): %v", bin, d, err))
		}
	}
	return giteaInstall{bin: bin, staticRoot: root}
}

// issuerFront is the bridge's fixed address: it passes every request to the
// harness attached now.
type issuerFront struct {
	srv *httptest.Server
	cur atomic.Pointer[harness]
}

func newIssuerFront() *issuerFront {
	f := &issuerFront{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The atomic load orders this goroutine after newHarness's setup
		// (for the race detector too: the requests come from Gitea, another
		// process, which gives it no other happens-before edge).
		h := f.cur.Load()
		if h == nil {
			http.Error(w, "no provider attached to the issuer front", http.StatusServiceUnavailable)
			return
		}
		h.srv.ServeHTTP(w, r)
	}))
	return f
}

func (f *issuerFront) url() string { return f.srv.URL }

// giteaServer is one running Gitea and the issuer front of its auth source.
type giteaServer struct {
	install giteaInstall
	setup   giteaSetup
	dir     string // its work path, removed when it stops
	ini     string // app.ini
	url     string // ROOT_URL without the trailing slash
	front   *issuerFront
	out     *syncBuffer // Gitea's console log and the output of its commands
	token   string      // API token of the local admin ("" without one)

	listener net.Listener // 127.0.0.1:port of ROOT_URL, proxied to Gitea's socket (serveUnixProxy)
	socket   string       // the unix socket `gitea web` listens on
	cmd      *exec.Cmd
	exited   chan struct{}

	startOnce sync.Once
	startErr  error

	inUse sync.Mutex // one test at a time: they share the front
}

var shared struct {
	once sync.Once
	g    *giteaServer
	err  error
}

// sharedGitea is the Gitea of this test binary with the recommended setup,
// prepared on first use and stopped by TestMain. The calling test has it to
// itself until it ends. Give each test its own people (giteaUsers).
func sharedGitea(t *testing.T) *giteaServer {
	t.Helper()
	install := findGitea(t)
	shared.once.Do(func() { shared.g, shared.err = prepareGitea(install, giteaRecommended) })
	if shared.err != nil {
		t.Fatalf("shared gitea: %v", shared.err)
	}
	g := shared.g
	g.inUse.Lock()
	t.Cleanup(func() {
		g.front.cur.Store(nil)
		g.inUse.Unlock()
		if t.Failed() {
			t.Logf("gitea output (last part):\n%s", tail(g.out.String(), 6000))
		}
	})
	return g
}

// stopSharedGitea stops the shared Gitea, if one started (TestMain).
func stopSharedGitea() {
	if shared.g != nil {
		shared.g.stop()
	}
}

// newGitea is a Gitea of the calling test's own, stopped when it ends.
func newGitea(t *testing.T, setup giteaSetup) *giteaServer {
	t.Helper()
	g, err := prepareGitea(findGitea(t), setup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gitea output (last part):\n%s", tail(g.out.String(), 6000))
		}
		g.stop()
	})
	return g
}

// prepareGitea writes app.ini, migrates and creates the local admin:
// everything that does not need the bridge (startWeb does the rest).
func prepareGitea(install giteaInstall, setup giteaSetup) (g *giteaServer, err error) {
	g = &giteaServer{install: install, setup: setup, out: &syncBuffer{}}
	g.dir, err = os.MkdirTemp("", "wechat-oidc-gitea-")
	if err != nil {
		return nil, fmt.Errorf("gitea work dir: %w", err)
	}
	g.front = newIssuerFront()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\ngitea output:\n%s", err, tail(g.out.String(), 4000))
			g.stop()
			g = nil
		}
	}()
	if g.listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return g, fmt.Errorf("listen for gitea: %w", err)
	}
	g.url = "http://" + g.listener.Addr().String()
	g.socket = filepath.Join(g.dir, "gitea.sock")
	g.ini = filepath.Join(g.dir, "app.ini")
	ini, err := g.appINI()
	if err != nil {
		return g, err
	}
	if err := os.WriteFile(g.ini, []byte(ini), 0o600); err != nil {
		return g, fmt.Errorf("write app.ini: %w", err)
	}
	if _, err := g.cli("migrate"); err != nil {
		return g, err
	}
	if setup.localAdmin {
		password := randomHex(16)
		if _, err := g.cli("admin", "user", "create", "--username", giteaLocalAdmin,
			"--email", giteaLocalAdmin+"@example.invalid", "--password", password,
			"--admin", "--must-change-password=false"); err != nil {
			return g, err
		}
		tok, err := g.cli("admin", "user", "generate-access-token", "--username", giteaLocalAdmin,
			"--token-name", "tests", "--scopes", "all", "--raw")
		if err != nil {
			return g, err
		}
		// Gitea's CLI logs to standard output too: the token is the line of 40 hex digits.
		m := regexp.MustCompile(`(?m)^[0-9a-f]{40}$`).FindString(tok)
		if m == "" {
			return g, fmt.Errorf("gitea admin user generate-access-token printed no token")
		}
		g.token = m
	}
	return g, nil
}

// appINI is the minimal app.ini of docs/integrations/gitea.md plus what a
// test needs: everything under the temporary work path, SQLite, in-memory
// session, cache and queues, no SSH, no mail, no outside network.
func (g *giteaServer) appINI() (string, error) {
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("current user (gitea's RUN_USER): %w", err)
	}
	return fmt.Sprintf(`APP_NAME = wechat-oidc test
RUN_USER = %[1]s
RUN_MODE = prod
WORK_PATH = %[2]s

[server]
PROTOCOL = http+unix
HTTP_ADDR = %[3]s
ROOT_URL = %[4]s/
DOMAIN = 127.0.0.1
STATIC_ROOT_PATH = %[5]s
APP_DATA_PATH = %[2]s/data
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = %[2]s/data/gitea.db

[repository]
ROOT = %[2]s/repositories

[security]
INSTALL_LOCK = true
SECRET_KEY = %[6]s
INTERNAL_TOKEN = %[7]s

[oauth2]
JWT_SECRET = %[8]s

[service]
DISABLE_REGISTRATION = false
ALLOW_ONLY_EXTERNAL_REGISTRATION = true
ENABLE_NOTIFY_MAIL = false

[oauth2_client]
ENABLE_AUTO_REGISTRATION = true
USERNAME = preferred_username
ACCOUNT_LINKING = login
REGISTER_EMAIL_CONFIRM = false
UPDATE_AVATAR = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[queue]
TYPE = channel

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[mailer]
ENABLED = false

[log]
MODE = console
LEVEL = Info
ROOT_PATH = %[2]s/log
`, u.Username, g.dir, g.socket, g.url, g.install.staticRoot, randomHex(32), "t."+randomHex(40),
		base64.RawURLEncoding.EncodeToString([]byte(randomHex(16)))), nil
}

// env is the environment of every gitea command.
func (g *giteaServer) env() []string {
	env := append(os.Environ(), "GITEA_WORK_DIR="+g.dir, "GITEA_CUSTOM="+filepath.Join(g.dir, "custom"))
	if os.Geteuid() == 0 {
		// Gitea refuses to run as root without this (CI runs as root).
		env = append(env, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true")
	}
	return env
}

// cli runs `gitea ARGS -c app.ini` and returns its standard output.
func (g *giteaServer) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), giteaCLITimeout)
	defer cancel()
	full := append(append([]string{}, args...), "-c", g.ini)
	cmd := exec.CommandContext(ctx, g.install.bin, full...)
	cmd.Env = g.env()
	cmd.Dir = g.dir
	var stdout strings.Builder
	cmd.Stdout = &stdout
	cmd.Stderr = g.out
	err := cmd.Run()
	// Never echo a command line with the client secret or a password.
	name := strings.Join(args[:min(3, len(args))], " ")
	if err != nil {
		return "", fmt.Errorf("gitea %s: %w (stdout: %.500s)", name, err, stdout.String())
	}
	return stdout.String(), nil
}

// startWeb adds the auth source and runs `gitea web`, once, when the first
// harness is attached: both read the bridge's discovery document (add-oauth
// refuses a source whose discovery fails).
func (g *giteaServer) startWeb() error {
	g.startOnce.Do(func() {
		if g.startErr = g.addSource(); g.startErr == nil {
			g.startErr = g.runWeb()
		}
	})
	return g.startErr
}

// addSource is the guide's `gitea admin auth add-oauth`.
func (g *giteaServer) addSource() error {
	args := []string{"admin", "auth", "add-oauth", "--name", giteaSourceName,
		"--provider", "openidConnect", "--key", giteaClientID, "--secret", giteaSecret,
		"--auto-discover-url", g.front.url() + "/.well-known/openid-configuration",
		"--scopes", "openid", "--scopes", "profile", "--scopes", "email", "--scopes", "groups",
		"--group-claim-name", "groups"}
	if g.setup.adminGroup != "" {
		args = append(args, "--admin-group", g.setup.adminGroup)
	}
	if g.setup.restrictedGroup != "" {
		args = append(args, "--restricted-group", g.setup.restrictedGroup)
	}
	_, err := g.cli(args...)
	return err
}

func (g *giteaServer) runWeb() error {
	// Gitea listens on a unix socket and the tests' own listener on
	// 127.0.0.1 (ROOT_URL's port, held since prepareGitea) proxies to it:
	// no other process can take the port between choosing and using it.
	// (Handing Gitea the listening socket instead, systemd-style, makes it
	// SIGTERM its parent: modules/graceful/restart_unix.go.)
	cmd := exec.Command(g.install.bin, "web", "-c", g.ini)
	cmd.Env = g.env()
	cmd.Dir = g.dir
	cmd.Stdout, cmd.Stderr = g.out, g.out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start gitea web: %w", err)
	}
	g.cmd, g.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(g.exited) }()
	go serveUnixProxy(g.listener, g.socket)

	deadline := time.Now().Add(giteaStartTimeout)
	for {
		select {
		case <-g.exited:
			return fmt.Errorf("gitea web exited before answering /api/healthz:\n%s", tail(g.out.String(), 4000))
		default:
		}
		resp, err := http.Get(g.url + "/api/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gitea web did not answer /api/healthz in %s", giteaStartTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A source whose discovery failed is listed on the sign-in page but
	// cannot sign anyone in: say so now rather than at the first sign-in.
	if strings.Contains(g.out.String(), "Unable to register source") {
		return fmt.Errorf("gitea could not register the auth source (discovery at %s failed)", g.front.url())
	}
	return nil
}

func (g *giteaServer) stop() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	if g.listener != nil {
		g.listener.Close()
	}
	if g.front != nil {
		g.front.srv.Close()
	}
	if g.dir != "" {
		os.RemoveAll(g.dir)
	}
}

// withGiteaClient registers Gitea as a client of the bridge, as
// docs/integrations/gitea.md does: its callback, HTTP Basic client
// authentication (what Gitea's OAuth2 library sends first) and a synthetic
// email, without which Gitea cannot create the account.
func withGiteaClient(rootURL string) harnessOption {
	return func(c *config.File) {
		c.Clients = append(c.Clients, config.ClientConfig{
			ID:                      giteaClientID,
			Name:                    "Gitea",
			Secret:                  giteaSecret,
			RedirectURIs:            []string{rootURL + "/user/oauth2/" + giteaSourceName + "/callback"},
			TokenEndpointAuthMethod: "client_secret_basic",
			Claims:                  config.ClientClaimsConfig{Email: "{preferred_username}@" + giteaEmailDomain},
		})
	}
}

// giteaUsers makes simulated WeChat users with unionids whose keys are
// prefix-name: each test signs its own people into the shared Gitea.
func giteaUsers(prefix string, names ...string) []simulator.User {
	out := make([]simulator.User, 0, len(names))
	for _, n := range names {
		key := prefix + "-" + n
		sum := sha256.Sum256([]byte("gitea-test\x00" + key))
		out = append(out, simulator.User{
			Key:      key,
			Nickname: strings.ToUpper(n[:1]) + n[1:],
			UnionID:  "o" + base64.RawURLEncoding.EncodeToString(sum[:])[:27],
		})
	}
	return out
}

// bridge starts the bridge for this Gitea — a harness with the Gitea client
// and opts, behind the front — and attaches it, replacing the one before;
// the first call also starts `gitea web`.
func (g *giteaServer) bridge(t *testing.T, users []simulator.User, opts ...harnessOption) *harness {
	t.Helper()
	all := append([]harnessOption{withIssuer(g.front.url()), withGiteaClient(g.url)}, opts...)
	h := newHarnessWithUsers(t, users, all...)
	t.Cleanup(func() {
		if strings.Contains(h.logs.String(), giteaSecret) {
			t.Errorf("the bridge's log contains Gitea's client secret")
		}
	})
	g.front.cur.Store(h)
	t.Cleanup(func() { g.front.cur.CompareAndSwap(h, nil) })
	if err := g.startWeb(); err != nil {
		t.Fatal(err)
	}
	return h
}

// giteaPerson is one person: a WeChat user of the simulator and their own
// browser (the WeChat in-app browser: the Official Account flow).
type giteaPerson struct {
	key      string // the simulator's user key
	sub      string // the bridge's subject: the unionid
	username string // preferred_username, Gitea's username
	email    string // the synthetic email of the Gitea client
	browser  *http.Client
}

func (g *giteaServer) person(t *testing.T, h *harness, key string) *giteaPerson {
	t.Helper()
	sub := h.sim.UnionID(key)
	if sub == "" {
		t.Fatalf("simulated user %q has no unionid", key)
	}
	name := wechatconn.PreferredUsername(sub)
	return &giteaPerson{key: key, sub: sub, username: name, email: name + "@" + giteaEmailDomain, browser: giteaBrowser(t)}
}

// giteaBrowser is a new WeChat in-app browser: its own cookies, every
// redirect followed.
func giteaBrowser(t *testing.T) *http.Client {
	t.Helper()
	return followingBrowser(20 * time.Second)
}

// signInLink matches the "Sign in with wechat" link of Gitea's sign-in page
// (templates/user/auth/oauth_container.tmpl).
var signInLink = regexp.MustCompile(`<a class="[^"]*oauth-login-link[^"]*" href="([^"]+)"`)

// signIn: the person opens Gitea's sign-in page and follows its link for
// the bridge, through the bridge and the simulated WeChat (which approves at
// once as them) back to Gitea. It returns where they landed and the page.
func (g *giteaServer) signIn(t *testing.T, h *harness, p *giteaPerson) (*url.URL, string) {
	t.Helper()
	h.sim.AutoApprove(p.key)
	_, page := g.get(t, p, g.url+"/user/login")
	m := signInLink.FindStringSubmatch(page)
	if m == nil || m[1] != "/user/oauth2/"+giteaSourceName {
		t.Fatalf("gitea's sign-in page has no link /user/oauth2/%s (found %q)", giteaSourceName, m)
	}
	return g.get(t, p, g.url+m[1])
}

func (g *giteaServer) get(t *testing.T, p *giteaPerson, u string) (*url.URL, string) {
	t.Helper()
	resp, err := p.browser.Get(u)
	if err != nil {
		t.Fatalf("GET %s as %s: %v", u, p.key, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s as %s: %v", u, p.key, err)
	}
	if resp.StatusCode >= 500 {
		t.Fatalf("GET %s as %s: %s at %s: %.500s", u, p.key, resp.Status, resp.Request.URL, body)
	}
	return resp.Request.URL, string(body)
}

// signedInAs is the mark of Gitea's navigation bar for a signed-in user
// (templates/base/head_navbar.tmpl).
func signedInAs(name string) string { return "Signed in as <strong>" + name + "</strong>" }

// assertSignedIn: the person landed on Gitea's home page, signed in as their
// preferred_username.
func (g *giteaServer) assertSignedIn(t *testing.T, h *harness, p *giteaPerson, at *url.URL, page string) {
	t.Helper()
	if at.String() != g.url+"/" || !strings.Contains(page, signedInAs(p.username)) {
		t.Fatalf("%s landed on %s, not signed in as %s: %.600q\nbridge log:\n%s", p.key, at, p.username, page, tail(h.logs.String(), 3000))
	}
}

// giteaUser is an account as Gitea's admin API shows it (modules/structs/user.go).
type giteaUser struct {
	ID         int64  `json:"id"`
	Login      string `json:"login"`
	LoginName  string `json:"login_name"` // the external id: the bridge's sub
	SourceID   int64  `json:"source_id"`
	FullName   string `json:"full_name"`
	Email      string `json:"email"`
	IsAdmin    bool   `json:"is_admin"`
	Restricted bool   `json:"restricted"`
	Active     bool   `json:"active"`
}

// accountsOf lists the accounts Gitea has for the bridge subject sub, by its
// admin API (needs the local admin's token).
func (g *giteaServer) accountsOf(t *testing.T, sub string) []giteaUser {
	t.Helper()
	if g.token == "" {
		t.Fatal("this gitea has no local admin, so no API token: use the CLI (usersByCLI)")
	}
	req, err := http.NewRequest(http.MethodGet, g.url+"/api/v1/admin/users?"+url.Values{"login_name": {sub}, "limit": {"50"}}.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+g.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("gitea admin API: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("gitea admin API: %s: %.300s", resp.Status, body)
	}
	var users []giteaUser
	if err := json.NewDecoder(resp.Body).Decode(&users); err != nil {
		t.Fatalf("gitea admin API: %v", err)
	}
	return users
}

// accountOf is the one account Gitea has for p, or fails.
func (g *giteaServer) accountOf(t *testing.T, p *giteaPerson) giteaUser {
	t.Helper()
	users := g.accountsOf(t, p.sub)
	if len(users) != 1 {
		t.Fatalf("gitea has %d accounts for %s (sub %s), want 1: %+v", len(users), p.key, p.sub, users)
	}
	return users[0]
}

// cliUser is a row of `gitea admin user list` (cmd/admin_user_list.go).
type cliUser struct {
	name, email   string
	active, admin bool
}

// giteaLogLine is a line of Gitea's log ("2026/12/02 01:37:18 file.go:181:func() [E] ...").
var giteaLogLine = regexp.MustCompile(`^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} `)

// usersByCLI lists the accounts with `gitea admin user list`, as an operator would.
func (g *giteaServer) usersByCLI(t *testing.T) map[string]cliUser {
	t.Helper()
	out, err := g.cli("admin", "user", "list")
	if err != nil {
		t.Fatal(err)
	}
	// Gitea's CLI logs to standard output too (giteaLogLine), before and
	// among the table's rows: the table starts at its header.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for len(lines) > 0 && strings.Join(strings.Fields(lines[0]), " ") != "ID Username Email IsActive IsAdmin 2FA" {
		lines = lines[1:]
	}
	if len(lines) == 0 {
		t.Fatalf("gitea admin user list: no table in %q", out)
	}
	users := map[string]cliUser{}
	for _, l := range lines[1:] {
		if giteaLogLine.MatchString(l) {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Fatalf("gitea admin user list: unexpected row %q", l)
		}
		users[f[1]] = cliUser{name: f[1], email: f[2], active: f[3] == "true", admin: f[4] == "true"}
	}
	return users
}

// serveUnixProxy serves l by passing every request, as it came, to the HTTP
// server on the unix socket sock, until l is closed.
func serveUnixProxy(l net.Listener, sock string) {
	target := &url.URL{Scheme: "http", Host: "gitea"}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // Gitea sees its ROOT_URL's host; no X-Forwarded-* added
		},
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
		},
		ErrorLog: log.New(io.Discard, "", 0), // a request to a Gitea that is stopping is no news
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	_ = srv.Serve(l) // returns when l is closed
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
