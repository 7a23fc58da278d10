package keys

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Names of key files: signing-key-<created>[-anything].pem, created in UTC.
// The time sorts as text too, so "ls" shows keys oldest first.
const (
	filePrefix     = "signing-key-"
	fileSuffix     = ".pem"
	fileTimeLayout = "20060102T150405Z"
)

// Modes: the key directory and key files are the owner's alone.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// LoadOrCreate loads every signing key in dir, creating dir (mode 0700) if
// missing. If dir holds no key, it generates an RSA-2048 key and writes it
// there (PKCS#8 PEM, mode 0600, via a temporary file renamed into place, so
// that a crash never leaves half a key). Later starts load the same key, so
// the kid stays the same and tokens issued before a restart verify after it.
// A directory that holds a key is only read: it may be read-only (a
// Kubernetes Secret volume).
//
// A key file is a *.pem file in dir whose name does not start with ".". It is
// refused, with an error naming it and the fix, if it is readable or writable
// by anyone but its owner (chmod 600), if it is not a PEM RSA private key of
// at least 2048 bits (PKCS#8, or PKCS#1 "RSA PRIVATE KEY"), or if its name
// does not carry its creation time. Other files are ignored. (A Keyring
// reads ES256 and EdDSA keys too, when they are among its algorithms.)
func LoadOrCreate(dir string) (*Set, error) {
	if dir == "" {
		return nil, errors.New("keys: key directory is empty: set a directory for signing keys")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("keys: create key directory: %w", err)
	}
	keys, err := loadDir(dir, defaultAlgs)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		k, err := generate(jose.RS256, time.Now())
		if err != nil {
			return nil, err
		}
		if k.file, err = writeKeyFile(dir, k); err != nil {
			return nil, fmt.Errorf("%w: the directory holds no key and a new one cannot be written there: make it writable, or put a key file in it", err)
		}
		keys = append(keys, k)
	}
	return newSet(keys)
}

// defaultAlgs is what a key directory holds when nobody configured more.
var defaultAlgs = []jose.SignatureAlgorithm{jose.RS256}

// AddKey generates a new RSA signing key and writes it to dir (which must
// exist): the first step of a rotation. Running servers publish it after
// their next start; with Staged it signs only once it has been published
// long enough. It returns the new key's kid and file. (Rotate does this for
// a Keyring's algorithms, and a running Keyring picks the key up itself.)
func AddKey(dir string) (kid, file string, err error) {
	if _, err := os.Stat(dir); err != nil {
		return "", "", fmt.Errorf("keys: key directory: %w", err)
	}
	existing, err := loadDir(dir, defaultAlgs)
	if err != nil {
		return "", "", err // refuse to add to a directory the server would refuse
	}
	k, err := generate(jose.RS256, nextCreated(time.Now(), existing))
	if err != nil {
		return "", "", err
	}
	if k.file, err = writeKeyFile(dir, k); err != nil {
		return "", "", err
	}
	return k.kid, k.file, nil
}

// nextCreated is the creation time of a key added at now: file names carry
// whole seconds, so it is now rounded up (a key is never dated before it
// existed, so it is published for at least its whole wait), and strictly
// after every existing key, or replicas could disagree on which key is
// which.
func nextCreated(now time.Time, existing []*signingKey) time.Time {
	created := now.Truncate(time.Second)
	if created.Before(now) {
		created = created.Add(time.Second)
	}
	for _, k := range existing {
		if !created.After(k.created) {
			created = k.created.Truncate(time.Second).Add(time.Second)
		}
	}
	return created.UTC()
}

// loadDir reads every key file in dir. A key of an algorithm not in algs is
// refused: the file was put there for a configuration other than this one.
func loadDir(dir string, algs []jose.SignatureAlgorithm) ([]*signingKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("keys: read key directory: %w", err)
	}
	var keys []*signingKey
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, fileSuffix) {
			continue // temporary files, Kubernetes' ..data links, other files
		}
		k, err := loadKeyFile(filepath.Join(dir, name), algs)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// loadKeyFile reads and checks one key file. Every error names the file.
func loadKeyFile(path string, algs []jose.SignatureAlgorithm) (*signingKey, error) {
	created, err := createdFromName(filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w", path, err)
	}
	// Stat follows symbolic links (Kubernetes mounts secrets as links): the
	// mode that matters is the one of the file the key is read from.
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("keys: %s is not a regular file: remove it or rename it so it does not end in %s", path, fileSuffix)
	}
	if perm := info.Mode().Perm(); perm&^fileMode != 0 {
		return nil, fmt.Errorf("keys: %s has mode %04o, open to more than its owner's reading and writing: run chmod 600 %s (for a Kubernetes Secret volume, set defaultMode: 0400)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	priv, alg, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w: replace or remove the file (a new key is generated when the directory holds none)", path, err)
	}
	if !slices.Contains(algs, alg) {
		return nil, fmt.Errorf("keys: %s: key is %s (%s), want %s (the signing algorithms are %s): remove the file, or add %s to the signing algorithms",
			path, keyKind(alg), alg, wantKinds(algs), algNames(algs), alg)
	}
	return newSigningKey(priv, created, path)
}

// wantKinds names the kinds of key algs need: "an RSA key or an Ed25519 key".
func wantKinds(algs []jose.SignatureAlgorithm) string {
	kinds := make([]string, len(algs))
	for i, a := range algs {
		kinds[i] = keyKind(a)
	}
	return strings.Join(kinds, " or ")
}

// createdFromName reads the creation time out of a key file's name.
func createdFromName(name string) (time.Time, error) {
	rest, ok := strings.CutPrefix(name, filePrefix)
	rest = strings.TrimSuffix(rest, fileSuffix)
	if ok && len(rest) >= len(fileTimeLayout) {
		stamp, tail := rest[:len(fileTimeLayout)], rest[len(fileTimeLayout):]
		if t, err := time.Parse(fileTimeLayout, stamp); err == nil && (tail == "" || tail[0] == '-') {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("the name does not say when the key was created (the newest key signs): rename it to %s<UTC time as %s>%s, e.g. %s%s%s",
		filePrefix, fileTimeLayout, fileSuffix, filePrefix, time.Now().UTC().Format(fileTimeLayout), fileSuffix)
}

// writeKeyFile writes k to dir atomically: a temporary file (created 0600,
// invisible to loadDir because its name starts with "."), synced, then
// renamed into place, and the directory synced so the rename survives a
// crash. It returns the file's path.
func writeKeyFile(dir string, k *signingKey) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return "", fmt.Errorf("keys: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	// The kid in the name keeps names unique when two keys share a second.
	name := filePrefix + k.created.UTC().Format(fileTimeLayout) + "-" + k.kid[:8] + fileSuffix
	path := filepath.Join(dir, name)

	tmp, err := os.CreateTemp(dir, "."+filePrefix+"*.tmp")
	if err != nil {
		return "", fmt.Errorf("keys: write key to %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(fileMode); err != nil {
		tmp.Close()
		return "", fmt.Errorf("keys: write key to %s: %w", dir, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return "", fmt.Errorf("keys: write key to %s: %w", dir, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("keys: write key to %s: %w", dir, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("keys: write key to %s: %w", dir, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("keys: write key to %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return path, nil
}
