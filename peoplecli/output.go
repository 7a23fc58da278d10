package peoplecli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// The JSON shapes. Their field names are the CLI's interface to scripts:
// add fields, never rename or remove one.

// PersonJSON is a person.
type PersonJSON struct {
	ID            string      `json:"id"`
	Username      string      `json:"username"`
	Name          string      `json:"name"`
	Email         string      `json:"email"`
	EmailVerified bool        `json:"email_verified"`
	Groups        []string    `json:"groups"`
	Status        string      `json:"status"`
	CreatedAt     time.Time   `json:"created_at"`
	UpdatedAt     time.Time   `json:"updated_at"`
	LastSignIn    *SignInJSON `json:"last_sign_in"` // null: never signed in
}

// SignInJSON is a person's last sign-in.
type SignInJSON struct {
	At       time.Time `json:"at"`
	ClientID string    `json:"client_id"`
	Flow     string    `json:"flow"`
	IP       string    `json:"ip"`
}

// IdentityJSON is one upstream key bound to a person: an openid (with its
// app id) or a unionid.
type IdentityJSON struct {
	Provider string    `json:"provider"`
	AppID    string    `json:"app_id"`
	OpenID   string    `json:"openid"`
	UnionID  string    `json:"unionid"`
	BoundAt  time.Time `json:"bound_at"`
}

// EventJSON is an audit row.
type EventJSON struct {
	ID        int64     `json:"id"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	PersonID  string    `json:"person_id"`
	ClientID  string    `json:"client_id"`
	Flow      string    `json:"flow"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	Result    string    `json:"result"`
	Reason    string    `json:"reason"`
	Ref       string    `json:"ref"`
}

// ShowJSON is `people show --json`.
type ShowJSON struct {
	Person     PersonJSON     `json:"person"`
	Identities []IdentityJSON `json:"identities"`
	Audit      []EventJSON    `json:"audit"` // newest first
}

// ChangeJSON is what a command that changes a person prints with --json.
type ChangeJSON struct {
	Action  string     `json:"action"`  // the audit action, e.g. person.disable
	Changed bool       `json:"changed"` // false: the person already was so
	Person  PersonJSON `json:"person"`  // as stored afterwards (remove, deny: as it was)
}

// InvitationJSON is `people invite --json`.
type InvitationJSON struct {
	Link      string    `json:"link"` // {issuer}/invite/{token}: the only copy of the token
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Name      string    `json:"name"`
	Email     string    `json:"email"`
	Groups    []string  `json:"groups"`
	ClientID  string    `json:"client_id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// ImportJSON is `people import --json`.
type ImportJSON struct {
	File            string `json:"file"`
	Rows            int    `json:"rows"`
	Created         int    `json:"created"`
	Updated         int    `json:"updated"`
	IdentitiesBound int    `json:"identities_bound"`
	Changed         bool   `json:"changed"`
}

func personJSON(p directory.Person) PersonJSON {
	out := PersonJSON{
		ID: p.ID, Username: p.Username, Name: p.DisplayName, Email: p.Email, EmailVerified: p.EmailVerified,
		Groups: p.Groups, Status: string(p.Status), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	if s := p.LastSignIn; s != nil {
		out.LastSignIn = &SignInJSON{At: s.At, ClientID: s.ClientID, Flow: s.Flow, IP: s.IP}
	}
	return out
}

func eventJSON(e directory.Event) EventJSON {
	return EventJSON{ID: e.ID, Time: e.Time, Actor: e.Actor, Action: e.Action, PersonID: e.PersonID,
		ClientID: e.ClientID, Flow: e.Flow, IP: e.IP, UserAgent: e.UserAgent, Result: e.Result, Reason: e.Reason, Ref: e.Ref}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("writing JSON: %w", err)
	}
	return nil
}

// formatTime is how text output shows a time: UTC, to the minute.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

func formatGroups(g []string) string {
	if len(g) == 0 {
		return "-"
	}
	return strings.Join(g, ",")
}

// table writes aligned columns: two spaces apart, measured in terminal
// cells (a CJK character is two), every cell made safe for a terminal.
type table struct{ rows [][]string }

func (t *table) add(cells ...string) {
	for i, c := range cells {
		if c = clean(c); c == "" {
			c = "-"
		}
		cells[i] = c
	}
	t.rows = append(t.rows, cells)
}

func (t *table) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], cellWidth(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-cellWidth(c)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// clean makes text from the directory safe to print on a terminal: control
// characters (an escape sequence in a user agent could rewrite the screen)
// and bidirectional overrides (which reorder what is shown) are written as
// \u escapes; nothing else changes.
func clean(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u200e' || r == '\u200f'
}

// cellWidth is the number of terminal cells s takes: East Asian wide and
// fullwidth characters take two, combining marks none.
func cellWidth(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		case wide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

// wide reports the East Asian Wide (W) and Fullwidth (F) ranges that
// names are written in (Unicode UAX #11, abridged): Hangul Jamo, CJK,
// Hangul syllables, compatibility ideographs, fullwidth forms, emoji.
func wide(r rune) bool {
	switch {
	case r >= 0x1100 && r <= 0x115f, r >= 0x2e80 && r <= 0x303e, r >= 0x3041 && r <= 0x33ff,
		r >= 0x3400 && r <= 0x4dbf, r >= 0x4e00 && r <= 0x9fff, r >= 0xa000 && r <= 0xa4cf,
		r >= 0xac00 && r <= 0xd7a3, r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f,
		r >= 0xff00 && r <= 0xff60, r >= 0xffe0 && r <= 0xffe6, r >= 0x1f300 && r <= 0x1f64f,
		r >= 0x1f900 && r <= 0x1f9ff, r >= 0x20000 && r <= 0x3fffd:
		return true
	}
	return false
}
