package directory_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

const header = "username,name,email,groups,openid,unionid,app_id,status\n"

func TestParseImportCSV(t *testing.T) {
	text := "\uFEFF" + "Status,USERNAME,name,email,groups,openid,unionid,app_id\n" + // BOM, any order, any case
		"pending,Alice,\"Wang, Alice\",a@example.com,ops; admins  Ops,o-1,u-1,wx1\n" +
		"\n" + // blank lines are skipped
		",bob,Bob,,,,u-2,\n" +
		",carol,\"Carol\nSecond line\",,,,,\n"
	rows, err := directory.ParseImportCSV(strings.NewReader(text))
	if err == nil {
		t.Fatalf("a name with a newline was accepted: %+v", rows)
	}
	var ie directory.ImportErrors
	if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Line != 5 {
		t.Fatalf("error %v, want one problem on line 5, where carol's record starts", err)
	}

	text = strings.Replace(text, "Carol\nSecond line", "Carol", 1)
	rows, err = directory.ParseImportCSV(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []directory.ImportRow{
		{Line: 2, Username: "alice", DisplayName: "Wang, Alice", Email: "a@example.com", Groups: []string{"admins", "ops"},
			Status: directory.StatusPending, Identity: directory.Identity{Provider: "wechat", AppID: "wx1", OpenID: "o-1", UnionID: "u-1"}},
		{Line: 4, Username: "bob", DisplayName: "Bob", Groups: []string{}, Status: directory.StatusActive,
			Identity: directory.Identity{Provider: "wechat", UnionID: "u-2"}},
		{Line: 5, Username: "carol", DisplayName: "Carol", Groups: []string{}, Status: directory.StatusActive},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d: %+v", len(rows), len(want), rows)
	}
	for i := range want {
		g, w := rows[i], want[i]
		if g.Line != w.Line || g.Username != w.Username || g.DisplayName != w.DisplayName || g.Email != w.Email ||
			!slices.Equal(g.Groups, w.Groups) || g.Status != w.Status || g.Identity != w.Identity {
			t.Fatalf("row %d = %+v\nwant %+v", i, g, w)
		}
	}
}

func TestParseImportCSVCollectsEveryErrorWithItsLine(t *testing.T) {
	text := header +
		"ok,Ok,,,,,,\n" + // 2
		"-bad,Bad,not-mail,,,,,\n" + // 3: username and email
		"fine,Fine,,a/b,,,,\n" + // 4: group
		"x,X,,,o-1,,,\n" + // 5: openid without app_id
		"y,Y,,,,,,banned\n" + // 6: status
		"ok,Other Name,,,,,,\n" + // 7: contradicts line 2
		"z,Z,,,o-9,,wx,\n" + // 8
		"w,W,,,o-9,,wx,\n" + // 9: o-9 already on line 8 for z
		"too,few,fields\n" // 10
	_, err := directory.ParseImportCSV(strings.NewReader(text))
	var ie directory.ImportErrors
	if !errors.As(err, &ie) {
		t.Fatalf("error %v, want ImportErrors", err)
	}
	var lines []int
	for _, e := range ie {
		lines = append(lines, e.Line)
		if !strings.HasPrefix(e.Error(), "line ") {
			t.Fatalf("error %q does not start with its line", e)
		}
	}
	if want := []int{3, 3, 4, 5, 6, 7, 9, 10}; !slices.Equal(lines, want) {
		t.Fatalf("problems on lines %v, want %v:\n%v", lines, want, err)
	}
	if !errors.Is(err, directory.ErrInvalid) || !errors.Is(err, directory.ErrIdentityTaken) {
		t.Fatalf("ImportErrors should match ErrInvalid and, for line 9, ErrIdentityTaken: %v", err)
	}
	for _, field := range []string{"username", "email", "groups", "app_id", "status"} {
		found := false
		for _, e := range ie {
			var ve *directory.ValidationError
			if errors.As(e, &ve) && ve.Field == field {
				found = true
			}
		}
		if !found {
			t.Fatalf("no error names field %q:\n%v", field, err)
		}
	}
}

func TestParseImportCSVHeader(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"empty file", "", "the first line names the columns"},
		{"missing column", "username,name,email,groups,openid,unionid,app_id\n", `missing column "status"`},
		{"unknown column", header[:len(header)-1] + ",phone\n", `unknown column "phone"`},
		{"duplicate column", "username,username,name,email,groups,openid,unionid,app_id,status\n", "appears twice"},
		{"bad quoting", "username,\"name\n", "line 1"},
	} {
		_, err := directory.ParseImportCSV(strings.NewReader(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "line 1") {
			t.Fatalf("%s: error %v, want line 1 and %q", c.name, err, c.want)
		}
	}
}

func TestParseImportCSVBadQuotingLaterStopsWithLine(t *testing.T) {
	_, err := directory.ParseImportCSV(strings.NewReader(header + "a,A,,,,,,\nb,B\"roken,,,,,,\n"))
	var ie directory.ImportErrors
	if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Line != 3 {
		t.Fatalf("error %v, want one problem on line 3", err)
	}
}

func TestImportErrorsMessageIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(header)
	for range 500 {
		b.WriteString("-bad,,,,,,,\n")
	}
	_, err := directory.ParseImportCSV(strings.NewReader(b.String()))
	var ie directory.ImportErrors
	if !errors.As(err, &ie) || len(ie) != 500 {
		t.Fatalf("want 500 collected errors, got %v", len(ie))
	}
	if msg := err.Error(); strings.Count(msg, "\n") > 25 || !strings.Contains(msg, "and 480 more") {
		t.Fatalf("the message lists every error (%d lines); want the first 20 and a count", strings.Count(msg, "\n"))
	}
}

func FuzzParseImportCSV(f *testing.F) {
	f.Add([]byte(header + "alice,Alice,a@example.com,ops;admins,o-1,u-1,wx1,active\n"))
	f.Add([]byte(header + "bob,\"B, \"\"Jr\"\"\",,,,u-2,,pending\n"))
	f.Add([]byte(header + "-bad,\x00,x@y,a/b,o,,,nope\nok,,,,,,,\nok,X,,,,,,\n"))
	f.Add([]byte("\uFEFFstatus,username,name,email,groups,openid,unionid,app_id,provider\n,a,,,,o,,w,wecom\n"))
	f.Add([]byte(header + "a,\"unterminated\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := directory.ParseImportCSV(bytes.NewReader(data))
		if err != nil {
			var ie directory.ImportErrors
			if !errors.As(err, &ie) || len(ie) == 0 {
				t.Fatalf("error %v is not a non-empty ImportErrors", err)
			}
			for _, e := range ie {
				if e.Line < 1 || !strings.HasPrefix(e.Error(), "line ") {
					t.Fatalf("error without a line number: %v", e)
				}
			}
			if rows != nil {
				t.Fatalf("rows returned with errors")
			}
			return
		}
		for _, r := range rows {
			if r.Line < 2 || r.Username == "" || strings.ToLower(r.Username) != r.Username ||
				!utf8.ValidString(r.DisplayName) || r.Status == "" {
				t.Fatalf("accepted row breaks the rules: %+v", r)
			}
		}
	})
}
