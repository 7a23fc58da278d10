package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/admin"
	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// The access decision: after an upstream vouched for someone and before any
// code is issued, whatever the upstream or the flow, the directory says who
// the person is and whether they may sign in to this application.
//
// Per sign-in of a known, active person this is one directory read
// (FindByIdentity) and two writes (the sign-in record and the audit row) in
// one transaction that concurrent sign-ins share (directory's SignedIn).
//
// None of it waits long: the calls share the request's sign-in budget
// (directory.sign_in_timeout, see directory.Bound), so a lock held by an
// import, a console action or a backup, or a database that does not
// answer, ends the sign-in on the "try again shortly" page with a
// reference instead of holding the person's browser.

// SignInPeople is what the login core asks of the people directory on the
// sign-in path and at every use of a token, and AuditLog where its audit
// rows go: directory.People and directory.Audit are them. The load
// command's baseline (dev --bench --directory none) gives ones that keep
// people in memory and record nothing, to measure the same sign-in without
// a database.
type SignInPeople interface {
	FindByIdentity(ctx context.Context, id directory.Identity) (directory.Person, error)
	Create(ctx context.Context, np directory.NewPerson) (directory.Person, error)
	BindIdentity(ctx context.Context, personID string, id directory.Identity) error
	Delete(ctx context.Context, personID string) error
	RecordSignIn(ctx context.Context, personID string, si directory.SignIn) error
	SignedIn(ctx context.Context, personID string, si directory.SignIn, e directory.Event) error
	Get(ctx context.Context, personID string) (directory.Person, error)
}

// AuditLog appends audit rows (directory.Audit).
type AuditLog interface {
	Append(ctx context.Context, e directory.Event) error
}

var (
	_ SignInPeople = directory.People{}
	_ AuditLog     = directory.Audit{}
)

// refusal is why a person gets no code.
type refusal struct {
	// Kind: "pending" (waits for an administrator), "not-invited",
	// "disabled", "not-in-group", "unavailable" (the directory is down).
	Kind     string
	Ref      string // the audit row's reference, shown on the page
	PersonID string
	Reason   string // ASCII, for the client's error_description and the audit row
}

func (r *refusal) Error() string { return r.Kind + ": " + r.Reason }

// signIn is what an admitted sign-in carries on to the code.
type signIn struct {
	Person   directory.Person
	Identity oidc.Identity
}

// admission describes one sign-in for admit.
type admission struct {
	Upstream connector.Identity
	ClientID string
	Flow     string
	IP, UA   string
}

// admit finds (or, by access mode, makes) the person behind an upstream
// identity and decides whether they may sign in to the client.
func (s *Server) admit(ctx context.Context, a admission) (*signIn, *refusal) {
	ctx, cancel := directory.Bound(ctx)
	defer cancel()
	p, err := s.people.FindByIdentity(ctx, upstreamAccount(a.Upstream))
	if errors.Is(err, directory.ErrNotFound) {
		p, err = s.newcomer(ctx, a)
	}
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			return nil, r
		}
		return nil, s.unavailable(ctx, a, err)
	}
	if r := s.mayUse(p, a.ClientID); r != nil {
		return nil, s.refuse(ctx, a, r)
	}
	// A granted sign-in is issued only with its audit row: the sign-in
	// record and the row commit together (in a transaction concurrent
	// sign-ins share), and when they cannot (in time) the sign-in is
	// refused as "try again shortly". The trail is how an administrator
	// learns who entered which application: a granted sign-in missing from
	// it is an entrance nobody can see later, and whoever can make the
	// directory slow (a long import, a held lock) could make their own
	// sign-ins vanish from it. A refused sign-in costs the person one
	// retry, and the page's reference is in the log. (Refusals' rows stay
	// best effort: nothing is issued.)
	if err := s.people.SignedIn(ctx, p.ID, directory.SignIn{ClientID: a.ClientID, Flow: a.Flow, IP: a.IP},
		directory.Event{Actor: "sign_in", Action: directory.ActionSignIn, PersonID: p.ID, ClientID: a.ClientID, Flow: a.Flow,
			IP: a.IP, UserAgent: a.UA, Result: "ok"}); err != nil {
		return nil, s.unavailable(ctx, a, fmt.Errorf("recording the sign-in and its audit row: %w", err))
	}
	return &signIn{Person: p, Identity: s.personIdentity(p, a.Upstream)}, nil
}

