package directory

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// importColumns are the columns of an import or export CSV, in export
// order (see ParseImportCSV).
var importColumns = []string{"username", "name", "email", "groups", "openid", "unionid", "app_id", "status"}

// Import limits.
const (
	MaxImportRows   = 100000
	maxImportErrors = 1000 // then parsing stops: the file is not what it should be
)

// ImportRow is one line of an import: a person, and at most one identity
// key pair to bind to them. Several lines may name the same username to bind
// several identities; their person columns must then agree.
type ImportRow struct {
	Line        int // the line in the CSV where the record starts (the header is line 1)
	Username    string
	DisplayName string
	Email       string
	Groups      []string
	Status      Status   // empty: active
	Identity    Identity // zero when the line binds nothing
}

// LineError is what is wrong with one line of an import.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ImportErrors are every problem found in an import, in line order. It
// matches ErrInvalid (and ErrIdentityTaken or ErrUsernameTaken when a line
// conflicts with the directory) with errors.Is.
type ImportErrors []*LineError

func (es ImportErrors) Error() string {
	const show = 20
	var b strings.Builder
	fmt.Fprintf(&b, "import: %d problem(s); nothing was imported; fix the file and import it again:", len(es))
	for i, e := range es {
		if i == show {
			fmt.Fprintf(&b, "\n  … and %d more", len(es)-show)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes every line's error to errors.Is and errors.As.
func (es ImportErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Is reports ErrInvalid: an import with errors is invalid as a whole.
func (es ImportErrors) Is(target error) bool { return target == ErrInvalid }

// ParseImportCSV reads an import file: a header row naming the columns
// username, name, email, groups, openid, unionid, app_id and status, once
// each, in any order (and optionally provider, default "wechat"; Export
// writes it only when some identity is not WeChat's); then one person, and
// optionally one identity, per line. groups are separated by ';' or
// spaces; status is active (default), pending or disabled. Every line is checked
// and every problem reported with its line number (as ImportErrors); rows
// are returned only when there is none.
func ParseImportCSV(r io.Reader) ([]ImportRow, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, ImportErrors{{Line: 1, Err: invalid("header", "the file is empty; the first line names the columns: %s",
			strings.Join(importColumns, ","))}}
	}
	if err != nil {
		return nil, ImportErrors{{Line: 1, Err: csvErr(err)}}
	}
	col, err := importHeader(header)
	if err != nil {
		return nil, ImportErrors{{Line: 1, Err: err}}
	}
	cr.FieldsPerRecord = len(header)
	var rows []ImportRow
	var errs ImportErrors
	lastLine := 1
	for len(errs) < maxImportErrors {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line := lastLine + 1 // a read error that is not the CSV's: where reading stopped
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			errs = append(errs, &LineError{Line: line, Err: csvErr(err)})
			if !errors.Is(err, csv.ErrFieldCount) {
				// After a quoting error the reader's position is not worth trusting.
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0) // a record read without error has a field
		lastLine = line
		if len(rows) == MaxImportRows {
			errs = append(errs, &LineError{Line: line, Err: invalid("file", "too many lines: at most %d people/identities per import", MaxImportRows)})
			break
		}
		row, lineErrs := parseImportRecord(rec, col, line)
		errs = append(errs, lineErrs...)
		rows = append(rows, row)
	}
	errs = append(errs, crossCheckRows(rows)...)
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *LineError) int { return a.Line - b.Line })
		return nil, errs
	}
	return rows, nil
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return invalid("csv", "%v", pe.Err)
	}
	return invalid("csv", "%v", err)
}

// importHeader maps column names to their index.
func importHeader(header []string) (map[string]int, error) {
	col := map[string]int{}
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))) // spreadsheets write a BOM
		if !slices.Contains(importColumns, name) && name != "provider" {
			return nil, invalid("header", "unknown column %q; the columns are %s (and optionally provider)",
				truncateForMessage(name), strings.Join(importColumns, ","))
		}
		if _, dup := col[name]; dup {
			return nil, invalid("header", "column %q appears twice", name)
		}
		col[name] = i
	}
	for _, c := range importColumns {
		if _, ok := col[c]; !ok {
			return nil, invalid("header", "missing column %q; the first line names the columns: %s", c, strings.Join(importColumns, ","))
		}
	}
	return col, nil
}

