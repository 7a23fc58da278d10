package simulator

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// AppKind is the kind of WeChat app.
type AppKind int

const (
	// OfficialAccount (服务号) uses /connect/oauth2/authorize with snsapi_base
	// or snsapi_userinfo (§1).
	OfficialAccount AppKind = iota
	// WebsiteApp (Open Platform 网站应用) uses /connect/qrconnect with
	// snsapi_login (§3).
	WebsiteApp
	// MiniProgram (小程序) uses /sns/jscode2session (§4).
	MiniProgram
)

func (k AppKind) String() string {
	switch k {
	case OfficialAccount:
		return "OfficialAccount"
	case WebsiteApp:
		return "WebsiteApp"
	case MiniProgram:
		return "MiniProgram"
	}
	return "AppKind(?)"
}

// App is a registered WeChat app.
type App struct {
	ID, Secret string
	Kind       AppKind
	// Bound: the app is bound to an Open Platform account, so unionid is
	// available (§7).
	Bound bool
	Name  string // shown on the consent page; "" = ID
}

// User is a simulated WeChat user.
type User struct {
	Key      string // stable handle used by tests, e.g. "alice"
	Nickname string
	// HeadImgURL may be "". A value starting with "/" is relative to the
	// simulator's mount point and made absolute in /sns/userinfo answers
	// (DefaultUsers point at /_sim/avatar/{key}/132, which the simulator serves).
	HeadImgURL string
	// UnionID "" means this person has no unionid (treated as unbound).
	UnionID string
	// Snapshot marks a snapshot-page virtual user (§6): with snsapi_userinfo
	// the token response carries is_snapshotuser:1; its openid/unionid are
	// its own (virtual), unlike any real user's.
	Snapshot bool
	// Since 2021 WeChat returns sex 0 and empty region (§2d); set these only to
	// test old behaviour.
	Country, Province, City string
	Sex                     int
	// Blocked: a high-risk user whose mini program code is refused with 40226 (§4).
	Blocked bool
	// Hidden users are not offered on the consent page: they sign in only
	// by AutoApprove or the approve header (LoadUsers, for load tests).
	Hidden bool
}

// Config configures a Simulator. The zero value works: DefaultUsers, no apps.
type Config struct {
	Apps  []App
	Users []User // nil → DefaultUsers()
	// CallbackHosts are the allowed redirect_uri hosts (host or host:port,
	// exact match, §8: qq.com ≠ www.qq.com). Empty = any. A mismatch shows a
	// 10003 error page (not a redirect).
	CallbackHosts []string
	// AllowPort lets redirect_uri carry a port. Real WeChat refuses that with
	// 10003 (§8); dev mode on 127.0.0.1:8080 needs true.
	AllowPort bool
	// CodeTTL is the lifetime of Official Account codes and mini program
	// js_codes, default 5 minutes (§1, §4). Website app codes always live
	// 10 minutes (§3) unless CodeTTL is longer.
	CodeTTL time.Duration
	// Now is the clock, default time.Now; tests move it to expire things.
	Now func() time.Time
	// ContentType of API answers; "" = "text/plain" as WeChat sends (§5).
	// Set "application/json; charset=utf-8" to test the other observed value.
	ContentType string
	// IDSeed keys the derivation of openids; "" = a fixed seed, so ids are
	// stable across restarts.
	IDSeed string
	// ApproveHeader lets a request to the authorize page name the user who
	// approves at once in the HeaderApproveAs header, as AutoApprove does
	// for every request: so that concurrent load-test sign-ins can each be
	// a different person without the page. It is honoured only on requests
	// from a loopback address. For dev mode's load tests; never a real
	// WeChat behaviour.
	ApproveHeader bool
	// DevBrowserSwitch (dev mode): the "open this in WeChat" page that the
	// Official Account authorize page shows outside WeChat's in-app browser
	// offers a button that makes this browser count as WeChat's (a cookie),
	// so that a person at a desktop can play the phone.
	DevBrowserSwitch bool
}

// HeaderApproveAs names the user who approves an authorization at once
// (Config.ApproveHeader).
const HeaderApproveAs = "X-Sim-Approve-As"

// RefusalMode is what happens when the user taps 拒绝 (§1, §3).
type RefusalMode int

const (
	// RefuseNoRedirect: no redirect happens, the user is left on a blank
	// page (current doc for qrconnect and what the community reports for
	// the Official Account page). The default.
	RefuseNoRedirect RefusalMode = iota
	// RefuseRedirectStateOnly: redirect to redirect_uri?state=STATE without
	// a code (old documentation).
	RefuseRedirectStateOnly
)

