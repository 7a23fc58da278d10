package wechat

import (
	"errors"
	"strconv"
)

// WeChat errcodes returned by the sns APIs (§5 of wechat-api.md, meanings from
// WxJava's WxMpErrorMsgEnum/WxMaErrorMsgEnum plus observed errmsg strings).
// codeTable below is the one place that says what each means.
const (
	CodeSystemBusy          = -1    // system busy / system error; transient
	CodeInvalidCredential   = 40001 // secret wrong or token invalid
	CodeInvalidGrantType    = 40002 // grant_type is not what the endpoint expects (WeChat global codes; not in §5)
	CodeInvalidOpenID       = 40003 // openid does not belong to this token/app
	CodeInvalidAppID        = 40013 // appid unknown
	CodeInvalidAccessToken  = 40014 // access_token invalid
	CodeInvalidCode         = 40029 // code invalid: expired, reused, malformed or for another appid (§5, R31)
	CodeInvalidRefreshToken = 40030 // refresh_token invalid
	CodeInvalidAppSecret    = 40125 // "invalid appsecret, rid: …"
	CodeCodeUsed            = 40163 // "code been used, rid: …"
	CodeIPNotWhitelisted    = 40164 // caller IP not in the whitelist
	CodeCodeBlocked         = 40226 // mini program: code blocked (high-risk user)
	CodeAppSecretFrozen     = 40243 // AppSecret frozen
	CodeMissingAccessToken  = 41001
	CodeMissingAppID        = 41002
	CodeMissingRefreshToken = 41003
	CodeMissingSecret       = 41004
	CodeMissingCode         = 41008
	CodeMissingOpenID       = 41009
	CodeAccessTokenExpired  = 42001
	CodeRefreshTokenExpired = 42002
	CodeCodeExpired         = 42003 // oauth_code expired (rare: expired codes usually give 40029)
	CodeTokenRevoked        = 42007 // user changed password; tokens invalid
	CodeRequireGET          = 43001
	CodeRequireHTTPS        = 43003
	CodeDailyQuota          = 45009
	CodeMinuteQuota         = 45011
	CodeAPIUnauthorized     = 48001 // e.g. /sns/userinfo with a snsapi_base token
	CodeUserUnauthorized    = 50001
	CodeUserLimited         = 50002
)

// Sentinel kinds of WeChat errors, for errors.Is. A *Error matches at most
// one kind; an errcode missing from the table matches none (but is still a
// *Error).
var (
	// ErrUnavailable: WeChat could not be reached or answered garbage
	// (timeout, connection refused, HTTP status other than 200, a body that is
	// not JSON or is cut short). Returned as *UnavailableError.
	ErrUnavailable = errors.New("wechat: unavailable")

	// ErrInvalidCode: the authorization code is unknown, expired, malformed or
	// for another app (40029, 42003). The user has to start again.
	ErrInvalidCode = errors.New("wechat: invalid code")
	// ErrCodeUsed: the code was already exchanged (40163), typically a
	// duplicated callback. The user has to start again.
	ErrCodeUsed = errors.New("wechat: code already used")
	// ErrBadCredentials: the operator's app configuration is wrong: appid,
	// secret, frozen secret, IP whitelist (40001, 40013, 40125, 40164, 40243).
	// Not the user's fault.
	ErrBadCredentials = errors.New("wechat: bad app credentials")
	// ErrScopeUnauthorized: the token or app lacks the permission for this
	// call (48001, 50001).
	ErrScopeUnauthorized = errors.New("wechat: scope unauthorized")
	// ErrRateLimited: a quota was hit (45009 daily, 45011 per minute).
	ErrRateLimited = errors.New("wechat: rate limited")
	// ErrBusy: WeChat's "system busy" (-1). Transient.
	ErrBusy = errors.New("wechat: system busy")
	// ErrInvalidToken: the access or refresh token (or the openid paired with
	// it) is invalid, expired or revoked (40003, 40014, 40030, 42001, 42002,
	// 42007; 40001 on /sns/auth and /sns/userinfo). Re-authorize.
	ErrInvalidToken = errors.New("wechat: invalid or expired token")
	// ErrCodeBlocked: mini program code of a high-risk user (40226).
	ErrCodeBlocked = errors.New("wechat: code blocked")
	// ErrUserLimited: the user is restricted (50002).
	ErrUserLimited = errors.New("wechat: user limited")
	// ErrBadRequest: the request itself was malformed: a missing parameter,
	// wrong grant_type, wrong method or scheme (40002, 41001-41009, 43001,
	// 43003). A bug in the caller.
	ErrBadRequest = errors.New("wechat: bad request")
)

type codeInfo struct {
	Name    string // the exported constant's name
	Meaning string // English meaning
	Kind    error  // sentinel, or nil
}

