package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A snapshot keeps a memory store across a graceful restart of a single
// instance: written when the process stops on SIGTERM, read back at the
// next start. It holds what the store held (SSO sessions, refresh token
// records, pending logins; tokens only as their hashes, as stored), so it
// is written mode 0600. A crash writes none: what the store held is lost.
const (
	snapshotFormat  = "wechat-oidc memory store snapshot"
	snapshotVersion = 1
	snapshotMode    = fs.FileMode(0o600)
)

type snapshotHeader struct {
	Format  string    `json:"format"`
	Version int       `json:"version"`
	Written time.Time `json:"written"`
	Entries int       `json:"entries"`
}

type snapshotEntry struct {
	Key     string `json:"k"`
	Value   []byte `json:"v"`
	Expires int64  `json:"e"` // unix nanoseconds, by the store's clock
}

// CountPrefix returns the number of live entries whose key starts with
// prefix. It walks every entry: for gauges read every few seconds, not for
// request paths.
func (m *Memory) CountPrefix(prefix string) int {
	now := m.now().UnixNano()
	n := 0
	for k, it := range m.cache.Items() {
		if e, ok := it.Object.(entry); ok && e.expires > now && strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

// WriteSnapshot writes every live entry to path, mode 0600, through a
// temporary file in the same directory that is synced and then renamed
// into place: a crash while writing leaves the previous file or none,
// never half a snapshot. It returns how many entries it wrote. Call it
// once nothing writes to the store any more.
func (m *Memory) WriteSnapshot(path string) (n int, err error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(snapshotMode); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	now := m.now()
	var entries []snapshotEntry
	for k, it := range m.cache.Items() {
		if e, ok := it.Object.(entry); ok && e.expires > now.UnixNano() {
			entries = append(entries, snapshotEntry{Key: k, Value: e.value, Expires: e.expires})
		}
	}
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	if err := enc.Encode(snapshotHeader{Format: snapshotFormat, Version: snapshotVersion, Written: now.UTC(), Entries: len(entries)}); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return 0, fmt.Errorf("store: snapshot: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return 0, fmt.Errorf("store: snapshot: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename's durability; best effort on file systems that refuse it
		d.Close()
	}
	return len(entries), nil
}

// LoadSnapshot reads a snapshot written by WriteSnapshot into the store,
// dropping entries that expired meanwhile, and then deletes the file: a
// snapshot is used once, so that a later crash cannot bring back entries
// changed or removed since (a refresh token rotated after the restart must
// not come back to life). A missing file is no error (nothing to restore:
// a first start, or a crash). It returns how many entries it restored and
// how many had expired. On error nothing is restored and the file is left
// for inspection.
func (m *Memory) LoadSnapshot(path string) (restored, expired int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("store: snapshot: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, 0, fmt.Errorf("store: snapshot: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return 0, 0, fmt.Errorf("store: snapshot %s is readable or writable by others (mode %v): it holds sessions; chmod 600 it, or delete it to start empty", path, info.Mode().Perm())
	}
	dec := json.NewDecoder(bufio.NewReader(f))
	var h snapshotHeader
	if err := dec.Decode(&h); err != nil || h.Format != snapshotFormat {
		return 0, 0, fmt.Errorf("store: %s is not a memory store snapshot: delete it to start empty", path)
	}
	if h.Version != snapshotVersion {
		return 0, 0, fmt.Errorf("store: snapshot %s has version %d, this program reads %d: delete it to start empty", path, h.Version, snapshotVersion)
	}
	var entries []snapshotEntry
	for {
		var e snapshotEntry
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, fmt.Errorf("store: snapshot %s is damaged after %d entries (%v): delete it to start empty", path, len(entries), err)
		}
		entries = append(entries, e)
	}
	if len(entries) != h.Entries {
		return 0, 0, fmt.Errorf("store: snapshot %s holds %d entries but says %d: it is truncated; delete it to start empty", path, len(entries), h.Entries)
	}
	now := m.now()
	for _, e := range entries {
		ttl := time.Unix(0, e.Expires).Sub(now)
		if ttl <= 0 {
			expired++
			continue
		}
		unlock := m.lock(e.Key)
		m.set(e.Key, e.Value, ttl)
		unlock()
		restored++
	}
	if err := os.Remove(path); err != nil {
		return restored, expired, fmt.Errorf("store: snapshot restored, but it cannot be deleted (%w): delete %s before the next start, or a crash then would restore it again", err, path)
	}
	return restored, expired, nil
}