// Fault breaks the next Times calls of one endpoint.
type Fault struct {
	// Errcode: answer {"errcode":Errcode,"errmsg":...} (an error page on the
	// browser endpoints) instead of doing the work.
	Errcode int
	// HTTPStatus: answer with this status and an HTML body instead of doing the work.
	HTTPStatus int
	// Delay before answering (ends early if the request is cancelled).
	Delay time.Duration
	// Truncated: do the work (a code IS consumed) but cut the body in half.
	Truncated bool
	// Times is how many calls the fault applies to; <= 0 = 1.
	Times int
}

// Call records one request the simulator answered.
type Call struct {
	Endpoint   string // path, e.g. "/sns/userinfo"
	AppID      string
	Scope      string
	UserKey    string // the simulated user, when known
	Errcode    int    // errcode answered (or error-page code), 0 = success
	HTTPStatus int    // status answered
	ForcePopup bool   // authorize: forcePopup=true was present
	Fault      bool   // an injected fault answered this call
	At         time.Time
}

// Error-page codes of the authorize step (§1 table), plus sim-only codes
// (negative) for situations whose real page is UNCONFIRMED.
const (
	PageRedirectURIMismatch = 10003 // redirect_uri域名与后台配置不一致
	PageScopeUnauthorized   = 10005 // 此公众号并没有这些scope的权限
	PageScopeEmpty          = 10010 // scope不能为空
	PageRedirectURIEmpty    = 10011 // redirect_uri不能为空
	PageAppIDEmpty          = 10012 // appid不能为空
	PageStateEmpty          = 10013 // state不能为空
	PageOpenPlatformAppID   = 10016 // 不支持微信开放平台的Appid，请使用公众号Appid

	PageBadParamOrder = -10001 // parameters missing or out of order (real page content UNCONFIRMED)
	PageInvalidState  = -10002 // state not [A-Za-z0-9]{1,128} (WeChat's behaviour UNCONFIRMED)
	PageUnknownAppID  = -10003 // appid not registered
	PageFormExpired   = -10004 // consent form token unknown, used or expired
	PageUnknownUser   = -10005 // the picked (or AutoApprove) user does not exist
	// PageOpenInWeChat: the Official Account authorize page opened outside
	// WeChat's in-app browser (no MicroMessenger in the User-Agent) shows
	// "请在微信客户端打开链接" and goes no further (wechat-api.md §1: the
	// flow is "opened in WeChat client"; WeChat's page has no errcode).
	PageOpenInWeChat = -10006
)

// Lifetimes (§1, §2, §3, §4).
const (
	defaultCodeTTL  = 5 * time.Minute
	websiteCodeTTL  = 10 * time.Minute
	accessTokenTTL  = 2 * time.Hour
	refreshTokenTTL = 30 * 24 * time.Hour
	formTTL         = 10 * time.Minute
	// Expired tokens are kept this long so that they answer "expired"
	// (42001/42002) rather than "invalid"; then they are dropped.
	expiredGrace = 24 * time.Hour
	sweepEvery   = time.Minute
	maxCalls     = 10000 // the call log keeps the newest maxCalls
)

// Simulator is a simulated WeChat. It is safe for concurrent use.
type Simulator struct {
	cfg    Config
	idKey  []byte
	apps   map[string]App
	users  []User
	byKey  map[string]User
	ctype  string
	now    func() time.Time
	mu     sync.Mutex
	codes  map[string]*codeGrant   // authorization codes and js_codes
	access map[string]*accessGrant // access tokens
	refr   map[string]*refreshGrant
	forms  map[string]*pendingAuth // consent-form tokens
	faults map[string]*Fault
	// calls is the call log, a ring of at most maxCalls: once full, the
	// oldest call is at calls[oldest] and each new one replaces it.
	calls  []Call
	oldest int

	autoUser    string
	autoRefuse  bool
	refusalMode RefusalMode
	lastSweep   time.Time
}

type codeGrant struct {
	appID, userKey, scope string
	js                    bool // a mini program js_code
	expires               time.Time
	used                  bool
}

type accessGrant struct {
	appID, userKey, scope, openID string
	snapshot                      bool
	expires                       time.Time
}

type refreshGrant struct {
	appID, userKey, scope, openID string
	snapshot                      bool
	access                        string // the current access token
	expires                       time.Time
}

