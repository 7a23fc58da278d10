package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// API paths (§2, §4).
const (
	pathAccessToken  = "/sns/oauth2/access_token"
	pathRefreshToken = "/sns/oauth2/refresh_token"
	pathAuth         = "/sns/auth"
	pathUserInfo     = "/sns/userinfo"
	pathCode2Session = "/sns/jscode2session"
)

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *Call)

func (s *Simulator) apiHandler(path string) handlerFunc {
	switch path {
	case pathAccessToken:
		return s.serveAccessToken
	case pathRefreshToken:
		return s.serveRefreshToken
	case pathAuth:
		return s.serveAuth
	case pathUserInfo:
		return s.serveUserInfo
	case pathCode2Session:
		return s.serveCode2Session
	}
	return nil
}

// statusWriter remembers the status written; with buffer set it holds the
// body back (for Truncated faults).
type statusWriter struct {
	http.ResponseWriter
	status int
	buffer *bytes.Buffer
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	if w.buffer == nil {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.buffer != nil {
		return w.buffer.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// withFault runs h for endpoint, applying an injected fault first, and
// records the call.
func (s *Simulator) withFault(w http.ResponseWriter, r *http.Request, endpoint string, api bool, h handlerFunc) {
	c := Call{Endpoint: endpoint, AppID: r.URL.Query().Get("appid")}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		c.HTTPStatus = sw.status
		s.record(c)
	}()

	f, faulty := s.takeFault(endpoint)
	if faulty {
		c.Fault = true
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return // the client is gone; nothing to answer
			}
		}
		if f.HTTPStatus != 0 && f.HTTPStatus != http.StatusOK {
			sw.Header().Set("Content-Type", "text/html; charset=utf-8")
			sw.WriteHeader(f.HTTPStatus)
			fmt.Fprintf(sw, "<html><head><title>%d %s</title></head><body><center><h1>%d %s</h1></center><hr><center>nginx</center></body></html>\n",
				f.HTTPStatus, http.StatusText(f.HTTPStatus), f.HTTPStatus, http.StatusText(f.HTTPStatus))
			return
		}
		if f.Errcode != 0 {
			if api {
				s.apiError(sw, &c, f.Errcode, defaultErrmsg(f.Errcode))
			} else {
				s.errorPage(sw, &c, f.Errcode)
			}
			return
		}
		if f.Truncated {
			sw.buffer = new(bytes.Buffer)
			h(sw, r, &c)
			body := sw.buffer.Bytes()
			body = body[:len(body)/2]
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			w.WriteHeader(sw.status)
			_, _ = w.Write(body)
			return
		}
	}
	h(sw, r, &c)
}

// errmsgs as WeChat words them (§5), with the current ", rid: …" suffix
// added by apiError.
var errmsgs = map[int]string{
	-1:    "system error",
	40002: "invalid grant_type",
	40003: "invalid openid",
	40013: "invalid appid",
	40014: "invalid access_token",
	40029: "invalid code",
	40030: "invalid refresh_token",
	40125: "invalid appsecret",
	40163: "code been used",
	40164: "invalid ip, not in whitelist",
	40226: "code blocked",
	41001: "access_token missing",
	41002: "appid missing",
	41003: "refresh_token missing",
	41004: "appsecret missing",
	41008: "missing code",
	41009: "missing openid",
	42001: "access_token expired",
	42002: "refresh_token expired",
	43001: "require GET method",
	45009: "reach max api daily quota limit",
	45011: "api minute-quota reach limit, must slower, retry next minute",
	48001: "api unauthorized",
	50001: "user unauthorized",
	50002: "user limited",
}

func defaultErrmsg(code int) string {
	if m, ok := errmsgs[code]; ok {
		return m
	}
	return "simulated error"
}

