package simulator

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
)

const (
	pathAuthorize = "/connect/oauth2/authorize"
	pathQRConnect = "/connect/qrconnect"
	pathDecide    = "/_sim/authorize" // the consent form posts here
	// pathWeChatBrowser (Config.DevBrowserSwitch) makes this browser count as
	// WeChat's in-app browser.
	pathWeChatBrowser = "/_sim/wechat-browser"
	pathAvatar        = "/_sim/avatar/"

	scopeBase     = "snsapi_base"
	scopeUserInfo = "snsapi_userinfo"
	scopeLogin    = "snsapi_login"
)

// WeChat regex-checks the authorize URL's parameter order (§1: "微信会对授权链接做
// 正则强匹配校验，如果链接的参数顺序不对，授权页面将无法正常访问"): appid, redirect_uri,
// response_type=code, scope, state, then the optional extras. The
// #wechat_redirect fragment never reaches a server, so it cannot be checked.
var (
	oaOrder = regexp.MustCompile(`^appid=[^&]*&redirect_uri=[^&]*&response_type=code&scope=[^&]*&state=[^&]*(?:&(?:forcePopup|forceSnapShot|connect_redirect)=[^&]*)*$`)
	// qrconnect (§3): lang, and what the wxLogin.js iframe adds.
	qrOrder = regexp.MustCompile(`^appid=[^&]*&redirect_uri=[^&]*&response_type=code&scope=[^&]*&state=[^&]*(?:&(?:lang|login_type|self_redirect|style|href|stylelite|fast_login)=[^&]*)*$`)
)

// pageMessages are the texts of WeChat's authorize error page (§1 table).
var pageMessages = map[int]string{
	PageRedirectURIMismatch: "redirect_uri域名与后台配置不一致",
	10004:                   "此公众号被封禁",
	PageScopeUnauthorized:   "此公众号并没有这些scope的权限",
	10006:                   "必须关注此测试号",
	10009:                   "操作太频繁了，请稍后重试",
	PageScopeEmpty:          "scope不能为空",
	PageRedirectURIEmpty:    "redirect_uri不能为空",
	PageAppIDEmpty:          "appid不能为空",
	PageStateEmpty:          "state不能为空",
	10015:                   "公众号未授权第三方平台，请检查授权状态",
	PageOpenPlatformAppID:   "不支持微信开放平台的Appid，请使用公众号Appid",
	PageBadParamOrder:       "授权链接参数缺失或顺序不对（模拟器：真实微信无法访问此页面）",
	PageInvalidState:        "state只能包含a-zA-Z0-9且不超过128字节（模拟器：真实行为未确认）",
	PageUnknownAppID:        "appid不存在（模拟器）",
	PageFormExpired:         "页面已过期，请重新发起授权（模拟器）",
	PageUnknownUser:         "模拟用户不存在（模拟器）",
	PageOpenInWeChat:        "请在微信客户端打开链接",
}

