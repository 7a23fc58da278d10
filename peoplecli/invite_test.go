package peoplecli

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/internal/qrtest"
)

var linkPattern = regexp.MustCompile(`https://sso\.example\.com/invite/[A-Za-z0-9_-]+`)

// qrFromText reads the half-block QR code in text (the first run of lines
// with block characters) back into modules, draws them as a PNG (4 px per
// module, with a quiet zone of its own) and decodes it as a phone would.
func qrFromText(t *testing.T, text string) string {
	t.Helper()
	text = strings.NewReplacer(qrColour, "", qrReset, "").Replace(text)
	var rows [][]bool
	for _, line := range strings.Split(text, "\n") {
		if !strings.ContainsAny(line, "█▀▄") {
			if len(rows) > 0 {
				break // the code ended
			}
			continue // text before the code
		}
		var top, bottom []bool
		for _, r := range line {
			top = append(top, r == blockBoth || r == blockTop)
			bottom = append(bottom, r == blockBoth || r == blockBottom)
		}
		rows = append(rows, top, bottom)
	}
	if len(rows) < 21 {
		t.Fatalf("no QR code in:\n%s", text)
	}
	const scale, margin = 4, 4
	w := len(rows[0])
	img := image.NewGray(image.Rect(0, 0, (w+2*margin)*scale, (len(rows)+2*margin)*scale))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	for y, row := range rows {
		if len(row) != w {
			t.Fatalf("QR line %d has %d modules, want %d", y/2, len(row), w)
		}
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := range scale {
				for dx := range scale {
					img.SetGray((x+margin)*scale+dx, (y+margin)*scale+dy, color.Gray{Y: 0})
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	got, err := qrtest.DecodePNG(buf.Bytes())
	if err != nil {
		t.Fatalf("the terminal QR code does not decode: %v\n%s", err, text)
	}
	return got
}

// TestInviteQRDecodesToLink: the printed QR code, read back from its
// characters, scans to the printed link; the link's token is the
// invitation's.
func TestInviteQRDecodesToLink(t *testing.T) {
	e := newEnv(t)
	r := e.ok("invite", "--username", "lena", "--name", "Lena", "--email", "lena@example.com", "--groups", "ops",
		"--client", "wiki", "--ttl", "48h")
	link := linkPattern.FindString(r.stdout)
	if link == "" {
		t.Fatalf("no link {issuer}/invite/{token} (the issuer's trailing slash trimmed):\n%s", r.stdout)
	}
	if got := qrFromText(t, r.stdout[strings.Index(r.stdout, link)+len(link):]); got != link {
		t.Fatalf("QR decodes to %q, want %q", got, link)
	}
	wantContains(t, "invite", r.stdout, "single use", "valid until 2025-03-12 09:30Z", "Send the link privately", "shown only now")
	token := strings.TrimPrefix(link, "https://sso.example.com/invite/")
	inv, err := e.d().Invitations().Get(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Username != "lena" || inv.DisplayName != "Lena" || inv.ClientID != "wiki" || !slices.Equal(inv.Groups, []string{"ops"}) ||
		inv.CreatedBy != Actor || !inv.ExpiresAt.Equal(e.clock.now().Add(48*time.Hour)) || inv.State != directory.InvitationPending {
		t.Fatalf("invitation %+v", inv)
	}
	ev := e.lastEvent()
	if ev.Action != directory.ActionInvitationCreate || ev.Actor != Actor || ev.ClientID != "wiki" || !strings.Contains(ev.Reason, inv.ID) {
		t.Fatalf("audit row %+v", ev)
	}
	if strings.Contains(ev.Reason, token) {
		t.Fatal("the audit row holds the token")
	}
}

// TestTerminalQRColouredDecodes: on a terminal the code is wrapped in
// black-on-white escapes; stripped of them it is the same code.
func TestTerminalQRColouredDecodes(t *testing.T) {
	const link = "https://sso.example.com/invite/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"
	coloured, err := terminalQR(link, true)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := terminalQR(link, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(coloured, qrColour) || strings.Contains(plain, "\x1b") {
		t.Fatal("colour only on a terminal")
	}
	if got := qrFromText(t, coloured); got != link {
		t.Fatalf("decodes to %q", got)
	}
}

func TestInviteJSONAndNoQR(t *testing.T) {
	e := newEnv(t)
	r := e.ok("invite", "--username", "mo", "--json")
	var out InvitationJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !linkPattern.MatchString(out.Link) || out.Username != "mo" || out.ID == "" || out.Groups == nil ||
		!out.ExpiresAt.Equal(e.clock.now().Add(directory.DefaultInvitationTTL)) {
		t.Fatalf("%+v", out)
	}
	r = e.ok("invite", "--username", "mo", "--no-qr")
	if strings.ContainsAny(r.stdout, "█▀▄") {
		t.Fatalf("--no-qr printed a QR code:\n%s", r.stdout)
	}
}

// TestInviteBootstrapsFirstAdministrator: in an empty directory, an
// invitation with the admin group is how the first administrator comes to
// be; redeeming it (what /invite/{token} does after WeChat) makes them an
// active member of the admin group.
func TestInviteBootstrapsFirstAdministrator(t *testing.T) {
	e := newEnv(t)
	r := e.ok("invite", "--username", "root", "--name", "First Admin", "--groups", "admins")
	wantContains(t, "invite", r.stdout, "root will be an administrator (group admins)", "https://sso.example.com/admin")
	token := strings.TrimPrefix(linkPattern.FindString(r.stdout), "https://sso.example.com/invite/")
	p, err := e.d().Invitations().Redeem(context.Background(), token,
		directory.Identity{Provider: directory.ProviderWeChat, AppID: "wx123", OpenID: "oROOT"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Username != "root" || p.Status != directory.StatusActive || !slices.Equal(p.Groups, []string{"admins"}) {
		t.Fatalf("redeemed: %+v", p)
	}
}

func TestInviteUnknownClientListsTheClients(t *testing.T) {
	e := newEnv(t)
	r := e.people("invite", "--username", "nia", "--client", "grafna")
	if r.code != ExitError {
		t.Fatalf("%v", r)
	}
	wantContains(t, "stderr", r.stderr, `--client "grafna" is not a client`, "grafana, wiki")
	if n := len(e.events()); n != 0 {
		t.Fatalf("%d audit rows", n)
	}
}

func TestInviteDisabledUsernameIsRefused(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "oz")
	e.ok("disable", "oz")
	r := e.people("invite", "--username", "oz")
	if r.code != ExitError {
		t.Fatalf("%v", r)
	}
	wantContains(t, "stderr", r.stderr, "oz is disabled", "people enable oz", "another --username")
	if invs, err := e.d().Invitations().List(context.Background(), directory.InvitationQuery{}); err != nil || len(invs) != 0 {
		t.Fatalf("invitations written: %v %v", invs, err)
	}
}

func TestInviteExistingPersonSaysWhatAcceptingDoes(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "pat", "--groups", "ops")
	r := e.ok("invite", "--username", "pat", "--groups", "ops,dev")
	wantContains(t, "invite", r.stdout, "pat exists (active)", "binds the WeChat account", "dev,ops")
	if ev := e.lastEvent(); ev.PersonID != e.person("pat").ID {
		t.Fatalf("the audit row should name the existing person: %+v", ev)
	}
}
