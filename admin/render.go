package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
)

//go:embed templates/*.html templates/console.css
var assets embed.FS

// pageNames are the templates of templates/<name>.html, each rendered
// inside layout.html.
var pageNames = []string{"message", "reauth", "pending", "people", "person", "invitations", "invitation-created", "audit"}

var (
	// styles is the one stylesheet, inlined in every page.
	styles = mustRead("templates/console.css")
	// contentSecurityPolicy allows that stylesheet by its hash and no
	// script at all (CSP Level 2 hash sources).
	contentSecurityPolicy = "default-src 'none'; style-src '" + cspHash(styles) + "'; img-src data: https:; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	pages = parsePages()
)

func mustRead(name string) string {
	b, err := assets.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time: cannot be missing
	}
	return string(b)
}

func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		out[n] = template.Must(template.New("layout.html").Funcs(pageFuncs).ParseFS(assets, "templates/layout.html", "templates/"+n+".html"))
	}
	return out
}

// view is what every page gets. Handlers put their page's data in Data.
type view struct {
	Page  string // the data-page marker
	Lang  string // "zh" or "en"
	Title string
	Nav   string // the tab that is on: pending, people, invitations, audit
	Base  string // the console's path
	// Admin is the signed-in administrator; nil on pages shown to others.
	Admin     *directory.Person
	CSRF      string
	Flash     *flashView
	LangURL   string // the same page in the other language
	RequestID string
	CSS       template.CSS
	// Org and Logo: whose console this is (ui.organization, ui.logo).
	Org  string
	Logo template.URL
	Data any

	// AdminGroup is the admin group's name.
	AdminGroup string

	// What pages compute from the request's language and the console's
	// time zone, called as {{call $.T "key"}}: fields of function type,
	// not methods, because the template package calls no methods
	// (internal/template says why: binary size). The rest is pageFuncs.
	T    func(key string) string              // the message key in the page's language
	Tf   func(key string, args ...any) string // T with its %s/%d verbs filled in
	Time func(t time.Time) string             // in the console's time zone; the zero time as "—"
}

// pageFuncs are the templates' functions that need no request.
var pageFuncs = template.FuncMap{
	"name":    personName,
	"dot":     dotJoin,
	"initial": initial,
	// set: whether a time is known (a zero time.Time is "unknown").
	"set":    func(t time.Time) bool { return !t.IsZero() },
	"groups": groupsLine,
}

type flashView struct {
	Error bool
	Key   string
	Text  string
}

// view starts a page's view for this request.
func (c *Console) view(ec echo.Context, page, titleKey string) *view {
	lang := c.lang(ec)
	v := &view{
		Page: page, Lang: lang, Base: c.base, CSS: template.CSS(styles), Org: c.org, Logo: c.logo,
		RequestID:  ec.Response().Header().Get("X-Request-Id"),
		AdminGroup: c.adminGroup,
	}
	v.T = func(key string) string { return message(v.Lang, key) }
	v.Tf = func(key string, args ...any) string {
		if len(args) == 0 {
			return v.T(key)
		}
		return fmt.Sprintf(v.T(key), args...)
	}
	v.Time = func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(c.loc).Format("2006-01-02 15:04 MST")
	}
	v.Title = v.T(titleKey)
	if a := adminOf(ec); a != nil {
		v.Admin = &a.Person
		v.CSRF = a.Session.CSRF
		if f := a.Session.Flash; f != nil {
			v.Flash = &flashView{Error: f.Error, Key: f.Key, Text: v.T(f.Key)}
			if f.Arg != "" {
				v.Flash.Text = v.Tf(f.Key, f.Arg)
			}
		}
	}
	other := "en"
	if lang == "en" {
		other = "zh"
	}
	r := ec.Request()
	u := url.URL{Path: r.URL.Path, RawQuery: r.URL.RawQuery}
	if r.Method != http.MethodGet {
		u = url.URL{Path: c.url("/" + navOf(page))}
	}
	q := u.Query()
	q.Set("lang", other)
	u.RawQuery = q.Encode()
	v.LangURL = u.String()
	v.Nav = navOf(page)
	return v
}

// navOf is the tab a page belongs to.
func navOf(page string) string {
	switch page {
	case "people", "person":
		return "people"
	case "invitations", "invitation-created":
		return "invitations"
	case "audit":
		return "audit"
	}
	return "pending"
}

// personName is how a person is called on pages.
func personName(p directory.Person) string {
	if p.DisplayName != "" {
		return p.DisplayName
	}
	return p.Username
}

// dotJoin joins the non-empty parts with " · ".
func dotJoin(parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, " · ")
}

// initial is the first letter of a name, for an avatar placeholder.
func initial(name string) string {
	for _, r := range name {
		return strings.ToUpper(string(r))
	}
	return "?"
}

// groupsLine shows groups as one editable line.
func groupsLine(groups []string) string { return strings.Join(groups, " ") }

// render writes a page.
func (c *Console) render(ec echo.Context, status int, name string, v *view) error {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.ErrorContext(ec.Request().Context(), "admin: rendering a page", "page", name, "error", err)
		return ec.String(http.StatusInternalServerError, "internal error")
	}
	return ec.HTMLBlob(status, buf.Bytes())
}

// messageData is a page that says one thing and offers where to go.
type messageData struct {
	Body  string
	Ref   string
	Links []link
}

type link struct {
	URL, Label string
	Secondary  bool
}

// viewRef is a reference to show and to find in the log or audit trail.
type viewRef struct{ Ref string }

// renderMessage shows a message page (errors, refusals, signed out).
func (c *Console) renderMessage(ec echo.Context, status int, page, titleKey, bodyKey string, ref *viewRef) error {
	v := c.view(ec, page, titleKey)
	d := messageData{Body: v.T(bodyKey)}
	if ref != nil {
		d.Ref = ref.Ref
	}
	signIn := c.url(PathSignIn)
	switch page {
	case "forbidden":
		d.Links = []link{{URL: signIn + "?switch=1", Label: v.T("link.switch")}}
	case "not-found":
		d.Links = []link{{URL: c.url("/people"), Label: v.T("link.back")}}
	case "csrf":
		d.Links = []link{{URL: c.url("/pending"), Label: v.T("link.back")}}
	case "unavailable":
		d.Links = []link{{URL: ec.Request().URL.Path, Label: v.T("link.retry")}}
	case "signed-out":
		d.Links = []link{{URL: signIn, Label: v.T("link.signin")}, {URL: c.provider.URL(providerLogoutPath), Label: v.T("link.logout"), Secondary: true}}
	default:
		d.Links = []link{{URL: signIn, Label: v.T("link.signin")}}
	}
	v.Data = d
	return c.render(ec, status, "message", v)
}

// forbidden is the 403 page for a signed-in person who may not use the
// console.
func (c *Console) forbidden(ec echo.Context) error {
	ec.Set(ctxAdmin, nil)
	return c.renderMessage(ec, http.StatusForbidden, "forbidden", "forbidden.title", "forbidden.body", nil)
}

// unavailable logs err under a reference and shows a 503 page with it.
func (c *Console) unavailable(ec echo.Context, err error) error {
	ref := directory.NewRef()
	c.log.ErrorContext(ec.Request().Context(), "admin console: unavailable", "ref", ref, "error", err)
	return c.renderMessage(ec, http.StatusServiceUnavailable, "unavailable", "unavailable.title", "unavailable.body", &viewRef{ref})
}
