package keys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// DirSource is a key directory as a Keyring's source: one PKCS#8 PEM file
// per key (see LoadOrCreate for the rules every file must pass). A key's
// schedule is derived from the creation times in the file names: per
// algorithm, the oldest key signs from its creation, each newer one from
// PublishBeforeUse after its creation, each until the next one starts.
//
// A Keyring only reads the directory unless a change is due, so a read-only
// directory (a Kubernetes Secret volume) works as long as it holds a key
// for every signing algorithm; automatic rotation needs a writable one. A
// Keyring removes retired key files only when it rotates automatically:
// otherwise the directory's keys are the operator's to manage.
//
// Changes are made under a lock file (.rotation.lock), so that processes
// sharing the directory do not rotate twice.
type DirSource struct{ dir string }

var _ Source = (*DirSource)(nil)

// Names in the key directory that a DirSource writes besides key files; they
// start with "." so that loadDir ignores them.
const (
	lockName  = ".rotation.lock"
	probeName = ".write-probe-*"
	// lockStale: a lock file older than this was left by a process that
	// died while changing keys (a change takes well under a second).
	lockStale = 2 * time.Minute
)

// errBusy: another process holds the key directory's lock.
var errBusy = errors.New("keys: another process is changing the keys")

// NewDirSource returns the key directory dir as a Source. Nothing is read
// or created until a Keyring uses it.
func NewDirSource(dir string) (*DirSource, error) {
	if dir == "" {
		return nil, errors.New("keys: key directory is empty: set a directory for signing keys")
	}
	return &DirSource{dir: dir}, nil
}

// String implements Source.
func (d *DirSource) String() string { return "key directory " + d.dir }

func (d *DirSource) managed() bool { return false }

func (d *DirSource) keepAlive(context.Context, *policy) error { return nil }

// load reads every key file (none if the directory does not exist yet) and
// schedules the keys.
func (d *DirSource) load(_ context.Context, p *policy) ([]*signingKey, error) {
	if _, err := os.Stat(d.dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	keys, err := loadDir(d.dir, p.algs)
	if err != nil {
		return nil, err
	}
	windows := schedule(keys, p.publishBeforeUse)
	for _, k := range keys {
		w := windows[k.kid]
		k.activates, k.retires, k.scheduled = w.activates, w.retires, true
	}
	return keys, nil
}

// writable creates the directory if missing, then writes and removes a
// probe file: permissions alone do not tell (root ignores them; a read-only
// mount refuses even root).
func (d *DirSource) writable(context.Context) error {
	if err := os.MkdirAll(d.dir, dirMode); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.dir, probeName)
	if err != nil {
		return err
	}
	name := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	return os.Remove(name)
}

// change takes the directory's lock, reads the keys, and writes the new key
// files and removes the retired ones that decide returns. Retirements need
// no writing: a key retires when the next one's file says it starts.
func (d *DirSource) change(ctx context.Context, p *policy, decide func([]*signingKey) changes) (applied changes, err error) {
	if err := os.MkdirAll(d.dir, dirMode); err != nil {
		return changes{}, fmt.Errorf("keys: create key directory: %w", err)
	}
	unlock, err := lockDir(d.dir)
	if err != nil {
		return changes{}, err
	}
	defer func() {
		if uerr := unlock(); uerr != nil && err == nil {
			err = uerr
		}
	}()
	cur, err := d.load(ctx, p)
	if err != nil {
		return changes{}, err
	}
	ch := decide(cur)
	for _, k := range ch.add {
		// File names carry whole seconds and order the keys: the new key's
		// time is rounded up and strictly after every other key's.
		k.created = nextCreated(k.created, cur)
		if k.file, err = writeKeyFile(d.dir, k); err != nil {
			return applied, err
		}
		applied.add = append(applied.add, k)
		cur = append(cur, k)
	}
	for _, k := range ch.remove {
		if err := os.Remove(k.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return applied, fmt.Errorf("keys: remove retired key file: %w", err)
		}
		applied.remove = append(applied.remove, k)
	}
	applied.retire = ch.retire
	return applied, nil
}

// lockDir creates the directory's lock file, or returns errBusy if another
// process holds it. A lock left by a dead process is taken over once stale.
func lockDir(dir string) (unlock func() error, err error) {
	path := filepath.Join(dir, lockName)
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, fileMode)
		if err == nil {
			if err := f.Close(); err != nil {
				return nil, fmt.Errorf("keys: lock key directory: %w", err)
			}
			return func() error {
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("keys: unlock key directory: remove %s: %w", path, err)
				}
				return nil
			}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("keys: lock key directory: %w", err)
		}
		info, err := os.Stat(path)
		if err == nil && time.Since(info.ModTime()) < lockStale {
			return nil, fmt.Errorf("%w in %s (lock file %s): try again in a moment; remove the file if no process is", errBusy, dir, path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("keys: remove stale lock file: %w", err)
		}
	}
	return nil, fmt.Errorf("%w in %s (lock file %s): try again in a moment", errBusy, dir, path)
}
