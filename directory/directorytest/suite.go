// Package directorytest is the conformance suite for package directory: what
// the directory must do on every database, checked the same way for each.
// A backend is correct when Run passes on it (under -race). It also starts
// the private PostgreSQL server the tests use (StartPostgres) and counts
// the statements a directory sends (StatementCounter).
package directorytest

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// Clock is a settable clock for directory.Options.Now: expiry is tested by
// moving it, never by sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// start is the suite's clock at the beginning of each test: microseconds
// set, to check that times survive storage at that precision.
var start = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

// env is what each test of the suite gets.
type env struct {
	d       *directory.Directory
	clock   *Clock
	counter *StatementCounter
	opts    directory.Options // names the test's database, with the suite's clock and counter
	fresh   func(t *testing.T) directory.Options
}

// (Run is long on purpose: it is the suite's table of subtests, one line each.)
// Run runs the conformance suite. fresh must return Options naming a new,
// empty database of the backend under test (Type and Path or URL) each
// time it is called; the suite sets Now, WrapConnector and opens, reopens
// and closes directories on it itself, and also reads the database
// directly through the driver directory registers ("sqlite" or "pgx") to
// check what is stored.
func Run(t *testing.T, fresh func(t *testing.T) directory.Options) {
	tests := []struct {
		name string
		fn   func(t *testing.T, e *env)
	}{
		// People.
		{"CreateAndGetRoundTrip", testCreateAndGetRoundTrip},
		{"PersonIDIsRandomAndOpaque", testPersonIDIsRandomAndOpaque},
		{"CreateRejectsInvalidFieldsNamingTheField", testCreateRejectsInvalidFields},
		{"UsernameIsLowercased", testUsernameIsLowercased},
		{"UsernameUniqueIgnoringCase", testUsernameUniqueIgnoringCase},
		{"ConcurrentCreateSameUsernameOneWins", testConcurrentCreateSameUsername},
		{"GetByUsernameIgnoresCase", testGetByUsernameIgnoresCase},
		{"GetUnknownIsNotFound", testGetUnknownIsNotFound},
		{"UpdateChangesOnlyGivenFields", testUpdateChangesOnlyGivenFields},
		{"UpdateInvalidChangesNothing", testUpdateInvalidChangesNothing},
		{"UpdateUnknownIsNotFound", testUpdateUnknownIsNotFound},
		{"ApprovePendingPerson", testApprovePendingPerson},
		{"ApproveNotPendingRefused", testApproveNotPendingRefused},
		{"ApproveUsernameTakenChangesNothing", testApproveUsernameTaken},
		{"DeleteRemovesIdentitiesAndProfiles", testDeleteRemovesIdentitiesAndProfiles},
		{"SearchMatchesEveryField", testSearchMatchesEveryField},
		{"SearchFiltersByStatusAndPages", testSearchFiltersByStatusAndPages},
		{"SearchWildcardsAreLiteral", testSearchWildcardsAreLiteral},
		{"RecordSignInStoresLastSignIn", testRecordSignIn},
		{"SignedInWritesRecordAndAuditRowTogether", testSignedIn},
		{"SignedInConcurrentAllCommitted", testSignedInConcurrent},
		{"SignedInCallerGoneWhileLockedWritesNothing", testSignedInCallerGoneWhileLocked},
		{"TimesComeFromTheInjectedClock", testTimesComeFromTheInjectedClock},

		// Identities and profiles.
		{"FindByOpenIDOrUnionID", testFindByOpenIDOrUnionID},
		{"FindPrefersOpenIDOverUnionID", testFindPrefersOpenID},
		{"FindByUnionIDLearnedForOpenID", testFindByLearnedUnionID},
		{"FindUnboundIsNotFound", testFindUnboundIsNotFound},
		{"SignInPathIsOneStatementEach", testSignInPathStatements},
		{"BindIdentityTakenNeverMoves", testBindIdentityTakenNeverMoves},
		{"UnionIDBoundToOnePersonOnly", testUnionIDBoundToOnePerson},
		{"BindTakenBindsNothing", testBindTakenBindsNothing},
		{"BindSamePersonTwiceIsNoOp", testBindSamePersonTwice},
		{"BindRejectsInvalidIdentity", testBindRejectsInvalidIdentity},
		{"BindToUnknownPersonIsNotFound", testBindToUnknownPerson},
		{"ConcurrentBindSameOpenIDOneWins", testConcurrentBindSameOpenID},
		{"UnbindIdentity", testUnbindIdentity},
		{"ProfileRememberKeepsWhatIsNotGiven", testProfileRemember},
		{"ProfileRejectsBadInput", testProfileRejectsBadInput},

		// Invitations.
		{"InvitationCreateAndGet", testInvitationCreateAndGet},
		{"InvitationTokenStoredOnlyAsHash", testInvitationTokenStoredOnlyAsHash},
		{"InvitationCreateRejectsInvalid", testInvitationCreateRejectsInvalid},
		{"RedeemCreatesActivePerson", testRedeemCreatesActivePerson},
		{"RedeemActivatesPendingPerson", testRedeemActivatesPendingPerson},
		{"RedeemTwiceIsUsed", testRedeemTwiceIsUsed},
		{"RedeemConcurrentExactlyOnce", testRedeemConcurrentExactlyOnce},
		{"RedeemExpiredByClock", testRedeemExpiredByClock},
		{"RedeemRevoked", testRedeemRevoked},
		{"RedeemUnknownTokenIsNotFound", testRedeemUnknownToken},
		{"RedeemIdentityTakenLeavesInvitationUnused", testRedeemIdentityTaken},
		{"RedeemForDisabledUsernameRefused", testRedeemForDisabledUsername},
		{"RevokeRules", testRevokeRules},
		{"InvitationListByState", testInvitationListByState},

		// Import and export.
		{"ImportCreatesPeopleAndBindings", testImportCreates},
		{"ImportBadLine3WritesNothing", testImportBadLine3WritesNothing},
		{"ImportConflictingBindingNamesLineAndWritesNothing", testImportConflictingBinding},
		{"ImportTwiceChangesNothing", testImportTwiceChangesNothing},
		{"ImportUpdatesExistingPerson", testImportUpdatesExistingPerson},
		{"ExportImportRoundTrip", testExportImportRoundTrip},

		// Audit.
		{"AuditQueryNewestFirstWithFilters", testAuditQuery},
		{"AuditPrune", testAuditPrune},
		{"AuditRevocations", testAuditRevocations},
		{"AuditAppendValidates", testAuditAppendValidates},

		// Schema, errors, lifecycle.
		{"ReopenKeepsDataAndMigratesOnce", testReopen},
		{"SchemaTooNewRefused", testSchemaTooNewRefused},
		{"ConcurrentOpenMigratesOnce", testConcurrentOpenMigratesOnce},
		{"ClosedDatabaseIsUnavailableNotNotFound", testClosedIsUnavailable},
		{"CancelledContextIsNeitherNotFoundNorUnavailable", testCancelledContext},
		{"Ping", testPing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &env{clock: NewClock(start), counter: &StatementCounter{}, fresh: fresh}
			e.opts = fresh(t)
			e.opts.Now = e.clock.Now
			e.opts.WrapConnector = e.counter.Wrap
			e.d = e.open(t)
			tc.fn(t, e)
		})
	}
}