// upstreamAccount is the directory's form of an upstream identity.
func upstreamAccount(u connector.Identity) directory.Identity {
	return directory.Identity{Provider: u.Provider, AppID: u.AppID, OpenID: u.OpenID, UnionID: u.UnionID}
}

// newcomer handles the first sign-in of someone the directory does not know:
// open makes an active person, approval a pending one (a refusal that
// waits), invite refuses.
func (s *Server) newcomer(ctx context.Context, a admission) (directory.Person, error) {
	switch s.opt.Access.Mode {
	case config.AccessInvite:
		return directory.Person{}, s.refuse(ctx, a, &refusal{Kind: "not-invited",
			Reason: "this sign-in service admits only invited people; ask an administrator for an invitation"})
	case config.AccessApproval:
		p, err := s.createPerson(ctx, a, directory.StatusPending)
		if err != nil {
			return directory.Person{}, err
		}
		return directory.Person{}, s.refuse(ctx, a, &refusal{Kind: "pending", PersonID: p.ID,
			Reason: "an administrator must approve this person before they can sign in"})
	default:
		return s.createPerson(ctx, a, directory.StatusActive)
	}
}

// createPerson makes a person for an upstream identity and binds it. Two
// first sign-ins of one person racing each other make one person: the
// loser's record is removed and the winner's found.
func (s *Server) createPerson(ctx context.Context, a admission, status directory.Status) (directory.Person, error) {
	base, _ := a.Upstream.Claims["preferred_username"].(string)
	if base == "" {
		base = "user"
	}
	np := directory.NewPerson{Username: base, DisplayName: displayName(a.Upstream.Claims), Status: status}
	var p directory.Person
	var err error
	for i := 1; i <= 5; i++ {
		if i > 1 {
			np.Username = fmt.Sprintf("%s-%d", base, i)
		}
		if p, err = s.people.Create(ctx, np); !errors.Is(err, directory.ErrUsernameTaken) {
			break
		}
	}
	if err != nil {
		return directory.Person{}, err
	}
	if err := s.people.BindIdentity(ctx, p.ID, upstreamAccount(a.Upstream)); err != nil {
		// The cleanup gets time of its own: the budget may be what ran out.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.signInTimeout())
		delErr := s.people.Delete(cctx, p.ID)
		cancel()
		if delErr != nil {
			s.log.ErrorContext(ctx, "people: could not remove a person whose binding failed", "person", p.ID, "error", delErr)
		}
		if errors.Is(err, directory.ErrIdentityTaken) {
			// A concurrent first sign-in of the same person won.
			return s.people.FindByIdentity(ctx, upstreamAccount(a.Upstream))
		}
		return directory.Person{}, err
	}
	s.audit(ctx, directory.Event{Actor: "sign_in", Action: directory.ActionPersonCreate, PersonID: p.ID,
		ClientID: a.ClientID, Flow: a.Flow, IP: a.IP, UserAgent: a.UA, Result: string(status)})
	return p, nil
}

// displayName is the upstream's nickname if the directory can keep it.
func displayName(claims map[string]any) string {
	n, _ := claims["name"].(string)
	if n == "" || utf8.RuneCountInString(n) > 128 || strings.IndexFunc(n, unicode.IsControl) >= 0 {
		return ""
	}
	return n
}

// mayUse says whether a person may sign in to a client now.
func (s *Server) mayUse(p directory.Person, clientID string) *refusal {
	switch p.Status {
	case directory.StatusPending:
		return &refusal{Kind: "pending", PersonID: p.ID, Reason: "an administrator must approve this person before they can sign in"}
	case directory.StatusDisabled:
		return &refusal{Kind: "disabled", PersonID: p.ID, Reason: "this person's access has been disabled by an administrator"}
	}
	if cc := s.clients[clientID]; cc != nil && len(cc.AllowedGroups) > 0 {
		if !slices.ContainsFunc(p.Groups, func(g string) bool { return slices.Contains(cc.AllowedGroups, g) }) {
			return &refusal{Kind: "not-in-group", PersonID: p.ID,
				Reason: "this person is not in a group allowed to use this application; ask an administrator"}
		}
	}
	return nil
}

