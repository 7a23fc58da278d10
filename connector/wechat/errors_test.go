package wechat

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	wx "github.com/wechat-oidc/wechat-oidc/wechat"
)

// TestWeChatErrorTableDocumented: docs/wechat-errors.md has a row for every
// errcode in the code's table, with the same OIDC error.
func TestWeChatErrorTableDocumented(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "wechat-errors.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	for _, e := range wechatErrorTable {
		code := strconv.Itoa(e.Code)
		if e.Code == 0 {
			code = "transport"
		}
		row := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(code) + ` \|[^\n]*\| ` + regexp.QuoteMeta(e.OIDCCode) + ` \|`)
		if !row.MatchString(doc) {
			t.Errorf("docs/wechat-errors.md lacks the row for %s → %s", code, e.OIDCCode)
		}
	}
}

// TestWriteWeChatErrorsDoc regenerates the table in docs/wechat-errors.md
// from wechatErrorTable when UPDATE_DOCS=1 (go test -run WriteWeChatErrorsDoc ./bridge).
func TestWriteWeChatErrorsDoc(t *testing.T) {
	if os.Getenv("UPDATE_DOCS") != "1" {
		t.Skip("set UPDATE_DOCS=1 to regenerate docs/wechat-errors.md's table")
	}
	path := filepath.Join("..", "..", "docs", "wechat-errors.md")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- table:begin -->", "<!-- table:end -->"
	doc := string(raw)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatal("markers missing")
	}
	var b strings.Builder
	b.WriteString(begin + "\n| errcode | meaning | OIDC error to the application | the person sees (zh-CN / en) | the operator's log says |\n|---|---|---|---|---|\n")
	for _, e := range append(wechatErrorTable, defaultWeChatError) {
		code, meaning := strconv.Itoa(e.Code), wx.CodeMeaning(e.Code)
		switch e.Code {
		case 0:
			code, meaning = "transport", "no answer, timeout, HTTP error, redirect or broken JSON"
		case -2:
			code, meaning = "other", "an errcode not listed here"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s / %s | %s |\n", code, meaning, e.OIDCCode, e.PersonZH, e.PersonEN, strings.ReplaceAll(e.Operator, "|", "\\|"))
	}
	doc = doc[:i] + b.String() + doc[j:]
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}
