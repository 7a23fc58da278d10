package bridge

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
)

// withPostgres runs the harness's directory on PostgreSQL at url.
func withPostgres(url string) harnessOption {
	return func(c *config.File) { c.Directory = config.DirectoryConfig{Type: "postgres", URL: url} }
}

// withSignInTimeout sets directory.sign_in_timeout.
func withSignInTimeout(d time.Duration) harnessOption {
	return func(c *config.File) { c.Directory.SignInTimeout = config.Duration(d) }
}

// signInAttempt is how one sign-in through the browser ended.
type signInAttempt struct {
	status    int
	page, ref string
	code      bool // the RP got a code
	took      time.Duration
}

// attemptSignIn runs one sign-in of user in a fresh browser.
func (h *harness) attemptSignIn(user string) signInAttempt {
	h.t.Helper()
	h.sim.AutoApprove(user)
	start := time.Now()
	resp, q := h.authorize(h.browser(), h.authorizeURL(nil))
	a := signInAttempt{status: resp.StatusCode, code: q != nil && q.Get("code") != "", took: time.Since(start)}
	a.page, a.ref = pageOf(readBody(h.t.(*testing.T), resp))
	return a
}

// wantUnavailable fails the test unless a ended on the 503 "try again"
// page, with no code, and with a reference that leads to the log line
// saying the directory was unavailable.
func (h *harness) wantUnavailable(what string, a signInAttempt) {
	h.t.Helper()
	if a.status != http.StatusServiceUnavailable || a.page != "unavailable" || a.ref == "" || a.code {
		h.t.Fatalf("%s: %d page %q ref %q code %v, want the 503 unavailable page with a reference and no code",
			what, a.status, a.page, a.ref, a.code)
	}
	line := grepLines(h.logs.String(), "ref="+a.ref)
	if !strings.Contains(line, "directory unavailable") {
		h.t.Fatalf("%s: no log line with ref=%s says the directory was unavailable:\n%s", what, a.ref, line)
	}
}

// hasPerson reports whether user's WeChat identity is bound to a person.
func (h *harness) hasPerson(user string) bool {
	h.t.Helper()
	_, err := h.dir.People().FindByIdentity(context.Background(), directory.Identity{Provider: wechatconn.Provider, UnionID: h.sim.UnionID(user)})
	if err != nil && !errors.Is(err, directory.ErrNotFound) {
		h.t.Fatalf("looking %s up: %v", user, err)
	}
	return err == nil
}

// TestDirectoryPostgresRestartResumes: the bridge's directory is a real
// PostgreSQL server, which is shut down (fast shutdown, the server process
// gone) and started again on the same data directory and port. During the
// outage a sign-in gets the 503 page with a reference found in the log,
// /readyz fails, and nothing is half-written (no code, no person made for
// a newcomer). Once the server is back, without touching the bridge,
// /readyz passes and the next sign-ins succeed: the pool's dead
// connections are replaced, its prepared statements prepared again.
func TestDirectoryPostgresRestartResumes(t *testing.T) {
	pg := directorytest.StartPostgresServer(t)
	h := newHarness(t, withPostgres(pg.URL()))
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	h.login(r, h.browser(), "alice")
	if h.hasPerson("bob") {
		t.Fatal("bob is in the directory before his first sign-in")
	}

	pg.Stop()
	h.wantUnavailable("alice's sign-in with PostgreSQL down", h.attemptSignIn("alice"))
	h.wantUnavailable("newcomer bob's sign-in with PostgreSQL down", h.attemptSignIn("bob"))
	if code := probe(t, h.issuer(), PathReadyz); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with PostgreSQL down: %d, want 503", code)
	}

	pg.Start()
	waitFor(t, "/readyz after PostgreSQL came back", 10*time.Second, func() bool { return probe(t, h.issuer(), PathReadyz) == http.StatusOK })
	if h.hasPerson("bob") {
		t.Fatal("the outage left a person for bob's refused sign-in")
	}
	h.login(r, h.browser(), "alice")
	bob := h.login(r, h.browser(), "bob")
	if p := h.personOf("bob"); bob.idToken.Subject != h.sim.UnionID("bob") || p.Status != directory.StatusActive {
		t.Fatalf("bob after the restart: sub %q, person %+v", bob.idToken.Subject, p)
	}
}

