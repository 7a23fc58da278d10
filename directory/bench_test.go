package directory_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
)

// BenchmarkSignIn measures what the directory costs one sign-in: the lookup
// (FindByIdentity), the write (RecordSignIn) and the audit row (Append),
// among 1000 people. It reports the statements sent per sign-in.
//
//	go test -run '^$' -bench SignIn ./directory/
func BenchmarkSignIn(b *testing.B) {
	onBothDatabases(b, benchmarkSignIn)
}

// onBothDatabases runs bench against a new SQLite file and the test
// PostgreSQL server.
func onBothDatabases(b *testing.B, bench func(*testing.B, directory.Options)) {
	b.Run("sqlite", func(b *testing.B) {
		bench(b, directory.Options{Type: directory.TypeSQLite, Path: filepath.Join(b.TempDir(), "bench.db")})
	})
	b.Run("postgres", func(b *testing.B) {
		bench(b, directory.Options{Type: directory.TypePostgres, URL: directorytest.StartPostgres(b)})
	})
}

// benchPeople creates n people in groups staff and ops, each bound by an
// openid and a unionid, and returns their identities and ids.
func benchPeople(b *testing.B, d *directory.Directory, n int) (ids []directory.Identity, personIDs []string) {
	ctx := context.Background()
	ids, personIDs = make([]directory.Identity, n), make([]string, n)
	for i := range n {
		p, err := d.People().Create(ctx, directory.NewPerson{Username: "user" + strconv.Itoa(i), Groups: []string{"staff", "ops"}})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = directory.Identity{Provider: directory.ProviderWeChat, AppID: "wxweb", OpenID: "o-" + strconv.Itoa(i), UnionID: "u-" + strconv.Itoa(i)}
		if err := d.People().BindIdentity(ctx, p.ID, ids[i]); err != nil {
			b.Fatal(err)
		}
		personIDs[i] = p.ID
	}
	return ids, personIDs
}

func benchmarkSignIn(b *testing.B, opts directory.Options) {
	ctx := context.Background()
	var counter directorytest.StatementCounter
	opts.WrapConnector = counter.Wrap
	d, err := directory.Open(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const people = 1000
	ids, personIDs := benchPeople(b, d, people)
	counter.Reset()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		id := ids[i%people]
		p, err := d.People().FindByIdentity(ctx, id)
		if err != nil || p.ID != personIDs[i%people] {
			b.Fatalf("FindByIdentity = %s (%v)", p.ID, err)
		}
		if err := d.People().RecordSignIn(ctx, p.ID, directory.SignIn{At: time.Now(), ClientID: "grafana", Flow: "qr", IP: "192.0.2.7"}); err != nil {
			b.Fatal(err)
		}
		if err := d.Audit().Append(ctx, directory.Event{Action: "sign_in", PersonID: p.ID, ClientID: "grafana",
			Flow: "qr", IP: "192.0.2.7", Result: "ok", Ref: directory.NewRef()}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(counter.Count())/float64(i), "statements/op")
}

// BenchmarkFindByIdentity measures the sign-in lookup for each way a
// person can be bound: by the openid, by the unionid (with the openid →
// unionid link also known, as after a consent sign-in), and through the
// link only (a silent sign-in that brings the openid alone).
//
//	go test -run '^$' -bench FindByIdentity ./directory/
func BenchmarkFindByIdentity(b *testing.B) {
	ctx := context.Background()
	d, err := directory.Open(ctx, directory.Options{Type: directory.TypeSQLite, Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const people = 1000
	for i := range people {
		n := strconv.Itoa(i)
		p, err := d.People().Create(ctx, directory.NewPerson{Username: "user" + n})
		if err != nil {
			b.Fatal(err)
		}
		if err := d.People().BindIdentity(ctx, p.ID, directory.Identity{Provider: directory.ProviderWeChat, AppID: "wxweb", OpenID: "o-" + n}); err != nil {
			b.Fatal(err)
		}
		if err := d.People().BindIdentity(ctx, p.ID, directory.Identity{Provider: directory.ProviderWeChat, UnionID: "u-" + n}); err != nil {
			b.Fatal(err)
		}
		if err := d.Profiles().Remember(ctx, directory.Profile{Provider: directory.ProviderWeChat, AppID: "wxoa", OpenID: "oa-" + n, UnionID: "u-" + n}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		id   func(n string) directory.Identity
	}{
		{"openid", func(n string) directory.Identity {
			return directory.Identity{Provider: directory.ProviderWeChat, AppID: "wxweb", OpenID: "o-" + n, UnionID: "u-" + n}
		}},
		{"unionid", func(n string) directory.Identity {
			return directory.Identity{Provider: directory.ProviderWeChat, AppID: "wxoa", OpenID: "oa-" + n, UnionID: "u-" + n}
		}},
		{"link", func(n string) directory.Identity {
			return directory.Identity{Provider: directory.ProviderWeChat, AppID: "wxoa", OpenID: "oa-" + n}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				n := strconv.Itoa(i % people)
				if p, err := d.People().FindByIdentity(ctx, c.id(n)); err != nil || p.Username != "user"+n {
					b.Fatalf("FindByIdentity = %q (%v)", p.Username, err)
				}
				i++
			}
		})
	}
}
