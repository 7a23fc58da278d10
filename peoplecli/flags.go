package peoplecli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// flags is a subcommand's flag set with the flags every command has.
type flags struct {
	*flag.FlagSet
	config *string
	json   *bool
}

func (c Command) newFlags(name, args string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.Stderr)
	f := &flags{
		FlagSet: fs,
		config:  fs.String("config", "", "the server's config `FILE` (only issuer, directory and access are read)"),
		json:    fs.Bool("json", false, "print JSON instead of text"),
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: wechat-oidc %s %s --config FILE [--json]\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return f
}

// parse parses flags and positional arguments in any order (flags may
// follow a USERNAME) and checks the number of positional arguments.
// -h prints the usage to stdout.
func (f *flags) parse(args []string, positional int, what string, stdout io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.SetOutput(stdout)
				f.Usage()
				return nil, err
			}
			return nil, &usageError{} // the flag package printed the problem and the usage
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	switch {
	case len(pos) < positional:
		return nil, usagef("%s is required", what)
	case len(pos) > positional && positional == 0:
		return nil, usagef("unexpected argument %q (this command takes only flags)", pos[0])
	case len(pos) > positional:
		return nil, usagef("unexpected argument %q: give only %s (quote a value that has spaces)", pos[positional], what)
	}
	return pos, nil
}

// listFlag is a comma- or space-separated list of group names, lowercased
// as the directory stores them, that knows whether it was given (so that
// --groups "" means "no groups").
type listFlag struct {
	set  bool
	vals []string
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	l.set = true
	l.vals = append(l.vals, strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ',' || r == ' ' || r == ';' })...)
	return nil
}

// durationFlag is a Go duration, or a number of days ("7d").
type durationFlag struct{ d time.Duration }

func (f *durationFlag) String() string { return f.d.String() }

func (f *durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	f.d = d
	return nil
}

// parseDuration reads "36h", "90m" or "7d".
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("%q is not a duration: write e.g. 168h, 30m or 7d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration: write e.g. 168h, 30m or 7d", s)
	}
	return d, nil
}
