package dev

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/wechat-oidc/wechat-oidc/bridge"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// DirectoryNone is Options.Directory for the load command's baseline: the
// same sign-in without a people directory (see benchPeople).
const DirectoryNone = "none"

// benchRows are the load-test users as active people, each bound by their
// unionid: what an operator's import would make of them, so that a bench
// in approval or invite mode signs in people the directory already knows.
func benchRows(n int) []directory.ImportRow {
	if n <= 0 || n > BenchUsers {
		n = BenchUsers
	}
	users := simulator.LoadUsers(n)
	rows := make([]directory.ImportRow, len(users))
	for i, u := range users {
		rows[i] = directory.ImportRow{Line: i + 2, Username: u.Key, DisplayName: u.Nickname, Groups: []string{"staff"},
			Status: directory.StatusActive, Identity: directory.Identity{Provider: directory.ProviderWeChat, UnionID: u.UnionID}}
	}
	return rows
}

// benchPeople is the load command's baseline in place of the directory
// (dev --bench --directory none): the load-test users are active people
// held in a map, a newcomer is admitted as a new active person, and nothing
// is recorded — no sign-in record, no audit row, no database. It is what the
// login core cost before the people directory, and it is only for measuring
// what the directory adds to a sign-in.
type benchPeople struct {
	mu     sync.Mutex
	byKey  map[string]string // identity key → person id
	byID   map[string]directory.Person
	nextID int
}

var (
	_ bridge.SignInPeople = (*benchPeople)(nil)
	_ bridge.AuditLog     = (*benchPeople)(nil)
)

func newBenchPeople(n int) *benchPeople {
	bp := &benchPeople{byKey: map[string]string{}, byID: map[string]directory.Person{}}
	for _, r := range benchRows(n) {
		p, _ := bp.Create(context.Background(), directory.NewPerson{Username: r.Username, DisplayName: r.DisplayName,
			Groups: r.Groups, Status: r.Status})
		_ = bp.BindIdentity(context.Background(), p.ID, r.Identity) // a map: cannot fail
	}
	return bp
}

func identityKeys(id directory.Identity) []string {
	var keys []string
	if id.OpenID != "" {
		keys = append(keys, "o\x00"+id.Provider+"\x00"+id.AppID+"\x00"+id.OpenID)
	}
	if id.UnionID != "" {
		keys = append(keys, "u\x00"+id.Provider+"\x00"+id.UnionID)
	}
	return keys
}

func (bp *benchPeople) FindByIdentity(_ context.Context, id directory.Identity) (directory.Person, error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	for _, k := range identityKeys(id) {
		if pid, ok := bp.byKey[k]; ok {
			return bp.byID[pid], nil
		}
	}
	return directory.Person{}, fmt.Errorf("identity: %w", directory.ErrNotFound)
}

func (bp *benchPeople) Create(_ context.Context, np directory.NewPerson) (directory.Person, error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.nextID++
	now := time.Now()
	p := directory.Person{ID: "p_bench" + strconv.Itoa(bp.nextID), Username: np.Username, DisplayName: np.DisplayName,
		Groups: np.Groups, Status: np.Status, CreatedAt: now, UpdatedAt: now}
	if p.Status == "" {
		p.Status = directory.StatusActive
	}
	bp.byID[p.ID] = p
	return p, nil
}

func (bp *benchPeople) BindIdentity(_ context.Context, personID string, id directory.Identity) error {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	for _, k := range identityKeys(id) {
		bp.byKey[k] = personID
	}
	return nil
}

func (bp *benchPeople) Delete(_ context.Context, personID string) error {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	delete(bp.byID, personID)
	for k, pid := range bp.byKey {
		if pid == personID {
			delete(bp.byKey, k)
		}
	}
	return nil
}

func (bp *benchPeople) RecordSignIn(context.Context, string, directory.SignIn) error { return nil }

func (bp *benchPeople) SignedIn(context.Context, string, directory.SignIn, directory.Event) error {
	return nil
}

func (bp *benchPeople) Get(_ context.Context, personID string) (directory.Person, error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	p, ok := bp.byID[personID]
	if !ok {
		return directory.Person{}, fmt.Errorf("person: %w", directory.ErrNotFound)
	}
	return p, nil
}

func (bp *benchPeople) Append(context.Context, directory.Event) error { return nil }

// benchProfiles keeps the openid → unionid links in a map, for the baseline.
type benchProfiles struct {
	mu sync.Mutex
	m  map[string]directory.Profile
}

func (bp *benchProfiles) Remember(_ context.Context, p directory.Profile) error {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	k := p.Provider + "\x00" + p.AppID + "\x00" + p.OpenID
	old := bp.m[k]
	if p.UnionID == "" {
		p.UnionID = old.UnionID
	}
	if p.Nickname == "" {
		p.Nickname = old.Nickname
	}
	if p.AvatarURL == "" {
		p.AvatarURL = old.AvatarURL
	}
	bp.m[k] = p
	return nil
}

func (bp *benchProfiles) Get(_ context.Context, provider, appID, openid string) (directory.Profile, error) {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	p, ok := bp.m[provider+"\x00"+appID+"\x00"+openid]
	if !ok {
		return directory.Profile{}, fmt.Errorf("profile: %w", directory.ErrNotFound)
	}
	return p, nil
}
