package directory_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
)

// One PostgreSQL server for the whole test binary.
func TestMain(m *testing.M) { os.Exit(directorytest.Main(m)) }

func freshSQLite(t *testing.T) directory.Options {
	return directory.Options{Type: directory.TypeSQLite, Path: filepath.Join(t.TempDir(), "directory.db")}
}

func freshPostgres(t *testing.T) directory.Options {
	return directory.Options{Type: directory.TypePostgres, URL: directorytest.StartPostgres(t)}
}

func TestSQLite(t *testing.T) { directorytest.Run(t, freshSQLite) }

func TestPostgres(t *testing.T) { directorytest.Run(t, freshPostgres) }

func TestSQLiteFileIsPrivate(t *testing.T) {
	opts := freshSQLite(t)
	d, err := directory.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	st, err := os.Stat(opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode %v, want 0600: it holds personal data", st.Mode().Perm())
	}
}

func TestSQLiteInMemory(t *testing.T) {
	d, err := directory.Open(t.Context(), directory.Options{Path: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := d.People().Create(t.Context(), directory.NewPerson{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.People().Get(t.Context(), p.ID); err != nil || got.Username != "alice" {
		t.Fatalf("Get = %+v (%v)", got, err)
	}
}

func TestOpenRejectsBadOptionsNamingTheField(t *testing.T) {
	for _, c := range []struct {
		opts  directory.Options
		field string
	}{
		{directory.Options{Type: "mysql"}, "type"},
		{directory.Options{Type: directory.TypeSQLite}, "path"},
		{directory.Options{Path: "dir/db.sqlite?mode=ro"}, "path"},
		{directory.Options{Path: "file:x.db"}, "path"},
		{directory.Options{Type: directory.TypePostgres}, "url"},
		{directory.Options{Type: directory.TypePostgres, URL: "postgres://u:s3cret@host:notaport/db"}, "url"},
	} {
		_, err := directory.Open(t.Context(), c.opts)
		var ve *directory.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Fatalf("Open(%+v) = %v, want a ValidationError for %q", c.opts, err, c.field)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
}

func TestOpenSQLiteInMissingDirectoryFails(t *testing.T) {
	_, err := directory.Open(t.Context(), directory.Options{Path: filepath.Join(t.TempDir(), "missing", "db.sqlite")})
	if err == nil || !strings.Contains(err.Error(), "does its directory exist") {
		t.Fatalf("Open in a missing directory: %v", err)
	}
}

// TestOpenUnreachablePostgresIsUnavailable: a database that does not answer
// is ErrUnavailable, and the password is not in the error.
func TestOpenUnreachablePostgresIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = directory.Open(ctx, directory.Options{Type: directory.TypePostgres,
		URL: "postgres://app:s3cret@127.0.0.1:" + strconv.Itoa(port) + "/db?sslmode=disable&connect_timeout=5"})
	if !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows the password: %v", err)
	}
}

func TestNewRef(t *testing.T) {
	pattern := regexp.MustCompile(`^R-[2-9ACDEFGHJKMNPQRTWXY]{6}$`)
	seen := map[string]bool{}
	for range 2000 {
		r := directory.NewRef()
		if !pattern.MatchString(r) {
			t.Fatalf("NewRef() = %q, want R- and 6 characters of the unambiguous alphabet", r)
		}
		if strings.ContainsAny(r[2:], "01OILSBZUV") {
			t.Fatalf("NewRef() = %q uses an ambiguous character", r)
		}
		seen[r] = true
	}
	if len(seen) < 1990 { // 26^6 values: a handful of collisions at most
		t.Fatalf("only %d distinct refs in 2000", len(seen))
	}
}

func TestLatestSchemaVersion(t *testing.T) {
	if v := directory.LatestSchemaVersion(); v < 1 {
		t.Fatalf("LatestSchemaVersion() = %d: the embedded migrations did not load", v)
	}
}