// serveAuthorize serves /connect/oauth2/authorize (§1) and /connect/qrconnect (§3).
// Every problem is shown on an error page, never redirected. It is long on
// purpose: it is WeChat's own checklist (wechat-api.md §1), in the order
// WeChat applies it, so that the first error a page shows is WeChat's.
func (s *Simulator) serveAuthorize(w http.ResponseWriter, r *http.Request, c *Call) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	qr := r.URL.Path == pathQRConnect
	raw := r.URL.RawQuery
	if !qr && !s.inWeChat(r) {
		// Before any check of the parameters: outside WeChat the real page
		// says only this, whatever the link (what WeChat checks first is
		// UNCONFIRMED; this is what sites that copy WeChat's page show).
		s.openInWeChatPage(w, c, raw)
		return
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		s.errorPage(w, c, PageBadParamOrder)
		return
	}
	appID, redirectURI, scope, state := q.Get("appid"), q.Get("redirect_uri"), q.Get("scope"), q.Get("state")
	c.AppID, c.Scope = appID, scope
	c.ForcePopup = q.Get("forcePopup") == "true" || q.Get("forcePopup") == "1"

	// Missing parameters have their own codes (§1 table).
	switch {
	case appID == "":
		s.errorPage(w, c, PageAppIDEmpty)
		return
	case redirectURI == "":
		s.errorPage(w, c, PageRedirectURIEmpty)
		return
	case scope == "":
		s.errorPage(w, c, PageScopeEmpty)
		return
	case state == "":
		// state is "optional" in the doc, yet 10013 "state不能为空" is in its
		// error table; the project always sends one. UNCONFIRMED.
		s.errorPage(w, c, PageStateEmpty)
		return
	}
	order := oaOrder
	if qr {
		order = qrOrder
	}
	if !order.MatchString(raw) {
		s.errorPage(w, c, PageBadParamOrder)
		return
	}
	app, ok := s.apps[appID]
	if !ok {
		s.errorPage(w, c, PageUnknownAppID)
		return
	}
	if qr {
		// qrconnect is for website apps with snsapi_login only (§3). WeChat
		// shows "Scope 参数错误或没有 Scope 权限"; 10005 is the nearest code.
		if app.Kind != WebsiteApp || scope != scopeLogin {
			s.errorPage(w, c, PageScopeUnauthorized)
			return
		}
	} else {
		if app.Kind != OfficialAccount {
			s.errorPage(w, c, PageOpenPlatformAppID)
			return
		}
		if scope != scopeBase && scope != scopeUserInfo {
			s.errorPage(w, c, PageScopeUnauthorized)
			return
		}
	}
	if !s.redirectAllowed(redirectURI) {
		s.errorPage(w, c, PageRedirectURIMismatch)
		return
	}
	if !validState(state) {
		s.errorPage(w, c, PageInvalidState)
		return
	}

	p := &pendingAuth{appID: appID, redirectURI: redirectURI, scope: scope, state: state, qr: qr, forcePopup: c.ForcePopup}
	s.mu.Lock()
	autoUser, autoRefuse, mode := s.autoUser, s.autoRefuse, s.refusalMode
	s.mu.Unlock()
	if u := r.Header.Get(HeaderApproveAs); u != "" && s.cfg.ApproveHeader && fromLoopback(r) {
		autoUser, autoRefuse = u, false
	}
	switch {
	case autoRefuse:
		s.refuse(w, r, p, mode)
	case autoUser != "":
		c.UserKey = autoUser
		s.approve(w, r, c, p, autoUser)
	case scope == scopeBase && !qr && s.signedInUser(r) != "":
		// Inside WeChat the person is always known, and snsapi_base shows
		// no page (§1): once a person chose who they are in this browser,
		// silent authorizations go straight back.
		c.UserKey = s.signedInUser(r)
		s.approve(w, r, c, p, c.UserKey)
	default:
		s.consentPage(w, p, app)
	}
}

// simUserCookie remembers which simulated person uses this browser, as the
// WeChat app knows who is signed in.
const simUserCookie = "sim_wechat_user"

// simBrowserCookie (Config.DevBrowserSwitch) marks a browser that plays
// WeChat's in-app browser.
const simBrowserCookie = "sim_wechat_browser"

// inWeChat: the Official Account's web authorization runs only in WeChat's
// in-app browser (§1: "opened in WeChat client"), whose User-Agent carries
// MicroMessenger (WeCom's, wxwork, carries it too). In dev mode a browser
// may say it plays one (serveWeChatBrowser).
func (s *Simulator) inWeChat(r *http.Request) bool {
	if strings.Contains(r.UserAgent(), "MicroMessenger") {
		return true
	}
	if !s.cfg.DevBrowserSwitch {
		return false
	}
	ck, err := r.Cookie(simBrowserCookie)
	return err == nil && ck.Value == "1"
}

