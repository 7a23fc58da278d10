package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// checkConfig is `wechat-oidc check-config --config FILE [--strict]`: it
// reads and validates the file as serve does, without opening anything
// (no listener, store, database or key), prints what the configuration
// will run and its warnings. Exit 0: serve would start (warnings allowed);
// 1: it would not, or --strict and there are warnings; 2: usage.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path to the YAML configuration file")
	strict := fs.Bool("strict", false, "treat warnings as errors (exit 1), e.g. in CI before a deployment")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "check-config: usage: wechat-oidc check-config --config FILE [--strict]")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		fmt.Fprintf(stderr, "check-config: %s has an error: wechat-oidc serve would not start with it\n", *path)
		return 1
	}
	cfg.WriteSummary(stdout)
	ws := cfg.Warnings()
	if len(ws) > 0 {
		fmt.Fprintf(stdout, "\nwarnings (%d):\n", len(ws))
		for _, w := range ws {
			fmt.Fprintf(stdout, "  %s: %s\n    fix: %s\n", w.Key, w.Message, w.Fix)
		}
	}
	fmt.Fprintln(stdout)
	switch {
	case len(ws) == 0:
		fmt.Fprintf(stdout, "ok: %s is valid, no warnings\n", *path)
	case *strict:
		fmt.Fprintf(stdout, "refused: %s is valid but has %s, and --strict makes them errors\n", *path, plural(len(ws), "warning"))
		return 1
	default:
		fmt.Fprintf(stdout, "ok: %s is valid, with %s (--strict would refuse it)\n", *path, plural(len(ws), "warning"))
	}
	return 0
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