// refuse records a refusal in the audit trail (its reference goes on the
// page) and returns it.
func (s *Server) refuse(ctx context.Context, a admission, r *refusal) *refusal {
	r.Ref = directory.NewRef()
	result := "denied"
	if r.Kind == "pending" {
		result = "pending"
	}
	s.audit(ctx, directory.Event{Action: directory.ActionSignIn, PersonID: r.PersonID, ClientID: a.ClientID, Flow: a.Flow,
		IP: a.IP, UserAgent: a.UA, Result: result, Reason: r.Reason, Ref: r.Ref})
	s.log.InfoContext(ctx, "sign-in refused by the directory", "client_id", a.ClientID, "kind", r.Kind, "ref", r.Ref)
	return r
}

// unavailable: the directory could not answer. Nothing was issued; the
// reference is logged with the error (the audit trail is in the same
// database, so it may not take the row).
func (s *Server) unavailable(ctx context.Context, a admission, err error) *refusal {
	r := &refusal{Kind: "unavailable", Ref: directory.NewRef(), Reason: "the sign-in service cannot reach its directory right now; try again shortly"}
	s.log.ErrorContext(ctx, "people: directory unavailable", "client_id", a.ClientID, "ref", r.Ref, "error", err)
	return r
}

// audit appends a row; a failure is logged, never fatal to the sign-in
// (the row's absence is itself logged with everything it would have said).
func (s *Server) audit(ctx context.Context, e directory.Event) {
	if err := s.appendAudit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit: could not write a row", "action", e.Action, "person", e.PersonID,
			"client_id", e.ClientID, "result", e.Result, "ref", e.Ref, "error", err)
	}
}

// appendAudit appends a row (actor "sign_in" unless set).
func (s *Server) appendAudit(ctx context.Context, e directory.Event) error {
	if e.Actor == "" {
		e.Actor = "sign_in"
	}
	return s.auditLog.Append(ctx, e)
}

// personIdentity is what the tokens say about an admitted person: the
// subject by the configured rule, and the directory's name, username, email
// and groups over what the upstream said.
func (s *Server) personIdentity(p directory.Person, up connector.Identity) oidc.Identity {
	claims := maps.Clone(up.Claims)
	if claims == nil {
		claims = map[string]any{}
	}
	claims["preferred_username"] = p.Username
	if p.DisplayName != "" {
		claims["name"] = p.DisplayName
	}
	if p.Email != "" {
		claims["email"] = p.Email
		claims["email_verified"] = p.EmailVerified
	}
	if len(p.Groups) > 0 {
		claims["groups"] = slices.Clone(p.Groups)
	} else {
		delete(claims, "groups")
	}
	sub := up.Subject
	if s.opt.Subject == config.SubjectPerson {
		sub = p.ID
	}
	return oidc.Identity{Subject: sub, AuthTime: s.now(), Claims: claims, Account: p.ID}
}

// accountCheck is oidc.Provider.AccountCheck: at every use of a token the
// person must still be active and allowed to use the client. A directory
// outage refuses too (fail closed), as temporarily_unavailable.
func (s *Server) accountCheck(ctx context.Context, clientID, personID string) *oidc.Error {
	ctx, cancel := directory.Bound(ctx)
	defer cancel()
	p, err := s.people.Get(ctx, personID)
	if errors.Is(err, directory.ErrNotFound) {
		return oidc.ErrInvalidGrant("the person was removed from the directory; sign in again")
	}
	if err != nil {
		s.log.ErrorContext(ctx, "people: directory unavailable for a token check", "client_id", clientID, "error", err)
		return oidc.ErrTemporarilyUnavailable("the sign-in service cannot reach its directory right now; try again shortly")
	}
	if r := s.mayUse(p, clientID); r != nil {
		return oidc.ErrInvalidGrant("%s", r.Reason)
	}
	return nil
}

// Directory is the people directory the server uses.
func (s *Server) Directory() *directory.Directory { return s.dir }

