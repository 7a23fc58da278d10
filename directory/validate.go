package directory

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the fields a person, an invitation and an identity carry.
const (
	MaxUsernameLen    = 64  // bytes (usernames are ASCII)
	MaxDisplayNameLen = 128 // runes
	MaxEmailLen       = 254 // bytes (RFC 5321 §4.5.3.1.3 path limit less the brackets)
	MaxGroupLen       = 64  // bytes
	MaxGroups         = 100 // groups per person
	MaxIdentifierLen  = 128 // bytes: provider, app id, openid, unionid, client id
)

// normalizeUsername lowercases and validates a username: 1-64 characters
// of [a-z0-9._-], starting with a letter or digit. Upper-case input is
// accepted and lowercased, which is what makes uniqueness case-insensitive.
func normalizeUsername(s string) (string, error) {
	u := strings.ToLower(s)
	switch {
	case u == "":
		return "", invalid("username", "required: 1-%d characters of a-z, 0-9, '.', '_' or '-'", MaxUsernameLen)
	case len(u) > MaxUsernameLen:
		return "", invalid("username", "too long: at most %d characters", MaxUsernameLen)
	case !isAlnum(u[0]):
		return "", invalid("username", "must start with a letter or digit")
	}
	for i := 0; i < len(u); i++ {
		if !isAlnum(u[i]) && u[i] != '.' && u[i] != '_' && u[i] != '-' {
			return "", invalid("username", "only a-z, 0-9, '.', '_' and '-' are allowed")
		}
	}
	return u, nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validateDisplayName accepts at most 128 runes of valid UTF-8 without
// control characters; the empty name is allowed.
func validateDisplayName(s string) error {
	if !utf8.ValidString(s) {
		return invalid("name", "must be valid UTF-8")
	}
	if utf8.RuneCountInString(s) > MaxDisplayNameLen {
		return invalid("name", "too long: at most %d characters", MaxDisplayNameLen)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalid("name", "must not contain control characters (newlines, tabs, ...)")
	}
	if strings.TrimSpace(s) != s {
		return invalid("name", "must not start or end with spaces")
	}
	return nil
}

// validateEmail is a deliberately simple check (the address is shown and
// put in claims, never used to send mail from here): empty, or local@domain
// with no spaces, control characters or angle brackets, a dot-separated
// domain without empty labels, at most 254 bytes.
func validateEmail(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxEmailLen {
		return invalid("email", "too long: at most %d characters", MaxEmailLen)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`<>()[]\,;:"`, r)
	}) {
		return invalid("email", "must be a plain address like name@example.com (no spaces, quotes or brackets)")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return invalid("email", "must be a plain address like name@example.com")
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > 64 {
		return invalid("email", "the part before @ is longer than 64 characters")
	}
	if strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") || strings.Contains(local, "..") {
		return invalid("email", "the part before @ must not start or end with a dot or contain two dots in a row")
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 || slices.Contains(labels, "") {
		return invalid("email", "the domain must be like example.com")
	}
	for _, l := range labels {
		if strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
			return invalid("email", "a domain label must not start or end with '-'")
		}
	}
	return nil
}

// normalizeGroups validates group names ([a-z0-9._-]{1,64}, lowercased) and
// returns them sorted without duplicates. A nil or empty list is no groups.
func normalizeGroups(groups []string) ([]string, error) {
	if len(groups) > MaxGroups {
		return nil, invalid("groups", "too many: at most %d groups", MaxGroups)
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		n := strings.ToLower(g)
		if n == "" || len(n) > MaxGroupLen {
			return nil, invalid("groups", "group names are 1-%d characters of a-z, 0-9, '.', '_' or '-'", MaxGroupLen)
		}
		for i := 0; i < len(n); i++ {
			if !isAlnum(n[i]) && n[i] != '.' && n[i] != '_' && n[i] != '-' {
				return nil, invalid("groups", "group %q: only a-z, 0-9, '.', '_' and '-' are allowed", truncateForMessage(g))
			}
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// parseStatus accepts "active", "pending" or "disabled".
func parseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusActive, StatusPending, StatusDisabled:
		return st, nil
	}
	return "", invalid("status", "must be active, pending or disabled")
}

// validIdentifier checks an opaque upstream or client identifier: printable
// ASCII without spaces, at most 128 bytes. required says whether the empty
// string is refused.
func validIdentifier(field, s string, required bool) error {
	if s == "" {
		if required {
			return invalid(field, "required")
		}
		return nil
	}
	if len(s) > MaxIdentifierLen {
		return invalid(field, "too long: at most %d characters", MaxIdentifierLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return invalid(field, "only printable ASCII without spaces is allowed")
		}
	}
	return nil
}

// validProvider: a short lowercase name such as "wechat" or "wecom".
func validProvider(s string) error {
	if s == "" {
		return invalid("provider", "required (e.g. %q)", ProviderWeChat)
	}
	if len(s) > 32 {
		return invalid("provider", "too long: at most 32 characters")
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' && s[i] != '-' {
			return invalid("provider", "only a-z, 0-9, '_' and '-' are allowed")
		}
	}
	return nil
}

// truncateForMessage keeps a quoted bad value short in an error message.
func truncateForMessage(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// truncateUTF8 cuts s to at most n bytes on a rune boundary and replaces
// invalid UTF-8, for free text that is recorded rather than refused
// (a user agent, a reason).
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