// open opens a directory on the test's database; it is closed when t ends.
func (e *env) open(t *testing.T) *directory.Directory {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := directory.Open(ctx, e.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() }) // closing twice is harmless; some tests close early
	return d
}

// another opens a directory on a second, empty database of the backend,
// with the same clock.
func (e *env) another(t *testing.T) *directory.Directory {
	t.Helper()
	other := &env{opts: e.fresh(t)}
	other.opts.Now = e.clock.Now
	return other.open(t)
}

// raw opens the test's database directly, without the directory.
func (e *env) raw(t *testing.T) *sql.DB {
	t.Helper()
	driverName, dsn := "sqlite", e.opts.Path
	if e.opts.Type == directory.TypePostgres {
		driverName, dsn = "pgx", e.opts.URL
	}
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		t.Fatalf("opening the database directly: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// count runs a COUNT(*) query directly on the database.
func (e *env) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := e.raw(t).QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func mustCreate(t *testing.T, d *directory.Directory, np directory.NewPerson) directory.Person {
	t.Helper()
	p, err := d.People().Create(t.Context(), np)
	if err != nil {
		t.Fatalf("Create(%q): %v", np.Username, err)
	}
	return p
}

func mustBind(t *testing.T, d *directory.Directory, personID string, id directory.Identity) {
	t.Helper()
	if err := d.People().BindIdentity(t.Context(), personID, id); err != nil {
		t.Fatalf("BindIdentity(%s, %+v): %v", personID, id, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// wantField checks err is a *directory.ValidationError naming field.
func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	var ve *directory.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, directory.ErrInvalid) {
		t.Fatalf("%s: got %v, want a ValidationError for field %q", what, err, field)
	}
	if ve.Field != field {
		t.Fatalf("%s: error names field %q (%v), want %q", what, ve.Field, err, field)
	}
}

func wechat(appID, openid, unionid string) directory.Identity {
	return directory.Identity{Provider: directory.ProviderWeChat, AppID: appID, OpenID: openid, UnionID: unionid}
}