type pendingAuth struct {
	appID, redirectURI, scope, state string
	qr, forcePopup                   bool
	expires                          time.Time
}

const defaultIDSeed = "wechat-oidc-simulator"

// New returns a simulator for cfg.
func New(cfg Config) *Simulator {
	s := &Simulator{
		cfg:    cfg,
		apps:   make(map[string]App),
		byKey:  make(map[string]User),
		codes:  make(map[string]*codeGrant),
		access: make(map[string]*accessGrant),
		refr:   make(map[string]*refreshGrant),
		forms:  make(map[string]*pendingAuth),
		faults: make(map[string]*Fault),
		now:    cfg.Now,
		ctype:  cfg.ContentType,
	}
	seed := cfg.IDSeed
	if seed == "" {
		seed = defaultIDSeed
	}
	s.idKey = []byte(seed)
	if s.now == nil {
		s.now = time.Now
	}
	if s.ctype == "" {
		s.ctype = "text/plain"
	}
	if s.cfg.CodeTTL <= 0 {
		s.cfg.CodeTTL = defaultCodeTTL
	}
	for _, a := range cfg.Apps {
		s.apps[a.ID] = a
	}
	s.users = cfg.Users
	if s.users == nil {
		s.users = DefaultUsers()
	}
	for _, u := range s.users {
		s.byKey[u.Key] = u
	}
	return s
}

// DefaultUsers returns the users of a default simulator:
//   - alice: has a unionid and a profile
//   - bob: has a unionid
//   - carol: no unionid
//   - snapshot: a snapshot-page virtual user (§6) with a virtual nickname
func DefaultUsers() []User {
	return []User{
		{Key: "alice", Nickname: "Alice 爱丽丝", HeadImgURL: "/_sim/avatar/alice/132", UnionID: deriveUnionID([]byte(defaultIDSeed), "alice")},
		{Key: "bob", Nickname: "Bob 鲍勃", HeadImgURL: "/_sim/avatar/bob/132", UnionID: deriveUnionID([]byte(defaultIDSeed), "bob")},
		{Key: "carol", Nickname: "Carol 卡罗尔", HeadImgURL: "/_sim/avatar/carol/132"},
		{Key: "snapshot", Nickname: "微信用户", HeadImgURL: "/_sim/avatar/snapshot/132", UnionID: deriveUnionID([]byte(defaultIDSeed), "snapshot"), Snapshot: true},
	}
}

// LoadUsers returns n hidden users for load tests, load00001 … (five or
// more digits), each with a unionid and a nickname; they are not offered on
// the consent page.
func LoadUsers(n int) []User {
	out := make([]User, 0, max(n, 0))
	for i := 1; i <= n; i++ {
		key := LoadUserKey(i)
		out = append(out, User{Key: key, Nickname: "压测用户 " + key[len("load"):], UnionID: deriveUnionID([]byte(defaultIDSeed), key), Hidden: true})
	}
	return out
}

// LoadUserKey is the key of the i-th (from 1) user of LoadUsers.
func LoadUserKey(i int) string { return fmt.Sprintf("load%05d", i) }

// Users returns the simulated users.
func (s *Simulator) Users() []User { return append([]User(nil), s.users...) }

// OpenID returns the openid of user in app: 28 characters starting with "o"
// like WeChat's, deterministic per (app, user) and different across apps.
func (s *Simulator) OpenID(appID, userKey string) string {
	return deriveID(s.idKey, "openid\x00"+appID+"\x00"+userKey)
}

// UnionID returns the configured unionid of user ("" if none or unknown).
func (s *Simulator) UnionID(userKey string) string { return s.byKey[userKey].UnionID }

func deriveUnionID(key []byte, userKey string) string {
	return deriveID(key, "unionid\x00"+userKey)
}

func deriveID(key []byte, msg string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return "o" + base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:27]
}

// AutoApprove makes authorize and qrconnect redirect at once, without a page,
// as if userKey had approved. "" turns auto-approval and auto-refusal off.
func (s *Simulator) AutoApprove(userKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoUser, s.autoRefuse = userKey, false
}

// AutoRefuse makes authorize and qrconnect act at once as if the user had
// refused, per the RefusalMode. AutoApprove("") turns it off.
func (s *Simulator) AutoRefuse() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.autoUser, s.autoRefuse = "", true
}

// SetRefusalMode sets what a refusal does (default RefuseNoRedirect).
func (s *Simulator) SetRefusalMode(m RefusalMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusalMode = m
}