func (s *Simulator) writeJSON(w http.ResponseWriter, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	// HTTP 200, text/plain by default, UTF-8 JSON (§5).
	w.Header().Set("Content-Type", s.ctype)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

type errorBody struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// apiError answers {"errcode":code,"errmsg":"msg, rid: …"} with HTTP 200
// (§5). 48001 uses the older ", hints: [ req_id: … ]" suffix, as observed (§2d).
func (s *Simulator) apiError(w http.ResponseWriter, c *Call, code int, msg string) {
	c.Errcode = code
	switch {
	case code == 48001:
		msg += ", hints: [ req_id: " + randomString(14, alnum) + " ]"
	case code != -1:
		msg += ", rid: " + rid()
	}
	s.writeJSON(w, errorBody{code, msg})
}

// requireGET: only GET is allowed on the sns APIs (§5: 43001 "require GET method").
func (s *Simulator) requireGET(w http.ResponseWriter, r *http.Request, c *Call) bool {
	if r.Method != http.MethodGet {
		s.apiError(w, c, 43001, errmsgs[43001])
		return false
	}
	return true
}

// checkCodeRequest checks what the code exchanges share (§2a, §4): the
// parameters in WeChat's order of complaint, then the app and its secret.
func (s *Simulator) checkCodeRequest(w http.ResponseWriter, r *http.Request, c *Call, codeParam string) (App, string, bool) {
	q := r.URL.Query()
	appID, secret, code := q.Get("appid"), q.Get("secret"), q.Get(codeParam)
	fail := func(code int) (App, string, bool) {
		s.apiError(w, c, code, errmsgs[code])
		return App{}, "", false
	}
	switch {
	case appID == "":
		return fail(41002)
	case secret == "":
		return fail(41004)
	case code == "":
		return fail(41008)
	case q.Get("grant_type") != "authorization_code":
		return fail(40002)
	}
	app, ok := s.apps[appID]
	if !ok {
		return fail(40013)
	}
	if app.Secret != secret {
		return fail(40125)
	}
	return app, code, true
}

type tokenBody struct {
	AccessToken    string `json:"access_token"`
	ExpiresIn      int    `json:"expires_in"`
	RefreshToken   string `json:"refresh_token"`
	OpenID         string `json:"openid"`
	Scope          string `json:"scope"`
	IsSnapshotUser int    `json:"is_snapshotuser,omitempty"`
	UnionID        string `json:"unionid,omitempty"`
}

// serveAccessToken: GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code (§2a).
func (s *Simulator) serveAccessToken(w http.ResponseWriter, r *http.Request, c *Call) {
	if !s.requireGET(w, r, c) {
		return
	}
	app, code, ok := s.checkCodeRequest(w, r, c, "code")
	if !ok {
		return
	}
	appID := app.ID

	s.mu.Lock()
	now := s.now()
	g := s.codes[code]
	// Unknown, expired, a js_code, or another app's code: 40029 (R31: "expired,
	// reused, malformed, or appid mismatch"). Expiry gives 40029, not 42003 (§5).
	if g == nil || g.js || g.appID != appID || now.After(g.expires) {
		s.mu.Unlock()
		s.apiError(w, c, 40029, errmsgs[40029])
		return
	}
	c.Scope, c.UserKey = g.scope, g.userKey
	if g.used {
		s.mu.Unlock()
		s.apiError(w, c, 40163, errmsgs[40163])
		return
	}
	g.used = true // kept until it expires, so a second exchange gets 40163
	u := s.byKey[g.userKey]
	openID := s.OpenID(appID, u.Key)
	snapshot := u.Snapshot && g.scope == scopeUserInfo && app.Kind == OfficialAccount
	at, rt := randomToken(), randomToken()
	s.access[at] = &accessGrant{appID: appID, userKey: u.Key, scope: g.scope, openID: openID, snapshot: snapshot, expires: now.Add(accessTokenTTL)}
	s.refr[rt] = &refreshGrant{appID: appID, userKey: u.Key, scope: g.scope, openID: openID, snapshot: snapshot, access: at, expires: now.Add(refreshTokenTTL)}
	s.sweepLocked()
	s.mu.Unlock()

	body := tokenBody{AccessToken: at, ExpiresIn: int(accessTokenTTL / time.Second), RefreshToken: rt, OpenID: openID, Scope: g.scope}
	// unionid "只有当scope为snsapi_userinfo时返回" (§2a, §7): never for
	// snsapi_base; for website apps (snsapi_login) the token field is
	// UNCONFIRMED, returned here. Only when the app is bound and the user has one.
	if (g.scope == scopeUserInfo || g.scope == scopeLogin) && app.Bound {
		body.UnionID = u.UnionID
	}
	if snapshot {
		body.IsSnapshotUser = 1 // only present for snapshot users (§2a, §6)
	}
	s.writeJSON(w, body)
}

// serveRefreshToken: GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token (§2b).
// No secret. An unexpired access token is extended and returned again; an
// expired one is replaced (§2b, Open Platform doc). The refresh token itself
// is returned unchanged and its 30 days are not reset (UNCONFIRMED, R19).
func (s *Simulator) serveRefreshToken(w http.ResponseWriter, r *http.Request, c *Call) {
	if !s.requireGET(w, r, c) {
		return
	}
	q := r.URL.Query()
	appID, rt := q.Get("appid"), q.Get("refresh_token")
	switch {
	case appID == "":
		s.apiError(w, c, 41002, errmsgs[41002])
		return
	case rt == "":
		s.apiError(w, c, 41003, errmsgs[41003])
		return
	case q.Get("grant_type") != "refresh_token":
		s.apiError(w, c, 40002, errmsgs[40002])
		return
	}
	if _, ok := s.apps[appID]; !ok {
		s.apiError(w, c, 40013, errmsgs[40013])
		return
	}
	s.mu.Lock()
	now := s.now()
	g := s.refr[rt]
	if g == nil || g.appID != appID {
		s.mu.Unlock()
		s.apiError(w, c, 40030, errmsgs[40030])
		return
	}
	c.Scope, c.UserKey = g.scope, g.userKey
	if now.After(g.expires) {
		s.mu.Unlock()
		s.apiError(w, c, 42002, errmsgs[42002])
		return
	}
	if a := s.access[g.access]; a != nil && now.Before(a.expires) {
		a.expires = now.Add(accessTokenTTL)
	} else {
		delete(s.access, g.access)
		g.access = randomToken()
		s.access[g.access] = &accessGrant{appID: appID, userKey: g.userKey, scope: g.scope, openID: g.openID, snapshot: g.snapshot, expires: now.Add(accessTokenTTL)}
	}
	body := tokenBody{AccessToken: g.access, ExpiresIn: int(accessTokenTTL / time.Second), RefreshToken: rt, OpenID: g.openID, Scope: g.scope}
	s.sweepLocked()
	s.mu.Unlock()
	s.writeJSON(w, body)
}

// tokenFor checks access_token and openid as /sns/auth and /sns/userinfo do
// (§2c, §2d) and answers the error itself when they are not good.
func (s *Simulator) tokenFor(w http.ResponseWriter, r *http.Request, c *Call) (accessGrant, bool) {
	if !s.requireGET(w, r, c) {
		return accessGrant{}, false
	}
	q := r.URL.Query()
	tok, openID := q.Get("access_token"), q.Get("openid")
	if tok == "" {
		s.apiError(w, c, 41001, errmsgs[41001])
		return accessGrant{}, false
	}
	if openID == "" {
		s.apiError(w, c, 41009, errmsgs[41009])
		return accessGrant{}, false
	}
	s.mu.Lock()
	a, ok := s.access[tok]
	var g accessGrant
	if ok {
		g = *a
	}
	s.mu.Unlock()
	if !ok {
		s.apiError(w, c, 40014, errmsgs[40014])
		return g, false
	}
	c.AppID, c.Scope, c.UserKey = g.appID, g.scope, g.userKey
	if s.now().After(g.expires) {
		s.apiError(w, c, 42001, errmsgs[42001])
		return g, false
	}
	if g.openID != openID {
		s.apiError(w, c, 40003, errmsgs[40003])
		return g, false
	}
	return g, true
}

// serveAuth: GET /sns/auth?access_token&openid → {"errcode":0,"errmsg":"ok"} (§2c).
func (s *Simulator) serveAuth(w http.ResponseWriter, r *http.Request, c *Call) {
	if _, ok := s.tokenFor(w, r, c); !ok {
		return
	}
	s.writeJSON(w, errorBody{0, "ok"})
}

type userInfoBody struct {
	OpenID     string   `json:"openid"`
	Nickname   string   `json:"nickname"`
	Sex        int      `json:"sex"`
	Province   string   `json:"province"`
	City       string   `json:"city"`
	Country    string   `json:"country"`
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	UnionID    string   `json:"unionid,omitempty"`
}

// serveUserInfo: GET /sns/userinfo?access_token&openid[&lang] (§2d). A
// snsapi_base token gets 48001. Sex and region are whatever the User says:
// 0 and "" for everyone since the 2021 adjustment unless a test sets them.
func (s *Simulator) serveUserInfo(w http.ResponseWriter, r *http.Request, c *Call) {
	g, ok := s.tokenFor(w, r, c)
	if !ok {
		return
	}
	if g.scope != scopeUserInfo && g.scope != scopeLogin {
		s.apiError(w, c, 48001, errmsgs[48001])
		return
	}
	u := s.byKey[g.userKey]
	body := userInfoBody{
		OpenID: g.openID, Nickname: u.Nickname, Sex: u.Sex,
		Province: u.Province, City: u.City, Country: u.Country,
		HeadImgURL: absoluteURL(r, u.HeadImgURL), Privilege: []string{},
	}
	if s.apps[g.appID].Bound { // unionid only when bound (§2d, §7)
		body.UnionID = u.UnionID
	}
	s.writeJSON(w, body)
}

// absoluteURL makes a mount-relative path ("/_sim/avatar/...") absolute,
// using the prefix http.StripPrefix removed (the difference between
// RequestURI and URL.Path).
func absoluteURL(r *http.Request, p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	reqPath, _, _ := strings.Cut(r.RequestURI, "?")
	prefix := ""
	if strings.HasSuffix(reqPath, r.URL.Path) {
		prefix = strings.TrimSuffix(reqPath, r.URL.Path)
	}
	return scheme + "://" + r.Host + prefix + p
}

type sessionBody struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	UnionID    string `json:"unionid,omitempty"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
}

// serveCode2Session: GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code (§4).
// Success carries "errcode":0 as in the doc's example. unionid when the mini
// program is bound, without consent (§7, since 2021).
func (s *Simulator) serveCode2Session(w http.ResponseWriter, r *http.Request, c *Call) {
	if !s.requireGET(w, r, c) {
		return
	}
	app, code, ok := s.checkCodeRequest(w, r, c, "js_code")
	if !ok {
		return
	}
	appID := app.ID
	s.mu.Lock()
	g := s.codes[code]
	if g == nil || !g.js || g.appID != appID || s.now().After(g.expires) {
		s.mu.Unlock()
		s.apiError(w, c, 40029, errmsgs[40029])
		return
	}
	c.UserKey = g.userKey
	if g.used {
		s.mu.Unlock()
		s.apiError(w, c, 40163, errmsgs[40163])
		return
	}
	g.used = true
	s.mu.Unlock()
	u, known := s.byKey[g.userKey]
	if !known {
		s.apiError(w, c, 40029, errmsgs[40029])
		return
	}
	if u.Blocked {
		s.apiError(w, c, 40226, errmsgs[40226]) // high-risk user (§4)
		return
	}
	body := sessionBody{OpenID: s.OpenID(appID, u.Key), SessionKey: randomSessionKey(), ErrMsg: "ok"}
	if app.Bound {
		body.UnionID = u.UnionID
	}
	s.writeJSON(w, body)
}

// randomSessionKey is 16 random bytes in base64, like WeChat's session_key.
func randomSessionKey() string {
	return randomString(22, alnum+"+/") + "=="
}
