package peoplecli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// refPattern is a reference as pages show it (directory.NewRef).
var refPattern = regexp.MustCompile(`^(?i)R-[0-9A-Z]{4,12}$`)

// openPerson opens the directory and finds the person a command names; on
// an error nothing stays open.
func (c Command) openPerson(ctx context.Context, f *flags, key string) (*session, directory.Person, error) {
	s, err := c.open(ctx, f)
	if err != nil {
		return nil, directory.Person{}, err
	}
	p, err := s.find(ctx, key)
	if err != nil {
		s.close()
		return nil, directory.Person{}, err
	}
	return s, p, nil
}

// find returns the person a command line names: a person id (p_…), a
// username, or the reference a page showed them (R-…; the pending page's
// reference finds the pending person through the audit trail).
func (s *session) find(ctx context.Context, key string) (directory.Person, error) {
	people := s.dir.People()
	if strings.HasPrefix(key, "p_") {
		p, err := people.Get(ctx, key)
		if !errors.Is(err, directory.ErrNotFound) {
			return p, err
		}
	}
	p, err := people.GetByUsername(ctx, key)
	if !errors.Is(err, directory.ErrNotFound) {
		return p, err
	}
	if refPattern.MatchString(key) {
		return s.findByRef(ctx, key)
	}
	return directory.Person{}, fmt.Errorf("no person has the username or id %s: see who there is with wechat-oidc people list "+
		"(--status pending for those waiting for approval)", strconv.Quote(key))
}

// findByRef finds the one person the audit rows of a reference concern.
func (s *session) findByRef(ctx context.Context, ref string) (directory.Person, error) {
	events, err := s.dir.Audit().Query(ctx, directory.AuditQuery{Ref: ref, Limit: 100})
	if err != nil {
		return directory.Person{}, err
	}
	var ids []string
	for _, e := range events {
		if e.PersonID != "" && !slices.Contains(ids, e.PersonID) {
			ids = append(ids, e.PersonID)
		}
	}
	switch len(ids) {
	case 0:
		return directory.Person{}, fmt.Errorf("no person has the username %s, and no audit row with that reference names a person: "+
			"check the reference, or find them with wechat-oidc people list --status pending", strconv.Quote(ref))
	case 1:
		p, err := s.dir.People().Get(ctx, ids[0])
		if errors.Is(err, directory.ErrNotFound) {
			return p, fmt.Errorf("reference %s is about person %s, who has since been removed (see wechat-oidc audit --ref %s)", ref, ids[0], ref)
		}
		return p, err
	default:
		return directory.Person{}, fmt.Errorf("reference %s concerns %d people (%s): name one by username or id", ref, len(ids), strings.Join(ids, ", "))
	}
}

// flagOf names the flag a directory field comes from.
var flagOf = map[string]string{
	"username": "--username", "name": "--name", "email": "--email", "groups": "--groups", "status": "--status",
	"ttl": "--ttl", "client_id": "--client", "text": "--search",
}

// explain rewrites a directory validation error in the command line's
// terms: "--email: must be a plain address like name@example.com".
func explain(err error) error {
	var ve *directory.ValidationError
	if errors.As(err, &ve) {
		if f, ok := flagOf[ve.Field]; ok {
			return fmt.Errorf("%s: %s", f, ve.Message)
		}
	}
	return err
}

// takenError is the refusal for a username in use.
func takenError(username string) error {
	return fmt.Errorf("username %s is taken: choose another with --username, or see wechat-oidc people show %s", username, username)
}
