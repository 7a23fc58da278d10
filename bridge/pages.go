package bridge

import (
	"bytes"
	"embed"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplates = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// page is what every page of ours shows: a Chinese heading and message with
// an English line below, and the request id for support.
type page struct {
	// Name is the page's stable marker (data-page on <main>), for tests and
	// support: the wording may change, the name does not.
	Name      string
	Title     string
	Heading   string
	Message   string // zh-CN
	Detail    string // en
	ErrorCode string
	RetryURL  string
	Form      *pageForm
	RequestID string
	Icon      string // "warn", "info", "ok" or "none"
	// QRImage is a data: URL of a QR code (the cross-device desktop page).
	QRImage template.URL
	// Refresh reloads the page every so many seconds (polling without script).
	Refresh int
	Note    string
	// DevLink is shown in dev mode only (e.g. the QR code's URL, to play the phone).
	DevLink string
	// Ref is an audit reference the person can quote to an administrator.
	Ref string
	// LinkURL and LinkLabel make a button to another page.
	LinkURL, LinkLabel string

	// Org and Logo say whose sign-in this is (ui.organization, ui.logo):
	// renderPage fills them on every page.
	Org  string
	Logo template.URL
	// MatchCode is the number the desktop shows for the phone to pick
	// (data-match-code on it: tests read it as a person would).
	MatchCode string
	// Facts are labelled lines (the phone's view of the desktop).
	Facts []pageFact
	// ReferrerSameOrigin sends Referrer-Policy: same-origin instead of
	// no-referrer, so that the page's form POST carries our Origin.
	ReferrerSameOrigin bool
}

// pageFact is one labelled line on a page.
type pageFact struct {
	Label, Value string
}

// pageForm is a POST form on a page (e.g. sign-out confirmation).
type pageForm struct {
	Action  string
	Fields  map[string]string
	Button  string
	Buttons []pageButton
	// HasNumbers: some Buttons are numbers to pick from. renderPage sets
	// it; templates call no methods (internal/template says why).
	HasNumbers bool
}

type pageButton struct {
	Name, Value, Label string
	Secondary          bool
	// Number is one of the numbers to pick from (shown side by side).
	Number bool
}

var (
	pageSignedOut = page{
		Name:    "signed-out",
		Title:   "已退出登录 · Signed out",
		Heading: "你已退出登录",
		Message: "你已退出所有通过微信登录的应用。",
		Detail:  "You are signed out of every application you signed in to with WeChat.",
		Icon:    "ok",
	}
	pageLogoutConfirm = page{
		Name:    "logout-confirm",
		Title:   "退出登录 · Sign out",
		Heading: "要退出登录吗？",
		Message: "退出后，你需要重新用微信登录所有应用。",
		Detail:  "Signing out ends your WeChat sign-in for every application; you will sign in again next time.",
		Icon:    "info",
	}
	pageQRExpired = page{
		Name:    "qr-expired",
		Title:   "二维码已失效 · QR code expired",
		Heading: "二维码已失效",
		Message: "这个二维码已过期或已被使用。请在电脑上刷新页面后重新扫码。",
		Detail:  "This QR code has expired or was already used. Refresh the page on the computer and scan again.",
		Icon:    "warn",
	}
	pageQRTaken = page{
		Name:    "qr-taken",
		Title:   "二维码已被使用 · QR code already used",
		Heading: "二维码已被其他手机扫描",
		Message: "为保护账号安全，一个二维码只能由一部手机扫描和确认。",
		Detail:  "This QR code was already scanned by another phone. Only the phone that scanned it can confirm.",
		Icon:    "warn",
	}
	pageScanWithWeChat = page{
		Name:    "scan-with-wechat",
		Title:   "请使用微信扫一扫 · Scan with WeChat",
		Heading: "请使用微信扫一扫",
		Message: "请打开手机微信，点击右上角「+」→「扫一扫」扫描电脑上的二维码。",
		Detail:  "Open WeChat on your phone, tap + then Scan, and scan the code on the computer.",
		Icon:    "info",
	}
	pageQRConfirmed = page{
		Name:    "qr-confirmed",
		Title:   "已确认登录 · Confirmed",
		Heading: "已确认，请回到电脑上继续",
		Message: "电脑上的页面会自动继续。",
		Detail:  "Confirmed. The page on the computer continues by itself.",
		Icon:    "ok",
	}
	pageQRDenied = page{
		Name:    "qr-denied",
		Title:   "已取消登录 · Cancelled",
		Heading: "已取消登录",
		Message: "电脑上的登录已被取消。",
		Detail:  "The sign-in on the computer was cancelled.",
		Icon:    "info",
	}
	pageTooManyPending = page{
		Name:    "too-many-pending",
		Title:   "登录请求过多 · Too many sign-ins in progress",
		Heading: "登录请求过多",
		Message: "你的网络中有太多尚未完成的登录。请稍等片刻，或先完成已经打开的登录页面，再重试。",
		Detail:  "Too many sign-ins are in progress from your network. Finish the ones already open, or wait a moment and try again.",
		Icon:    "warn",
	}
	pageCrossOrigin = page{
		Name:    "cross-origin",
		Title:   "请求被拒绝 · Request refused",
		Heading: "请求被拒绝",
		Message: "这个确认请求来自其他网站，已被拒绝。请只在扫码后打开的页面上确认登录。",
		Detail:  "This confirmation came from another website and was refused. Confirm only on the page that opened after scanning.",
		Icon:    "warn",
	}
	pageQRWrongNumber = page{
		Name:    "qr-wrong-number",
		Title:   "数字不一致 · Wrong number",
		Heading: "数字不一致，登录已取消",
		Message: "你选择的数字和电脑上显示的不一致，这次登录已取消。如果电脑不在你面前，可能有人在冒用你的账号：请不要再扫描别人发来的二维码。",
		Detail:  "The number you picked is not the one the computer shows, so the sign-in was cancelled. If the computer is not in front of you, someone may be trying to use your account: do not scan codes others send you.",
		Icon:    "warn",
	}
	pageTooManyRequests = page{
		Name:    "too-many-requests",
		Title:   "请求过于频繁 · Too many requests",
		Heading: "请求过于频繁",
		Message: "请稍等片刻再试。",
		Detail:  "Too many sign-in requests from your network. Wait a moment and try again.",
		Icon:    "warn",
	}
	pageLoginExpired = page{
		Name:    "login-expired",
		Title:   "登录已失效 · Sign-in expired",
		Heading: "登录已失效",
		Message: "这个登录链接已过期或无效。请回到原来的应用重新登录。",
		Detail:  "This sign-in link has expired or is not valid. Go back to the application and sign in again.",
		Icon:    "warn",
	}
	pageOtherBrowser = page{
		Name:    "other-browser",
		Title:   "请在同一浏览器中完成登录 · Finish in the same browser",
		Heading: "请在发起登录的浏览器中完成登录",
		Message: "这次登录是在另一个浏览器中发起的，为保护你的账号，不能在这里完成。请回到原来的浏览器重新登录。",
		Detail:  "This sign-in was started in a different browser. To protect your account it cannot be finished here: go back to the application in the browser where you started and sign in again.",
		Icon:    "warn",
	}
	pageUnavailable = page{
		Name:    "unavailable",
		Title:   "服务暂时不可用 · Temporarily unavailable",
		Heading: "服务暂时不可用",
		Message: "登录服务暂时无法处理请求，请稍后重试。",
		Detail:  "The sign-in service cannot handle the request right now. Please try again shortly.",
		Icon:    "warn",
	}
)

func (s *Server) renderPage(c echo.Context, status int, p page) error {
	p.RequestID = requestID(c.Request().Context())
	p.Org = s.opt.UI.Organization
	// A data: URL config built from a PNG or JPEG it read and checked.
	p.Logo = template.URL(s.opt.UI.LogoDataURL)
	if p.Form != nil {
		f := *p.Form
		f.HasNumbers = slices.ContainsFunc(f.Buttons, func(b pageButton) bool { return b.Number })
		p.Form = &f
	}
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, "page.html", p); err != nil {
		s.log.ErrorContext(c.Request().Context(), "render page", "error", err)
		return c.String(http.StatusInternalServerError, "internal error")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	if p.ReferrerSameOrigin {
		c.Response().Header().Set("Referrer-Policy", "same-origin")
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// errorPage shows a protocol error that must not be redirected.
func (s *Server) errorPage(c echo.Context, status int, e *oidc.Error) error {
	s.log.InfoContext(c.Request().Context(), "request refused on an error page", "error", e.Code, "detail", e.Error())
	return s.renderPage(c, status, page{
		Name:      "error",
		Title:     "无法登录 · Cannot sign in",
		Heading:   "无法登录",
		Message:   "应用发来的登录请求无效，请联系应用的管理员。",
		Detail:    e.Description,
		ErrorCode: e.Code,
		Icon:      "warn",
	})
}