// codeTable is the single source of what each known errcode means.
var codeTable = map[int]codeInfo{
	CodeSystemBusy:          {"CodeSystemBusy", "system busy", ErrBusy},
	CodeInvalidCredential:   {"CodeInvalidCredential", "invalid credential (app secret wrong or token invalid)", ErrBadCredentials},
	CodeInvalidGrantType:    {"CodeInvalidGrantType", "invalid grant_type", ErrBadRequest},
	CodeInvalidOpenID:       {"CodeInvalidOpenID", "invalid openid", ErrInvalidToken},
	CodeInvalidAppID:        {"CodeInvalidAppID", "invalid appid", ErrBadCredentials},
	CodeInvalidAccessToken:  {"CodeInvalidAccessToken", "invalid access_token", ErrInvalidToken},
	CodeInvalidCode:         {"CodeInvalidCode", "invalid code", ErrInvalidCode},
	CodeInvalidRefreshToken: {"CodeInvalidRefreshToken", "invalid refresh_token", ErrInvalidToken},
	CodeInvalidAppSecret:    {"CodeInvalidAppSecret", "invalid appsecret", ErrBadCredentials},
	CodeCodeUsed:            {"CodeCodeUsed", "code been used", ErrCodeUsed},
	CodeIPNotWhitelisted:    {"CodeIPNotWhitelisted", "invalid ip, not in whitelist", ErrBadCredentials},
	CodeCodeBlocked:         {"CodeCodeBlocked", "code blocked", ErrCodeBlocked},
	CodeAppSecretFrozen:     {"CodeAppSecretFrozen", "appsecret frozen", ErrBadCredentials},
	CodeMissingAccessToken:  {"CodeMissingAccessToken", "access_token missing", ErrBadRequest},
	CodeMissingAppID:        {"CodeMissingAppID", "appid missing", ErrBadRequest},
	CodeMissingRefreshToken: {"CodeMissingRefreshToken", "refresh_token missing", ErrBadRequest},
	CodeMissingSecret:       {"CodeMissingSecret", "appsecret missing", ErrBadRequest},
	CodeMissingCode:         {"CodeMissingCode", "code missing", ErrBadRequest},
	CodeMissingOpenID:       {"CodeMissingOpenID", "openid missing", ErrBadRequest},
	CodeAccessTokenExpired:  {"CodeAccessTokenExpired", "access_token expired", ErrInvalidToken},
	CodeRefreshTokenExpired: {"CodeRefreshTokenExpired", "refresh_token expired", ErrInvalidToken},
	CodeCodeExpired:         {"CodeCodeExpired", "code expired", ErrInvalidCode},
	CodeTokenRevoked:        {"CodeTokenRevoked", "user changed password, tokens revoked", ErrInvalidToken},
	CodeRequireGET:          {"CodeRequireGET", "require GET method", ErrBadRequest},
	CodeRequireHTTPS:        {"CodeRequireHTTPS", "require https", ErrBadRequest},
	CodeDailyQuota:          {"CodeDailyQuota", "api daily quota reached", ErrRateLimited},
	CodeMinuteQuota:         {"CodeMinuteQuota", "api minute-quota reached", ErrRateLimited},
	CodeAPIUnauthorized:     {"CodeAPIUnauthorized", "api unauthorized", ErrScopeUnauthorized},
	CodeUserUnauthorized:    {"CodeUserUnauthorized", "user unauthorized", ErrScopeUnauthorized},
	CodeUserLimited:         {"CodeUserLimited", "user limited", ErrUserLimited},
}

// CodeName returns the name of the exported constant for code ("CodeInvalidCode"),
// or "" if the code is not in the table.
func CodeName(code int) string { return codeTable[code].Name }

// CodeMeaning returns the English meaning of code, or "" if unknown.
func CodeMeaning(code int) string { return codeTable[code].Meaning }

// Error is an errcode returned by WeChat (HTTP 200 with a non-zero errcode).
// It matches the sentinel kind of its code with errors.Is.
type Error struct {
	Endpoint string // API path, e.g. "/sns/oauth2/access_token"
	Code     int    // errcode
	Msg      string // errmsg as sent by WeChat (carries the rid for support tickets)
}

// Error returns e.g. "wechat: /sns/oauth2/access_token: errcode 40029: invalid code, rid: …".
func (e *Error) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = CodeMeaning(e.Code)
	}
	if msg == "" {
		msg = "unknown error"
	}
	return "wechat: " + e.Endpoint + ": errcode " + strconv.Itoa(e.Code) + ": " + msg
}

// Kind returns the sentinel kind of the error (ErrInvalidCode, ...), or nil
// for a code the table does not know.
func (e *Error) Kind() error {
	// 40001 means "secret wrong" where a secret is sent, but "token invalid"
	// on the token-bearing endpoints, which take no secret (§2c, §5;
	// chanxuehong's Auth() treats it as invalid).
	if e.Code == CodeInvalidCredential && (e.Endpoint == pathAuth || e.Endpoint == pathUserInfo) {
		return ErrInvalidToken
	}
	return codeTable[e.Code].Kind
}

// Unwrap returns the sentinel kind so that errors.Is(err, ErrInvalidCode) works.
func (e *Error) Unwrap() error { return e.Kind() }

// ErrorCode returns the WeChat errcode carried by err (a *Error anywhere in
// its chain), or 0 if there is none.
func ErrorCode(err error) int {
	var we *Error
	if errors.As(err, &we) {
		return we.Code
	}
	return 0
}