// openInWeChatPage is WeChat's answer to its Official Account authorize URL
// in any other browser: a WeUI message page, "请在微信客户端打开链接", and
// nothing else (the exact HTML is UNCONFIRMED; this follows the many sites
// that copy it). With DevBrowserSwitch it offers dev mode's way on.
func (s *Simulator) openInWeChatPage(w http.ResponseWriter, c *Call, rawQuery string) {
	c.Errcode = PageOpenInWeChat
	setPageHeaders(w)
	w.Header().Set("X-Sim-Errcode", strconv.Itoa(PageOpenInWeChat))
	_ = pageTmpl.ExecuteTemplate(w, "open-in-wechat", map[string]any{
		"Dev":    s.cfg.DevBrowserSwitch,
		"Action": "../.." + pathWeChatBrowser, // relative: works under any mount prefix
		"Query":  rawQuery,
	})
}

// parsePostForm reads a form POSTed to the simulator's pages (at most 64
// KiB); anything else is answered here and it returns false.
func parsePostForm(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return false
	}
	return true
}

// serveWeChatBrowser (DevBrowserSwitch only) makes this browser count as
// WeChat's in-app browser from now on, then opens the authorize URL again.
func (s *Simulator) serveWeChatBrowser(w http.ResponseWriter, r *http.Request) {
	if !parsePostForm(w, r) {
		return
	}
	q := r.PostForm.Get("q")
	if strings.ContainsAny(q, "\r\n#") {
		http.Error(w, "bad query", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: simBrowserCookie, Value: "1", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	// Relative, and always to the authorize page: no open redirect. (Not
	// http.Redirect: it would resolve the path without the mount prefix.)
	// The query goes back as it came, to be checked like any other (§1).
	w.Header().Set("Location", ".."+pathAuthorize+"?"+q)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusSeeOther)
}

func (s *Simulator) signedInUser(r *http.Request) string {
	ck, err := r.Cookie(simUserCookie)
	if err != nil {
		return ""
	}
	if _, ok := s.byKey[ck.Value]; !ok {
		return ""
	}
	return ck.Value
}

// fromLoopback reports whether r came from a loopback address.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redirectAllowed applies the 网页授权域名 rules (§8): an absolute http(s)
// URL, no port unless AllowPort, host in CallbackHosts (exact) if set.
func (s *Simulator) redirectAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	if u.Port() != "" && !s.cfg.AllowPort {
		return false
	}
	if len(s.cfg.CallbackHosts) == 0 {
		return true
	}
	for _, h := range s.cfg.CallbackHosts {
		if strings.EqualFold(h, u.Host) || (!strings.Contains(h, ":") && strings.EqualFold(h, u.Hostname())) {
			return true
		}
	}
	return false
}

func validState(st string) bool {
	if len(st) == 0 || len(st) > 128 {
		return false
	}
	for i := 0; i < len(st); i++ {
		ch := st[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9') {
			return false
		}
	}
	return true
}

// approve issues a code for userKey and redirects to redirect_uri?code&state (§1, §3).
func (s *Simulator) approve(w http.ResponseWriter, r *http.Request, c *Call, p *pendingAuth, userKey string) {
	if _, ok := s.byKey[userKey]; !ok {
		s.errorPage(w, c, PageUnknownUser)
		return
	}
	app := s.apps[p.appID]
	s.mu.Lock()
	code := s.issueCodeLocked(p.appID, userKey, p.scope, false, s.codeTTL(app))
	s.mu.Unlock()
	http.Redirect(w, r, appendQuery(p.redirectURI, "code="+url.QueryEscape(code)+"&state="+url.QueryEscape(p.state)), http.StatusFound)
}