// personRecord is what the core remembers per person, for ending their
// access at once: their live sessions and the subjects their tokens carry.
type personRecord struct {
	Sessions []personSession `json:"sessions,omitempty"`
	Subjects []string        `json:"subjects,omitempty"`
}

type personSession struct {
	Key     string `json:"key"`
	SID     string `json:"sid"`
	Expires int64  `json:"exp"`
}

// maxPersonSessions bounds a person's record; the oldest entry goes first.
const maxPersonSessions = 200

// rememberPersonSession adds a session to its person's record.
func (s *Server) rememberPersonSession(ctx context.Context, sess *ssoSession, key string) error {
	ttl := max(s.opt.Session.AbsoluteTTL, s.opt.Tokens.RefreshAbsoluteTTL)
	err := updateJSON(ctx, s, keyPerson+sess.Person, ttl, func(rec *personRecord) error {
		now := s.now().Unix()
		rec.Sessions = slices.DeleteFunc(rec.Sessions, func(ps personSession) bool { return ps.Expires <= now })
		rec.Sessions = append(rec.Sessions, personSession{Key: key, SID: sess.ID,
			Expires: time.Unix(sess.Created, 0).Add(s.opt.Session.AbsoluteTTL).Unix()})
		if n := len(rec.Sessions); n > maxPersonSessions {
			rec.Sessions = rec.Sessions[n-maxPersonSessions:]
		}
		if !slices.Contains(rec.Subjects, sess.Subject) {
			rec.Subjects = append(rec.Subjects, sess.Subject)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.store.Put(ctx, keySubject+sess.Subject, []byte(sess.Person), ttl)
}

// PersonForSubject is the person a sub belongs to, as the sessions
// recorded it (the admin console's sign-in gives it a sub, and needs the
// person); under subject: person they are the same.
func (s *Server) PersonForSubject(ctx context.Context, sub string) (string, error) {
	if s.opt.Subject == config.SubjectPerson {
		return sub, nil
	}
	raw, err := s.store.Get(ctx, keySubject+sub)
	if err != nil {
		return "", fmt.Errorf("no person is known for this subject: %w", err)
	}
	return string(raw), nil
}

// SessionInfo describes one live SSO session (the admin console lists them).
type SessionInfo = admin.SessionInfo

// PersonSessions lists a person's live SSO sessions.
func (s *Server) PersonSessions(ctx context.Context, personID string) ([]SessionInfo, error) {
	var rec personRecord
	if err := s.getJSON(ctx, keyPerson+personID, &rec); absent(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []SessionInfo
	for _, ps := range rec.Sessions {
		var sess ssoSession
		if err := s.getJSON(ctx, ps.Key, &sess); err != nil || sess.ID != ps.SID || s.sessionTTL(&sess) <= 0 {
			continue
		}
		out = append(out, SessionInfo{ID: sess.ID, Subject: sess.Subject, AuthTime: time.Unix(sess.AuthTime, 0),
			Created: time.Unix(sess.Created, 0), Clients: slices.Clone(sess.Clients)})
	}
	return out, nil
}

// EndSession ends one SSO session by its sid: its clients are told by
// back-channel logout and its tokens not issued for offline_access revoked.
func (s *Server) EndSession(ctx context.Context, sid string) error {
	sess, key, err := s.sessionBySID(ctx, sid)
	if err != nil || sess == nil {
		return err
	}
	return s.deleteSession(ctx, sess, key)
}

// GrantInfo describes one live refresh token family (the admin console
// lists them).
type GrantInfo = admin.GrantInfo

// personSubjects are the subjects a person's tokens carry: those their
// sessions recorded, and under subject: person their id.
func (s *Server) personSubjects(ctx context.Context, personID string) ([]string, error) {
	var rec personRecord
	if err := s.getJSON(ctx, keyPerson+personID, &rec); err != nil && !absent(err) {
		return nil, err
	}
	subjects := rec.Subjects
	if s.opt.Subject == config.SubjectPerson && !slices.Contains(subjects, personID) {
		subjects = append(subjects, personID)
	}
	return subjects, nil
}

// PersonGrants lists a person's live refresh token families, over every
// subject their tokens carry. A family issued to the same subject for
// someone else (a WeChat account re-bound to another person keeps its
// unionid or openid) is not theirs and is left out.
func (s *Server) PersonGrants(ctx context.Context, personID string) ([]GrantInfo, error) {
	subjects, err := s.personSubjects(ctx, personID)
	if err != nil {
		return nil, err
	}
	var out []GrantInfo
	for _, sub := range subjects {
		fams, err := s.provider.RefreshFamilies(ctx, sub)
		if err != nil {
			return nil, err
		}
		for _, f := range fams {
			if f.Account != "" && f.Account != personID {
				continue
			}
			out = append(out, GrantInfo{ID: f.ID, ClientID: f.ClientID, Subject: f.Subject, Scopes: f.Scopes,
				Offline: f.Offline, SessionID: f.SessionID, Created: f.CreatedAt, LastUsed: f.LastUsedAt,
				IdleExpires: f.IdleExpiresAt, Expires: f.ExpiresAt})
		}
	}
	return out, nil
}

// EndGrant revokes one refresh token family of a person: its refresh token
// and every access token issued from it stop working; their other
// families and their SSO sessions are untouched (no back-channel logout:
// the session goes on). A family that is not one of the person's live
// families is admin.ErrGrantNotFound.
func (s *Server) EndGrant(ctx context.Context, personID, familyID string) error {
	grants, err := s.PersonGrants(ctx, personID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(grants, func(g GrantInfo) bool { return familyID != "" && g.ID == familyID })
	if i < 0 {
		return admin.ErrGrantNotFound
	}
	err = s.provider.RevokeRefreshFamily(ctx, grants[i].Subject, familyID)
	if errors.Is(err, oidc.ErrFamilyNotFound) {
		return admin.ErrGrantNotFound
	}
	return err
}

// EndPersonAccess ends everything a person has at once: every SSO session
// (their applications told by back-channel logout) and every token,
// offline_access included. Idempotent. Called when a person is disabled or
// removed (by the console directly, and for every replica by the revocation
// loop reading the audit trail).
func (s *Server) EndPersonAccess(ctx context.Context, personID string) error {
	var rec personRecord
	if err := s.getJSON(ctx, keyPerson+personID, &rec); err != nil && !absent(err) {
		return err
	}
	var errs []error
	for _, ps := range rec.Sessions {
		var sess ssoSession
		if err := s.getJSON(ctx, ps.Key, &sess); err != nil || sess.ID != ps.SID {
			continue
		}
		if err := s.deleteSession(ctx, &sess, ps.Key); err != nil {
			errs = append(errs, err)
		}
	}
	subjects := rec.Subjects
	if s.opt.Subject == config.SubjectPerson && !slices.Contains(subjects, personID) {
		subjects = append(subjects, personID)
	}
	for _, sub := range subjects {
		if err := s.provider.RevokeSubject(ctx, sub); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := s.store.Delete(ctx, keyPerson+personID); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.InfoContext(ctx, "people: access ended", "person", personID, "sessions", len(rec.Sessions), "errors", len(errs))
	return errors.Join(errs...)
}

// sessionPerson re-reads the session's person for a code from the SSO
// session: still active, allowed to use this client, and with today's name,
// email and groups.
func (s *Server) sessionPerson(c echo.Context, req *oidc.AuthRequest, sess *ssoSession) (oidc.Identity, *refusal) {
	ctx, cancel := directory.Bound(c.Request().Context())
	defer cancel()
	a := admission{ClientID: req.ClientID, Flow: "sso", IP: c.RealIP(), UA: c.Request().UserAgent()}
	p, err := s.people.Get(ctx, sess.Person)
	if errors.Is(err, directory.ErrNotFound) {
		return oidc.Identity{}, s.refuse(ctx, a, &refusal{Kind: "disabled", PersonID: sess.Person, Reason: "this person was removed from the directory"})
	}
	if err != nil {
		return oidc.Identity{}, s.unavailable(ctx, a, err)
	}
	if r := s.mayUse(p, req.ClientID); r != nil {
		return oidc.Identity{}, s.refuse(ctx, a, r)
	}
	id := s.personIdentity(p, connector.Identity{Subject: sess.Subject, Claims: sess.Claims})
	id.AuthTime, id.SessionID = time.Unix(sess.AuthTime, 0), sess.ID
	return id, nil
}
