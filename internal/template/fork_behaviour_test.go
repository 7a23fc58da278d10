package template_test

import (
	stdhtml "html/template"
	"strings"
	"testing"

	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
)

// escapeCases put hostile data in every context html/template escapes for.
const escapeCases = `<p title="{{.S}}">{{.S}}</p><a href="{{.U}}">x</a><a href="/q?v={{.S}}">y</a>` +
	`<script>var s = {{.S}}; var o = {{.M}};</script><style>p { color: {{.C}} }</style>` +
	`<img srcset="{{.U}}"><meta http-equiv="refresh" content="0; url={{.U}}">` +
	`{{range $k, $v := .M}}<i data-{{$k}}="{{$v}}">{{$v}}</i>{{end}}{{if .H}}{{.H}}{{end}}{{printf "%q" .S}}`

type escapeData struct {
	S, U, C string
	M       map[string]string
	H       stdhtml.HTML
}

type escapeDataCopy struct {
	S, U, C string
	M       map[string]string
	H       template.HTML
}

// TestHTMLCopyEscapesLikeTheStandardLibrary renders hostile data in each
// escaping context with the standard library's html/template and with the
// copy: the output must be the same bytes.
func TestHTMLCopyEscapesLikeTheStandardLibrary(t *testing.T) {
	for _, s := range []string{
		`"><script>alert(1)</script>`, `javascript:alert(1)`, `' onmouseover='x`, `</style><b>`,
		"\u2028\u2029</script>", `expression(alert(1))`, `data:text/html,<b>`, `&amp;&lt;`, "中文 · ok",
	} {
		m := map[string]string{"a": s, "b": "2"}
		var want, got strings.Builder
		if err := stdhtml.Must(stdhtml.New("t").Parse(escapeCases)).Execute(&want,
			escapeData{S: s, U: s, C: s, M: m, H: "<b>safe</b>"}); err != nil {
			t.Fatal(err)
		}
		if err := template.Must(template.New("t").Parse(escapeCases)).Execute(&got,
			escapeDataCopy{S: s, U: s, C: s, M: m, H: "<b>safe</b>"}); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("data %q:\n copy: %s\n std:  %s", s, got.String(), want.String())
		}
	}
}

type withMethod struct{ Name string }

func (withMethod) Greeting() string { return "hello" }

// TestTemplateMethodCallIsAnErrorNamingTheWayOut: the copy does not call
// methods; a template that names one fails to execute and says what to use.
func TestTemplateMethodCallIsAnErrorNamingTheWayOut(t *testing.T) {
	tm := template.Must(template.New("t").Parse(`{{.Greeting}}`))
	var b strings.Builder
	err := tm.Execute(&b, withMethod{Name: "x"})
	if err == nil {
		t.Fatalf("a method call rendered %q: the copy must not call methods", b.String())
	}
	if !strings.Contains(err.Error(), "can't evaluate field Greeting") || !strings.Contains(err.Error(), "call no methods") {
		t.Errorf("error %q does not say that methods are not called", err)
	}
}

// TestFunctionFieldsAndFuncsWork: what templates use instead of methods.
func TestFunctionFieldsAndFuncsWork(t *testing.T) {
	tm := template.Must(template.New("t").Funcs(template.FuncMap{"up": strings.ToUpper}).
		Parse(`{{call .T "k"}} {{up .Name}} {{call .T (up "<x>")}}`))
	var b strings.Builder
	data := struct {
		Name string
		T    func(string) string
	}{"a<b", func(k string) string { return "[" + k + "]" }}
	if err := tm.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	if want := "[k] A&lt;B [&lt;X&gt;]"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