// refuse is what happens when the user taps 拒绝 (§1, §3).
func (s *Simulator) refuse(w http.ResponseWriter, r *http.Request, p *pendingAuth, mode RefusalMode) {
	if mode == RefuseRedirectStateOnly {
		http.Redirect(w, r, appendQuery(p.redirectURI, "state="+url.QueryEscape(p.state)), http.StatusFound)
		return
	}
	setPageHeaders(w)
	_ = pageTmpl.ExecuteTemplate(w, "refused", nil)
}

// appendQuery adds extra to u's query with "?" or "&" (§1: WeCom's doc shows
// "&" when redirect_uri already has a query), before any fragment.
func appendQuery(u, extra string) string {
	frag := ""
	if i := strings.IndexByte(u, '#'); i >= 0 {
		u, frag = u[:i], u[i:]
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
		if strings.HasSuffix(u, "?") || strings.HasSuffix(u, "&") {
			sep = ""
		}
	}
	return u + sep + extra + frag
}

// serveDecide handles the consent form's POST. The per-render token makes a
// forged request fail: it is random, single-use and expires.
func (s *Simulator) serveDecide(w http.ResponseWriter, r *http.Request, c *Call) {
	if !parsePostForm(w, r) {
		return
	}
	tok := r.PostForm.Get("t")
	s.mu.Lock()
	p, ok := s.forms[tok]
	if ok {
		delete(s.forms, tok)
	}
	mode := s.refusalMode
	s.mu.Unlock()
	if !ok || s.now().After(p.expires) {
		s.errorPageStatus(w, c, PageFormExpired, http.StatusForbidden)
		return
	}
	c.AppID, c.Scope, c.ForcePopup = p.appID, p.scope, p.forcePopup
	if r.PostForm.Get("action") != "allow" {
		s.refuse(w, r, p, mode)
		return
	}
	c.UserKey = r.PostForm.Get("user")
	if _, ok := s.byKey[c.UserKey]; ok {
		http.SetCookie(w, &http.Cookie{Name: simUserCookie, Value: c.UserKey, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	s.approve(w, r, c, p, c.UserKey)
}

// errorPage shows WeChat's authorize error page: HTTP 200, the code and the
// Chinese text (§1: "shown, not redirected"). X-Sim-Errcode is the
// simulator's own header, for tests.
func (s *Simulator) errorPage(w http.ResponseWriter, c *Call, code int) {
	s.errorPageStatus(w, c, code, http.StatusOK)
}

func (s *Simulator) errorPageStatus(w http.ResponseWriter, c *Call, code, status int) {
	c.Errcode = code
	setPageHeaders(w)
	w.Header().Set("X-Sim-Errcode", strconv.Itoa(code))
	msg, ok := pageMessages[code]
	if !ok {
		msg = "模拟错误"
	}
	w.WriteHeader(status)
	_ = pageTmpl.ExecuteTemplate(w, "error", struct {
		Code int
		Msg  string
	}{code, msg})
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// No form-action: browsers apply it to the redirect that follows the POST,
	// which goes to the relying party's redirect_uri.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; frame-ancestors 'none'")
}

type userCard struct {
	Key, Nickname, Initial string
	Color                  int
	Snapshot               bool
}

// consentPage renders the authorization page: WeChat's look, and a picker of
// the simulated users (for snsapi_base the real WeChat shows nothing, but a
// person still has to say who they are).
func (s *Simulator) consentPage(w http.ResponseWriter, p *pendingAuth, app App) {
	tok := randomToken()
	p.expires = s.now().Add(formTTL)
	s.mu.Lock()
	s.sweepLocked()
	s.forms[tok] = p
	s.mu.Unlock()

	cards := make([]userCard, 0, len(s.users))
	for i, u := range s.users {
		if u.Hidden {
			continue
		}
		cards = append(cards, userCard{Key: u.Key, Nickname: displayName(u), Initial: initial(displayName(u)), Color: i % 6, Snapshot: u.Snapshot})
	}
	name := app.Name
	if name == "" {
		name = app.ID
	}
	action := "../../_sim/authorize" // relative: works under any mount prefix
	if p.qr {
		action = "../_sim/authorize"
	}
	setPageHeaders(w)
	_ = pageTmpl.ExecuteTemplate(w, "consent", map[string]any{
		"AppName":  name,
		"AppIcon":  initial(name),
		"QR":       p.qr,
		"UserInfo": p.scope == scopeUserInfo,
		"Silent":   p.scope == scopeBase,
		"Action":   action,
		"Token":    tok,
		"Users":    cards,
	})
}

func displayName(u User) string {
	if u.Nickname != "" {
		return u.Nickname
	}
	return u.Key
}

func initial(s string) string {
	r, _ := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return "?"
	}
	return strings.ToUpper(string(r))
}

const pageCSS = `*{box-sizing:border-box}body{margin:0;font-family:-apple-system,BlinkMacSystemFont,"PingFang SC","Helvetica Neue","Microsoft YaHei",sans-serif;background:#ededed;color:#191919;-webkit-text-size-adjust:100%}
.sim{background:#fa9d3b;color:#fff;font-size:12px;text-align:center;padding:4px}
main{max-width:480px;margin:0 auto;padding:32px 24px;background:#fff;min-height:100vh}
.app{display:flex;align-items:center;gap:10px;margin-bottom:28px}
.logo{width:32px;height:32px;border-radius:6px;background:#07C160;color:#fff;display:flex;align-items:center;justify-content:center;font-weight:600}
.appname{font-size:15px;color:#191919}.appname small{color:#888;margin-left:4px}
h1{font-size:20px;font-weight:600;margin:0 0 8px}.sub{font-size:14px;color:#888;margin:0 0 20px}
.users{border-top:1px solid #eee;margin-bottom:32px}
.user{display:flex;align-items:center;gap:12px;padding:12px 0;border-bottom:1px solid #eee;cursor:pointer}
.user input{accent-color:#07C160;width:18px;height:18px;margin:0}
.av{width:40px;height:40px;border-radius:4px;color:#fff;display:flex;align-items:center;justify-content:center;font-size:18px}
.c0{background:#576b95}.c1{background:#fa5151}.c2{background:#10aeff}.c3{background:#ffc300}.c4{background:#91d300}.c5{background:#b2b2b2}
.nick{flex:1;font-size:16px}.tag{font-size:12px;color:#fa9d3b;border:1px solid #fa9d3b;border-radius:3px;padding:0 4px}
.qr{width:180px;height:180px;margin:0 auto 16px;border:8px solid #fff;outline:1px solid #ddd;background:repeating-conic-gradient(#191919 0 25%,#fff 0 50%) 0 0/24px 24px}
.btns{display:flex;flex-direction:column;align-items:center;gap:12px}
button{width:184px;height:40px;border:0;border-radius:4px;font-size:17px;font-weight:600;cursor:pointer}
.allow{background:#07C160;color:#fff}.deny{background:#f2f2f2;color:#07C160}
.err{text-align:center;padding-top:64px}.icon{width:64px;height:64px;border-radius:50%;background:#fa5151;color:#fff;font-size:40px;line-height:64px;margin:0 auto 24px}
.code{color:#888;font-size:14px}
.msg{text-align:center;padding-top:72px}.msg .icon{width:80px;height:80px;line-height:80px;font-size:48px;font-family:Georgia,serif;font-style:italic}.icon.info{background:#10aeff}.msg h1{font-size:20px;font-weight:400}
.dev{margin-top:48px;padding-top:20px;border-top:1px dashed #fa9d3b;font-size:13px;color:#888;display:flex;flex-direction:column;align-items:center;gap:12px}.dev p{margin:0}.dev button{width:auto;padding:0 20px;font-size:15px}`

var pageTmpl = template.Must(template.New("pages").Parse(`
{{define "head"}}{{template "top" "微信授权"}}{{end}}
{{define "top"}}<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1,maximum-scale=1,user-scalable=no"><title>{{.}}</title><style>` + pageCSS + `</style></head><body><div class="sim">模拟微信 · 仅用于开发和测试</div>{{end}}
{{define "consent"}}{{template "head"}}<main>
<div class="app"><div class="logo">{{.AppIcon}}</div><div class="appname">{{.AppName}}{{if .QR}}<small>网站应用</small>{{end}}</div></div>
{{if .QR}}<h1>扫码登录</h1><div class="qr" role="img" aria-label="模拟二维码"></div><p class="sub">模拟用手机微信扫码：选择扫码的微信用户，并在手机上确认登录</p>
{{else if .UserInfo}}<h1>申请获取你的昵称、头像</h1><p class="sub">选择以哪个模拟微信用户授权</p>
{{else}}<h1>选择模拟微信用户 (静默授权)</h1><p class="sub">snsapi_base：真实微信不显示任何页面，直接返回 openid</p>{{end}}
<form method="post" action="{{.Action}}"><input type="hidden" name="t" value="{{.Token}}">
<div class="users">{{range $i, $u := .Users}}<label class="user"><input type="radio" name="user" value="{{$u.Key}}"{{if eq $i 0}} checked{{end}}><span class="av c{{$u.Color}}">{{$u.Initial}}</span><span class="nick">{{$u.Nickname}}</span>{{if $u.Snapshot}}<span class="tag">快照页虚拟用户</span>{{end}}</label>{{end}}</div>
<div class="btns"><button class="allow" type="submit" name="action" value="allow">{{if .QR}}确认登录{{else}}允许{{end}}</button>{{if not .Silent}}<button class="deny" type="submit" name="action" value="deny">拒绝</button>{{end}}</div>
</form></main></body></html>{{end}}
{{define "error"}}{{template "head"}}<main class="err"><div class="icon">!</div><h1>Oops! Something went wrong:(</h1><p class="code">错误码：<span id="errcode">{{.Code}}</span></p><p>{{.Msg}}</p></main></body></html>{{end}}
{{define "open-in-wechat"}}{{template "top" "抱歉，出错了"}}<main class="msg" data-sim-page="open-in-wechat"><div class="icon info">i</div><h1>请在微信客户端打开链接</h1>
{{if .Dev}}<form class="dev" method="post" action="{{.Action}}"><input type="hidden" name="q" value="{{.Query}}"><p>开发模式：这个浏览器不是微信的内置浏览器。<br>Dev mode: this browser is not WeChat's in-app browser.</p><button class="allow" type="submit">当作在微信中打开 · Continue as in WeChat</button></form>{{end}}</main></body></html>{{end}}
{{define "refused"}}{{template "head"}}<main class="err"><p class="code">你已拒绝授权，可以关闭此页面</p></main></body></html>{{end}}
`))

// serveAvatar serves /_sim/avatar/{user}/{size}: an SVG initial, so that
// HeadImgURL points at something real in dev mode without a network.
func (s *Simulator) serveAvatar(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, pathAvatar)
	key, _, _ := strings.Cut(rest, "/")
	u, ok := s.byKey[key]
	if !ok {
		http.NotFound(w, r)
		return
	}
	colors := []string{"#576b95", "#fa5151", "#10aeff", "#ffc300", "#91d300", "#b2b2b2"}
	color := colors[5] // snapshot users get WeChat's grey
	if !u.Snapshot {
		for i, v := range s.users {
			if v.Key == key {
				color = colors[i%len(colors)]
			}
		}
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(`<svg xmlns="http://www.w3.org/2000/svg" width="132" height="132" viewBox="0 0 132 132"><rect width="132" height="132" fill="` +
		color + `"/><text x="66" y="88" font-size="64" text-anchor="middle" fill="#fff" font-family="sans-serif">` +
		template.HTMLEscapeString(initial(displayName(u))) + `</text></svg>`))
}
