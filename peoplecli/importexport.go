package peoplecli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// importCSV: `people import --file people.csv`.
func (c Command) importCSV(ctx context.Context, args []string) error {
	f := c.newFlags("people import", "--file people.csv")
	file := f.String("file", "", "the CSV `FILE` (- for standard input); columns username,name,email,groups,openid,unionid,app_id,status")
	if _, err := f.parse(args, 0, "", c.Stdout); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file is required: the CSV to import (columns username,name,email,groups,openid,unionid,app_id,status; " +
			"wechat-oidc people export writes one)")
	}
	s, err := c.open(ctx, f)
	if err != nil {
		return err
	}
	defer s.close()
	var in io.Reader = os.Stdin
	if *file != "-" {
		fh, err := os.Open(*file)
		if err != nil {
			return fmt.Errorf("%w: check the --file path", err)
		}
		defer fh.Close()
		in = fh
	}
	rows, err := directory.ParseImportCSV(bufio.NewReader(in))
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err) // ImportErrors: line-numbered, "nothing was imported"
	}
	disabling, err := s.disabledByImport(ctx, rows)
	if err != nil {
		return err
	}
	sum, err := s.dir.Import(ctx, rows)
	if err != nil {
		return fmt.Errorf("%s: %w", *file, err)
	}
	changed := sum.Created+sum.Updated+sum.IdentitiesBound > 0
	summary := fmt.Sprintf("%d rows: %d people created, %d updated, %d WeChat identities bound", sum.Rows, sum.Created, sum.Updated, sum.IdentitiesBound)
	if changed {
		if err := s.record(ctx, directory.Event{Action: directory.ActionImport, Reason: filepath.Base(*file) + ": " + summary}); err != nil {
			return err
		}
	}
	// An import may disable people: their sessions end as after people disable.
	for _, p := range disabling {
		if err := s.record(ctx, directory.Event{Action: directory.ActionPersonDisable, PersonID: p.ID, Reason: "disabled by import"}); err != nil {
			return fmt.Errorf("%s was disabled by the import, but the audit row that ends their sessions was not written: "+
				"run wechat-oidc people disable %s: %w", p.Username, p.ID, err)
		}
	}
	if s.json {
		return writeJSON(c.Stdout, ImportJSON{File: *file, Rows: sum.Rows, Created: sum.Created, Updated: sum.Updated,
			IdentitiesBound: sum.IdentitiesBound, Changed: changed})
	}
	if !changed {
		_, err := fmt.Fprintf(c.Stdout, "Imported %s: %s. Nothing changed: the directory already matches the file.\n", *file, summary)
		return err
	}
	fmt.Fprintf(c.Stdout, "Imported %s: %s.\n", *file, summary)
	for _, p := range disabling {
		fmt.Fprintf(c.Stdout, "Disabled %s: running servers end their sessions and tokens within seconds.\n", p.Username)
	}
	return nil
}

// disabledByImport lists the people the rows will disable who are not
// disabled now (new people have no sessions to end).
func (s *session) disabledByImport(ctx context.Context, rows []directory.ImportRow) ([]directory.Person, error) {
	var out []directory.Person
	for _, r := range rows {
		if r.Status != directory.StatusDisabled || slices.ContainsFunc(out, func(p directory.Person) bool { return p.Username == r.Username }) {
			continue
		}
		p, err := s.dir.People().GetByUsername(ctx, r.Username)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if p.Status != directory.StatusDisabled {
			out = append(out, p)
		}
	}
	return out, nil
}

// export: `people export [--file F]`.
func (c Command) export(ctx context.Context, args []string) error {
	f := c.newFlags("people export", "[--file people.csv]")
	file := f.String("file", "", "write to this `FILE` (mode 0600: it holds personal data) instead of standard output")
	if _, err := f.parse(args, 0, "", c.Stdout); err != nil {
		return err
	}
	if *f.json {
		return usagef("export writes CSV (the import format); --json is not available here (use wechat-oidc people list --json)")
	}
	s, err := c.open(ctx, f)
	if err != nil {
		return err
	}
	defer s.close()
	if *file == "" {
		return s.dir.Export(ctx, c.Stdout)
	}
	if err := writeFileAtomically(*file, func(w io.Writer) error { return s.dir.Export(ctx, w) }); err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.Stderr, "Exported the directory to %s (import it with wechat-oidc people import --file %s).\n", *file, *file)
	return err
}

// writeFileAtomically writes path through a temporary file in the same
// directory, synced and renamed: a failed export leaves no partial file
// and does not clobber an earlier one.
func writeFileAtomically(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("%w: check the --file path", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriter(tmp)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done = true
	return nil
}