// signInBound is the sign_in_timeout of the lock tests, and lockSlack what
// a loaded two-core machine may add to a sign-in beyond it.
const (
	signInBound = 500 * time.Millisecond
	lockSlack   = 3 * time.Second
)

// TestSignInNotHeldByLockedSQLite: another connection holds the SQLite
// directory's write lock (BEGIN IMMEDIATE, as `people import` does for its
// whole file). A known person's sign-in ends within the sign-in timeout
// (plus slack), not SQLite's busy_timeout of 10 s, on the 503 page with a
// reference and no code: their sign-in cannot be recorded in the audit
// trail. Once the lock is gone the next sign-in succeeds.
func TestSignInNotHeldByLockedSQLite(t *testing.T) {
	h := newHarness(t, withSignInTimeout(signInBound))
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	h.login(r, h.browser(), "alice")

	release := directorytest.HoldLock(t, directory.Options{Type: directory.TypeSQLite, Path: h.cfg.Directory.Path}, "")
	a := h.attemptSignIn("alice")
	h.wantUnavailable("a sign-in while another connection holds the write lock", a)
	if a.took > signInBound+lockSlack {
		t.Fatalf("the sign-in was held %v by the lock, want at most %v", a.took, signInBound+lockSlack)
	}
	release()
	h.login(r, h.browser(), "alice")
}

// TestSignInNotHeldByLockedPostgres: another transaction holds the known
// person's row (SELECT ... FOR UPDATE, as a console action updating them
// does) on a PostgreSQL directory, which has no statement timeout of its
// own. The sign-in ends within the sign-in timeout (plus slack), on the
// 503 page with a reference and no code, instead of waiting for the lock
// indefinitely; once the lock is gone the next sign-in succeeds.
func TestSignInNotHeldByLockedPostgres(t *testing.T) {
	url := directorytest.StartPostgres(t)
	h := newHarness(t, withPostgres(url), withSignInTimeout(signInBound))
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	h.login(r, h.browser(), "alice")
	alice := h.personOf("alice")

	release := directorytest.HoldLock(t, directory.Options{Type: directory.TypePostgres, URL: url}, alice.ID)
	a := h.attemptSignIn("alice")
	h.wantUnavailable("a sign-in while another transaction holds the person's row", a)
	if a.took > signInBound+lockSlack {
		t.Fatalf("the sign-in was held %v by the row lock, want at most %v", a.took, signInBound+lockSlack)
	}
	release()
	h.login(r, h.browser(), "alice")
}

// TestGrantedSignInWithoutAuditRowIsRefused: a granted sign-in whose audit
// row cannot be written gets no code but the 503 "try again" page with a
// reference in the log: a sign-in missing from the audit trail is an
// entrance an administrator cannot see (see admit). Here the audit table
// refuses inserts (a trigger), while the person's lookup works (the sign-in
// record, in the same transaction as the row, is rolled back with it).
func TestGrantedSignInWithoutAuditRowIsRefused(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	h.login(r, h.browser(), "alice")

	db, err := sql.Open("sqlite", h.cfg.Directory.Path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events
		BEGIN SELECT RAISE(ABORT, 'audit trail refuses rows'); END`); err != nil {
		t.Fatal(err)
	}
	a := h.attemptSignIn("alice")
	h.wantUnavailable("a sign-in whose audit row is refused", a)
	if line := grepLines(h.logs.String(), "ref="+a.ref); !strings.Contains(line, "audit row") {
		t.Fatalf("the log line of ref=%s does not say the audit row failed:\n%s", a.ref, line)
	}
	if _, err := db.Exec(`DROP TRIGGER refuse_audit`); err != nil {
		t.Fatal(err)
	}
	h.login(r, h.browser(), "alice")
}
