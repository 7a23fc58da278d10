package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/keys"
)

const keysUsage = `keys: manage the signing keys
  wechat-oidc keys list --config FILE     kid, algorithm, state (next/active/retired) and dates
  wechat-oidc keys rotate --config FILE   add the next key of each signing algorithm ("add" is the same)
  wechat-oidc keys rekey --config FILE --old-key-env VAR
                                          seal the keys in the shared store again under FILE's
                                          keys.encryption_key, from the old one in $VAR
Only the store and keys sections of FILE are used: no WeChat or client secret needs to be set.
`

// runKeys runs a keys subcommand.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return 2
	}
	sub := args[0]
	switch sub {
	case "list", "rotate", "add", "rekey":
	default:
		fmt.Fprintf(stderr, "keys: unknown subcommand %q\n%s", sub, keysUsage)
		return 2
	}
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the YAML configuration file")
	oldKeyEnv := ""
	if sub == "rekey" {
		fs.StringVar(&oldKeyEnv, "old-key-env", "", "the environment variable holding the old keys.encryption_key (never on the command line)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if sub == "rekey" {
		if oldKeyEnv == "" {
			fmt.Fprintln(stderr, "keys rekey: --old-key-env VAR is required: the name of an environment variable holding the old keys.encryption_key")
			return 2
		}
		if *configPath == "" {
			fmt.Fprintln(stderr, "keys rekey: --config FILE is required")
			return 2
		}
		if err := rekeyCommand(ctx, *configPath, oldKeyEnv, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "wechat-oidc keys rekey: %v\n", err)
			return 1
		}
		return 0
	}
	if *configPath == "" {
		fmt.Fprintf(stderr, "keys %s: --config FILE is required\n", sub)
		return 2
	}
	if err := keysCommand(ctx, sub, *configPath, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "wechat-oidc keys %s: %v\n", sub, err)
		return 1
	}
	return 0
}

func keysCommand(ctx context.Context, sub, configPath string, stdout, stderr io.Writer) error {
	cfg, err := config.LoadKeys(configPath)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	var src keys.Source
	if cfg.Keys.Shared {
		st, _, err := openStore(ctx, cfg.Store, logger)
		if err != nil {
			return err
		}
		defer st.Close()
		if src, err = keySource(cfg.Keys, st); err != nil {
			return err
		}
	} else if src, err = keySource(cfg.Keys, nil); err != nil {
		return err
	}
	// The commands' own lines (what they changed) go to stdout; the
	// keyring's log lines would repeat them.
	opts := keyringOptions(cfg.Keys, slog.New(slog.NewTextHandler(io.Discard, nil)))
	switch sub {
	case "list":
		list, err := keys.List(ctx, src, opts)
		if err != nil {
			return err
		}
		printKeys(stdout, list)
		if len(list) == 0 {
			fmt.Fprintf(stdout, "no signing key yet in %s: the first start of serve (or keys rotate) creates one\n", src)
		}
		return nil
	default: // rotate, add
		added, err := keys.Rotate(ctx, src, opts)
		if err != nil {
			return err
		}
		for _, k := range added {
			fmt.Fprintf(stdout, "added signing key %s (%s): published now, signs from %s\n", k.KID, k.Algorithm, k.Activates.Format(time.RFC3339))
		}
		fmt.Fprintf(stdout, "Running replicas publish the new key within %s, without a restart; it signs after keys.publish_before_use (%s).\n",
			opts.Refresh, cfg.Keys.PublishBeforeUse)
		if !cfg.Keys.Shared && cfg.Keys.RotateEvery == 0 {
			fmt.Fprintln(stdout, "Without keys.rotate_every, retired key files stay in keys.dir: delete one once it has been retired for longer than the longest token lifetime.")
		}
		return nil
	}
}

// rekeyCommand seals the shared store's keys again under the configured
// encryption key, from the old one in the environment variable oldKeyEnv.
func rekeyCommand(ctx context.Context, configPath, oldKeyEnv string, stdout, stderr io.Writer) error {
	cfg, err := config.LoadKeys(configPath)
	if err != nil {
		return err
	}
	if !cfg.Keys.Shared {
		return fmt.Errorf("the keys are in keys.dir %s, not in the shared store: files in a key directory are not sealed, there is nothing to rekey", cfg.Keys.Dir)
	}
	raw, ok := os.LookupEnv(oldKeyEnv)
	if !ok {
		return fmt.Errorf("environment variable %s is not set: set it to the old keys.encryption_key", oldKeyEnv)
	}
	old, err := keys.ParseEncryptionKey(raw)
	if err != nil {
		return fmt.Errorf("$%s: %w", oldKeyEnv, err)
	}
	logger := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	st, _, err := openStore(ctx, cfg.Store, logger)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := keys.Rekey(ctx, st, "", old, cfg.Keys.EncryptionKey)
	if errors.Is(err, keys.ErrAlreadyRekeyed) {
		fmt.Fprintln(stdout, "the signing keys are already sealed with the new keys.encryption_key: nothing to do")
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "sealed %d signing keys again under the new keys.encryption_key (kids and schedule unchanged).\n", n)
	fmt.Fprintln(stdout, "Restart every replica with the new key now: until then, replicas given the old one keep signing with the keys they hold but cannot reload or rotate.")
	return nil
}

// printKeys prints a table of keys.
func printKeys(w io.Writer, list []keys.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tCREATED\tSIGNS FROM\tRETIRES\tREMOVED")
	date := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04Z")
	}
	for _, k := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, k.State, date(k.Created), date(k.Activates), date(k.Retires), date(k.Removes))
	}
	tw.Flush()
}