// InjectFault breaks the next f.Times calls of endpoint (a path such as
// "/sns/userinfo"). A later InjectFault for the same endpoint replaces it.
func (s *Simulator) InjectFault(endpoint string, f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[endpoint] = &f
}

// ClearFaults removes every injected fault.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault returns the fault for endpoint, if any, and uses up one of its times.
func (s *Simulator) takeFault(endpoint string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faults[endpoint]
	if !ok {
		return Fault{}, false
	}
	f.Times--
	if f.Times <= 0 {
		delete(s.faults, endpoint)
	}
	return *f, true
}

// Calls returns every recorded call, oldest first (the newest 10000).
func (s *Simulator) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, 0, len(s.calls))
	out = append(out, s.calls[s.oldest:]...)
	return append(out, s.calls[:s.oldest]...)
}

// CallCount returns how many recorded calls hit endpoint.
func (s *Simulator) CallCount(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Endpoint == endpoint {
			n++
		}
	}
	return n
}

// ResetCalls forgets the recorded calls.
func (s *Simulator) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.oldest = nil, 0
}

func (s *Simulator) record(c Call) {
	c.At = s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.calls) < maxCalls {
		s.calls = append(s.calls, c)
		return
	}
	// Full: the newest replaces the oldest, in place (copying the log
	// down by one would move maxCalls calls on every request).
	s.calls[s.oldest] = c
	s.oldest = (s.oldest + 1) % maxCalls
}

// IssueJSCode returns what wx.login would give the mini program appID for
// userKey: a js_code valid CodeTTL (5 minutes, §4), single use.
func (s *Simulator) IssueJSCode(appID, userKey string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueCodeLocked(appID, userKey, "", true, s.cfg.CodeTTL)
}

// issueCodeLocked stores a new code. s.mu must be held.
func (s *Simulator) issueCodeLocked(appID, userKey, scope string, js bool, ttl time.Duration) string {
	s.sweepLocked()
	code := randomCode()
	s.codes[code] = &codeGrant{appID: appID, userKey: userKey, scope: scope, js: js, expires: s.now().Add(ttl)}
	return code
}

// codeTTL is the lifetime of an authorization code for app (§1: 5 min, §3:
// website apps 10 min).
func (s *Simulator) codeTTL(a App) time.Duration {
	if a.Kind == WebsiteApp && s.cfg.CodeTTL < websiteCodeTTL {
		return websiteCodeTTL
	}
	return s.cfg.CodeTTL
}

// sweepLocked drops expired state, at most once a minute of simulated time.
// s.mu must be held.
func (s *Simulator) sweepLocked() {
	now := s.now()
	if now.Sub(s.lastSweep) < sweepEvery && !now.Before(s.lastSweep) {
		return
	}
	s.lastSweep = now
	for k, c := range s.codes {
		if now.After(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, f := range s.forms {
		if now.After(f.expires) {
			delete(s.forms, k)
		}
	}
	for k, a := range s.access {
		if now.After(a.expires.Add(expiredGrace)) {
			delete(s.access, k)
		}
	}
	for k, r := range s.refr {
		if now.After(r.expires.Add(expiredGrace)) {
			delete(s.refr, k)
		}
	}
}

// pending returns the sizes of the stores (for tests of the sweeping).
func (s *Simulator) pending() (codes, access, refresh, forms int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.codes), len(s.access), len(s.refr), len(s.forms)
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomString returns n random characters of alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// randomCode looks like WeChat's 32-character codes.
func randomCode() string { return randomString(32, alnum) }

// randomToken looks like WeChat's long opaque tokens.
func randomToken() string {
	b := make([]byte, 64)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// rid is WeChat's current errmsg suffix id: 8-8-8 hex (§5).
func rid() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:16] + "-" + h[16:]
}

// ServeHTTP serves the browser pages and the APIs at paths relative to the
// mount point.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == pathAuthorize || path == pathQRConnect:
		s.withFault(w, r, path, false, s.serveAuthorize)
	case path == pathDecide:
		s.withFault(w, r, path, false, s.serveDecide)
	case path == pathWeChatBrowser && s.cfg.DevBrowserSwitch:
		s.serveWeChatBrowser(w, r)
	case strings.HasPrefix(path, pathAvatar):
		s.serveAvatar(w, r)
	case s.apiHandler(path) != nil:
		s.withFault(w, r, path, true, s.apiHandler(path))
	default:
		http.NotFound(w, r)
	}
}
