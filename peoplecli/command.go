package peoplecli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/directory"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // an error, or a refusal that says what to do
	ExitUsage = 2 // the command line is wrong
)

// Actor is the audit actor of every change the CLI makes.
const Actor = "cli"

// Command runs the people and audit commands. Stdout and Stderr are
// required; Now defaults to time.Now.
type Command struct {
	Stdout, Stderr io.Writer
	// Now is the clock of the directory's timestamps, of invitation expiry
	// and of --since.
	Now func() time.Time
}

// Run runs `wechat-oidc people ARGS...` (args without "people") and
// returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Command{Stdout: stdout, Stderr: stderr}.People(ctx, args)
}

// RunAudit runs `wechat-oidc audit ARGS...` (args without "audit") and
// returns the exit code.
func RunAudit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Command{Stdout: stdout, Stderr: stderr}.Audit(ctx, args)
}

// subcommand is one `people` subcommand.
type subcommand struct {
	name, args, summary string
	run                 func(c Command, ctx context.Context, args []string) error
}

var subcommands = []subcommand{
	{"list", "[--status active|pending|disabled] [--search TEXT]", "list people (a table; --json for scripts)", Command.list},
	{"show", "USERNAME|ID|REF", "a person: identities, groups, status, last sign-in, recent audit", Command.show},
	{"add", "--username NAME [--name TEXT] [--email ADDR] [--groups a,b] [--status active|pending]", "add a person (they sign in after an invitation or an import binds their WeChat account)", Command.add},
	{"invite", "--username NAME [--name TEXT] [--email ADDR] [--groups a,b] [--client ID] [--ttl 168h] [--no-qr]", "print a single-use invitation link and its QR code (--groups admins: the first administrator)", Command.invite},
	{"approve", "USERNAME|ID|REF [--username NEW] [--groups a,b]", "admit a pending person", Command.approve},
	{"deny", "USERNAME|ID|REF", "refuse a pending person (removes them)", Command.deny},
	{"disable", "USERNAME|ID", "refuse a person at once: running servers end their sessions and tokens", Command.disable},
	{"enable", "USERNAME|ID", "let a disabled person sign in again", Command.enable},
	{"remove", "USERNAME|ID", "delete a person and their WeChat bindings; their sessions and tokens end", Command.remove},
	{"groups", "USERNAME|ID (--set a,b | --add x --remove y)", "change a person's groups", Command.groups},
	{"import", "--file people.csv", "add or update people from CSV (all or nothing; running it twice changes nothing)", Command.importCSV},
	{"export", "[--file people.csv]", "write every person as import CSV", Command.export},
}

func peopleUsage() string {
	var b strings.Builder
	b.WriteString("Usage: wechat-oidc people COMMAND --config FILE [flags]\n\nCommands:\n")
	for _, s := range subcommands {
		fmt.Fprintf(&b, "  %-8s %s\n", s.name, s.summary)
	}
	b.WriteString("\nEvery command takes --config FILE (the server's config; only issuer, directory and access are read)\n" +
		"and --json. Run wechat-oidc people COMMAND -h for its flags. See docs/people.md.\n")
	return b.String()
}

// People runs a `people` subcommand.
func (c Command) People(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.Stderr, peopleUsage())
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(c.Stdout, peopleUsage())
		return ExitOK
	}
	for _, s := range subcommands {
		if s.name == args[0] {
			return c.exit("people "+s.name, s.run(c, ctx, args[1:]))
		}
	}
	fmt.Fprintf(c.Stderr, "wechat-oidc people: unknown command %q\n\n%s", args[0], peopleUsage())
	return ExitUsage
}

// Audit runs `wechat-oidc audit`.
func (c Command) Audit(ctx context.Context, args []string) int {
	return c.exit("audit", c.audit(ctx, args))
}

// exit prints err for command name and returns the exit code.
func (c Command) exit(name string, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		if ue.msg != "" { // else the flag package has printed the problem and the usage
			fmt.Fprintf(c.Stderr, "wechat-oidc %s: %s\nRun wechat-oidc %s -h for usage.\n", name, ue.msg, name)
		}
		return ExitUsage
	default:
		fmt.Fprintf(c.Stderr, "wechat-oidc %s: %v\n", name, err)
		return ExitError
	}
}

// usageError is a wrong command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// session is an open directory and the config sections the CLI reads.
type session struct {
	Command
	dir  *directory.Directory
	cfg  *config.Options
	json bool // --json
}

// open reads the config and opens the directory it names. The caller
// closes the session.
func (c Command) open(ctx context.Context, f *flags) (*session, error) {
	configPath := *f.config
	if configPath == "" {
		return nil, usagef("--config FILE is required: the server's config file (only issuer, directory and access are read)")
	}
	cfg, err := config.LoadSections(configPath, "issuer", "directory", "access", "audit")
	if err != nil {
		return nil, err
	}
	dir, err := directory.Open(ctx, directory.Options{
		Type: cfg.Directory.Type, Path: cfg.Directory.Path, URL: cfg.Directory.URL, Now: c.now,
	})
	if err != nil {
		return nil, fmt.Errorf("opening the directory (directory.type %s in %s): %w", cfg.Directory.Type, configPath, err)
	}
	return &session{Command: c, dir: dir, cfg: cfg, json: *f.json}, nil
}

// close closes the directory; a failure is reported, not fatal.
func (s *session) close() {
	if err := s.dir.Close(); err != nil {
		fmt.Fprintf(s.Stderr, "warning: closing the directory: %v\n", err)
	}
}

func (c Command) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// record appends the audit row of a change the CLI made.
func (s *session) record(ctx context.Context, e directory.Event) error {
	e.Actor, e.Result = Actor, "ok"
	if err := s.dir.Audit().Append(ctx, e); err != nil {
		return fmt.Errorf("the change was made, but its audit row (%s) was not written: %w", e.Action, err)
	}
	return nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
