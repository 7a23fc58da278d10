package wechat_test

import (
	"errors"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"go/types"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/wechat"
)

// Every Code* constant is in the table under its own name, and every code of
// wechat-api.md §5 has a constant.
func TestCodeTableMatchesConstants(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "errcodes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: nil, Error: func(error) {}}
	pkg, _ := conf.Check("wechat", fset, []*ast.File{f}, nil)
	n := 0
	for _, name := range pkg.Scope().Names() {
		c, ok := pkg.Scope().Lookup(name).(*types.Const)
		if !ok || !strings.HasPrefix(name, "Code") {
			continue
		}
		v, _ := constant.Int64Val(c.Val())
		n++
		if got := wechat.CodeName(int(v)); got != name {
			t.Errorf("table name for %d = %q, want %q", v, got, name)
		}
		if wechat.CodeMeaning(int(v)) == "" {
			t.Errorf("%s has no meaning", name)
		}
	}
	doc := []int{-1, 40001, 40003, 40013, 40014, 40029, 40030, 40125, 40163, 40164, 40226, 40243,
		41001, 41002, 41003, 41004, 41008, 41009, 42001, 42002, 42003, 42007, 43001, 43003, 45009, 45011, 48001, 50001, 50002}
	for _, code := range doc {
		if wechat.CodeName(code) == "" {
			t.Errorf("errcode %d of §5 has no constant", code)
		}
	}
	if n < len(doc) {
		t.Errorf("found %d constants, want at least %d", n, len(doc))
	}
}

func TestErrorKinds(t *testing.T) {
	all := []error{wechat.ErrInvalidCode, wechat.ErrCodeUsed, wechat.ErrBadCredentials, wechat.ErrScopeUnauthorized,
		wechat.ErrRateLimited, wechat.ErrBusy, wechat.ErrInvalidToken, wechat.ErrCodeBlocked, wechat.ErrUserLimited,
		wechat.ErrBadRequest, wechat.ErrUnavailable}
	tests := []struct {
		endpoint string
		code     int
		want     error
	}{
		{"/sns/oauth2/access_token", wechat.CodeInvalidCode, wechat.ErrInvalidCode},
		{"/sns/oauth2/access_token", wechat.CodeCodeExpired, wechat.ErrInvalidCode},
		{"/sns/oauth2/access_token", wechat.CodeCodeUsed, wechat.ErrCodeUsed},
		{"/sns/oauth2/access_token", wechat.CodeInvalidCredential, wechat.ErrBadCredentials},
		{"/sns/oauth2/access_token", wechat.CodeInvalidAppSecret, wechat.ErrBadCredentials},
		{"/sns/oauth2/access_token", wechat.CodeInvalidAppID, wechat.ErrBadCredentials},
		{"/sns/oauth2/access_token", wechat.CodeAppSecretFrozen, wechat.ErrBadCredentials},
		{"/sns/oauth2/access_token", wechat.CodeIPNotWhitelisted, wechat.ErrBadCredentials},
		{"/sns/userinfo", wechat.CodeAPIUnauthorized, wechat.ErrScopeUnauthorized},
		{"/sns/userinfo", wechat.CodeUserUnauthorized, wechat.ErrScopeUnauthorized},
		{"/sns/oauth2/access_token", wechat.CodeDailyQuota, wechat.ErrRateLimited},
		{"/sns/jscode2session", wechat.CodeMinuteQuota, wechat.ErrRateLimited},
		{"/sns/oauth2/access_token", wechat.CodeSystemBusy, wechat.ErrBusy},
		{"/sns/auth", wechat.CodeInvalidAccessToken, wechat.ErrInvalidToken},
		{"/sns/auth", wechat.CodeAccessTokenExpired, wechat.ErrInvalidToken},
		{"/sns/oauth2/refresh_token", wechat.CodeInvalidRefreshToken, wechat.ErrInvalidToken},
		{"/sns/oauth2/refresh_token", wechat.CodeRefreshTokenExpired, wechat.ErrInvalidToken},
		{"/sns/auth", wechat.CodeInvalidOpenID, wechat.ErrInvalidToken},
		{"/sns/userinfo", wechat.CodeTokenRevoked, wechat.ErrInvalidToken},
		{"/sns/auth", wechat.CodeInvalidCredential, wechat.ErrInvalidToken}, // 40001 on a token endpoint
		{"/sns/userinfo", wechat.CodeInvalidCredential, wechat.ErrInvalidToken},
		{"/sns/jscode2session", wechat.CodeCodeBlocked, wechat.ErrCodeBlocked},
		{"/sns/userinfo", wechat.CodeUserLimited, wechat.ErrUserLimited},
		{"/sns/oauth2/access_token", wechat.CodeMissingCode, wechat.ErrBadRequest},
		{"/sns/oauth2/access_token", wechat.CodeRequireGET, wechat.ErrBadRequest},
		{"/sns/oauth2/access_token", 99999, nil},
	}
	for _, tt := range tests {
		var err error = &wechat.Error{Endpoint: tt.endpoint, Code: tt.code, Msg: "m"}
		for _, k := range all {
			if got := errors.Is(err, k); got != (k == tt.want) {
				t.Errorf("%s %d: errors.Is(%v) = %v", tt.endpoint, tt.code, k, got)
			}
		}
		if wechat.ErrorCode(err) != tt.code {
			t.Errorf("ErrorCode = %d, want %d", wechat.ErrorCode(err), tt.code)
		}
	}
}

func TestErrorString(t *testing.T) {
	e := &wechat.Error{Endpoint: "/sns/oauth2/access_token", Code: 40029, Msg: "invalid code, rid: 6653e2b1-0b1d5a9c-1c6f0b3e"}
	if got, want := e.Error(), "wechat: /sns/oauth2/access_token: errcode 40029: invalid code, rid: 6653e2b1-0b1d5a9c-1c6f0b3e"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	e = &wechat.Error{Endpoint: "/sns/auth", Code: 40003}
	if got, want := e.Error(), "wechat: /sns/auth: errcode 40003: invalid openid"; got != want {
		t.Errorf("got %q want %q", got, want)
	}
	if wechat.ErrorCode(errors.New("x")) != 0 {
		t.Error("ErrorCode of a plain error should be 0")
	}
}