// parseImportRecord turns one record into a row, with every field's error.
func parseImportRecord(rec []string, col map[string]int, line int) (ImportRow, []*LineError) {
	get := func(name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	row := ImportRow{
		Line: line, Username: get("username"), DisplayName: get("name"), Email: get("email"),
		Groups: strings.FieldsFunc(get("groups"), func(r rune) bool { return r == ';' || r == ' ' || r == '\t' }),
		Status: Status(get("status")),
		Identity: Identity{Provider: get("provider"), AppID: get("app_id"), OpenID: get("openid"),
			UnionID: get("unionid")},
	}
	errs := validateImportRow(&row)
	return row, errs
}

// validateImportRow normalises row in place and returns each field's error.
func validateImportRow(row *ImportRow) []*LineError {
	var errs []*LineError
	add := func(err error) {
		if err != nil {
			errs = append(errs, &LineError{Line: row.Line, Err: err})
		}
	}
	var err error
	row.Username, err = normalizeUsername(row.Username)
	add(err)
	add(validateDisplayName(row.DisplayName))
	add(validateEmail(row.Email))
	row.Groups, err = normalizeGroups(row.Groups)
	add(err)
	if row.Status == "" {
		row.Status = StatusActive
	}
	row.Status, err = parseStatus(string(row.Status))
	add(err)
	id := &row.Identity
	if id.OpenID != "" || id.UnionID != "" || id.AppID != "" {
		if id.Provider == "" {
			id.Provider = ProviderWeChat
		}
		add(id.validate())
	} else if id.Provider != "" {
		add(invalid("provider", "only with an openid or a unionid"))
	}
	return errs
}

// crossCheckRows finds lines that contradict each other: one username with
// different person columns, one identity key for two usernames.
func crossCheckRows(rows []ImportRow) []*LineError {
	var errs []*LineError
	firstOf := map[string]int{} // username → index of its first row
	keyOwner := map[identityKey]int{}
	for i, r := range rows {
		if j, seen := firstOf[r.Username]; seen {
			f := rows[j]
			if f.DisplayName != r.DisplayName || f.Email != r.Email || f.Status != r.Status || !slices.Equal(f.Groups, r.Groups) {
				errs = append(errs, &LineError{Line: r.Line, Err: invalid("username",
					"%s is also on line %d with a different name, email, groups or status; repeat them exactly", r.Username, f.Line)})
			}
		} else if r.Username != "" {
			firstOf[r.Username] = i
		}
		for _, k := range r.Identity.keys() {
			if j, seen := keyOwner[k]; seen && rows[j].Username != r.Username {
				errs = append(errs, &LineError{Line: r.Line, Err: fmt.Errorf("%s is also on line %d for %s: %w",
					k, rows[j].Line, rows[j].Username, ErrIdentityTaken)})
			} else if !seen {
				keyOwner[k] = i
			}
		}
	}
	return errs
}

// ImportSummary counts what an import did.
type ImportSummary struct {
	Rows            int
	Created         int // people created
	Updated         int // people whose name, email, groups or status changed
	IdentitiesBound int // identity keys newly bound
}

// Import applies rows (from ParseImportCSV, or built by a caller) in one
// transaction: all of them or, on any error, none. For each username it
// creates the person or brings their name, email (marked verified: an
// administrator set it), groups and status to what the row says, and binds
// the row's identity. Importing the same rows again changes nothing. An
// identity bound to another person fails the import with an ImportErrors
// naming the line (matching ErrIdentityTaken).
func (d *Directory) Import(ctx context.Context, rows []ImportRow) (ImportSummary, error) {
	rows = slices.Clone(rows) // normalised below; the caller's rows stay as they are
	var errs ImportErrors
	for i := range rows {
		errs = append(errs, validateImportRow(&rows[i])...)
	}
	errs = append(errs, crossCheckRows(rows)...)
	if len(errs) > 0 {
		return ImportSummary{}, errs
	}
	sum := ImportSummary{Rows: len(rows)}
	err := d.inTx(ctx, "importing", func(tx *sql.Tx) error {
		done := map[string]string{} // username → person id, once brought up to date
		for _, r := range rows {
			id, ok := done[r.Username]
			if !ok {
				var err error
				if id, err = d.importPerson(ctx, tx, r, &sum); err != nil {
					return err
				}
				done[r.Username] = id
			}
			if err := d.importIdentity(ctx, tx, r, id, &sum, &errs); err != nil {
				return err
			}
		}
		if len(errs) > 0 {
			return errs
		}
		return nil
	})
	if err != nil {
		return ImportSummary{}, err
	}
	return sum, nil
}

func (d *Directory) importPerson(ctx context.Context, tx *sql.Tx, r ImportRow, sum *ImportSummary) (string, error) {
	p, err := d.lockPerson(ctx, tx, "p.username = $1", r.Username)
	if errors.Is(err, sql.ErrNoRows) {
		p, err := d.insertPerson(ctx, tx, NewPerson{Username: r.Username, DisplayName: r.DisplayName, Email: r.Email,
			EmailVerified: true, Groups: r.Groups, Status: r.Status})
		if err != nil {
			return "", lineErr(r.Line, err)
		}
		sum.Created++
		return p.ID, nil
	}
	if err != nil {
		return "", dbErr("reading a person", err)
	}
	verified := r.Email != ""
	if p.DisplayName == r.DisplayName && p.Email == r.Email && p.EmailVerified == verified &&
		slices.Equal(p.Groups, r.Groups) && p.Status == r.Status {
		return p.ID, nil
	}
	p.DisplayName, p.Email, p.EmailVerified, p.Groups, p.Status = r.DisplayName, r.Email, verified, r.Groups, r.Status
	if err := d.writePerson(ctx, tx, &p); err != nil {
		return "", lineErr(r.Line, err)
	}
	sum.Updated++
	return p.ID, nil
}

// importIdentity binds the row's keys; a key owned by someone else is added
// to errs (so that every such line is reported) and binds nothing.
func (d *Directory) importIdentity(ctx context.Context, tx *sql.Tx, r ImportRow, personID string, sum *ImportSummary, errs *ImportErrors) error {
	var free []identityKey
	for _, k := range r.Identity.keys() {
		owner, err := keyOwner(ctx, tx, k)
		if err != nil {
			return err
		}
		switch owner {
		case personID:
		case "":
			free = append(free, k)
		default:
			var username string
			if err := tx.QueryRowContext(ctx, "SELECT username FROM people WHERE id = $1", owner).Scan(&username); err != nil {
				return dbErr("reading a person", err)
			}
			*errs = append(*errs, &LineError{Line: r.Line, Err: fmt.Errorf("%s is bound to %s: %w", k, username, ErrIdentityTaken)})
		}
	}
	if len(*errs) > 0 {
		return nil // the import fails; binding more is pointless
	}
	n, err := d.bindKeys(ctx, tx, personID, free)
	if err != nil {
		return lineErr(r.Line, err)
	}
	sum.IdentitiesBound += n
	return nil
}

// lineErr attaches a line to a domain error; database errors stay as they are.
func lineErr(line int, err error) error {
	if isDomainError(err) {
		return ImportErrors{{Line: line, Err: err}}
	}
	return err
}

// Export writes every person as import CSV, ordered by username: one line
// per bound identity key, or one line without identity. Importing the
// output into an empty directory recreates the people and bindings (not
// their ids, timestamps, sign-ins or unverified emails: imported emails are
// verified).
func (d *Directory) Export(ctx context.Context, w io.Writer) error {
	var other int
	if err := d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM identities WHERE provider <> $1", ProviderWeChat).Scan(&other); err != nil {
		return dbErr("exporting", err)
	}
	rows, err := d.db.QueryContext(ctx, `SELECT p.username, p.display_name, p.email, p.group_names, p.status,
		COALESCE(i.provider, ''), COALESCE(i.app_id, ''), COALESCE(i.openid, ''), COALESCE(i.unionid, '')
		FROM people p LEFT JOIN identities i ON i.person_id = p.id
		ORDER BY p.username, i.provider, i.unionid, i.app_id, i.openid`)
	if err != nil {
		return dbErr("exporting", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	header := slices.Clone(importColumns)
	if other > 0 {
		header = append(header, "provider")
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("directory: export: writing: %w", err)
	}
	for rows.Next() {
		var username, name, email, groups, status, provider, appID, openid, unionid string
		if err := rows.Scan(&username, &name, &email, &groups, &status, &provider, &appID, &openid, &unionid); err != nil {
			return dbErr("exporting", err)
		}
		rec := []string{username, name, email, strings.ReplaceAll(groups, " ", ";"), openid, unionid, appID, status}
		if other > 0 {
			rec = append(rec, provider)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("directory: export: writing: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return dbErr("exporting", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("directory: export: writing: %w", err)
	}
	return nil
}
