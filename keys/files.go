package keys

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
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
//
// A key file is a *.pem file in dir whose name does not start with ".". It is
// refused, with an error naming it and the fix, if it is readable or writable
// by anyone but its owner (chmod 600), if it is not a PEM RSA private key of
// at least 2048 bits (PKCS#8, or PKCS#1 "RSA PRIVATE KEY"), or if its name
// does not carry its creation time. Other files are ignored.
func LoadOrCreate(dir string) (*Set, error) {
	if dir == "" {
		return nil, errors.New("keys: key directory is empty: set a directory for signing keys")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("keys: create key directory: %w", err)
	}
	keys, err := loadDir(dir)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		k, err := generate(time.Now())
		if err != nil {
			return nil, err
		}
		if k.file, err = writeKeyFile(dir, k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return newSet(keys)
}

// AddKey generates a new signing key and writes it to dir (which must
// exist): the first step of a rotation. Running servers publish it after
// their next start; with Staged it signs only once it has been published
// long enough. It returns the new key's kid and file.
func AddKey(dir string) (kid, file string, err error) {
	if _, err := os.Stat(dir); err != nil {
		return "", "", fmt.Errorf("keys: key directory: %w", err)
	}
	existing, err := loadDir(dir)
	if err != nil {
		return "", "", err // refuse to add to a directory the server would refuse
	}
	// File names carry whole seconds: the new key must be strictly the
	// newest, or replicas could disagree on which key is which.
	created := time.Now().Truncate(time.Second)
	for _, k := range existing {
		if !created.After(k.created) {
			created = k.created.Add(time.Second)
		}
	}
	k, err := generate(created)
	if err != nil {
		return "", "", err
	}
	if k.file, err = writeKeyFile(dir, k); err != nil {
		return "", "", err
	}
	return k.kid, k.file, nil
}

// loadDir reads every key file in dir.
func loadDir(dir string) ([]*signingKey, error) {
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
		k, err := loadKeyFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// loadKeyFile reads and checks one key file. Every error names the file.
func loadKeyFile(path string) (*signingKey, error) {
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
		return nil, fmt.Errorf("keys: %s has mode %04o, open to more than its owner's reading and writing: run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	priv, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("keys: %s: %w: replace or remove the file (a new key is generated when the directory holds none)", path, err)
	}
	return newSigningKey(priv, created, path)
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

// parsePrivateKey parses one PEM block holding an RSA private key of at
// least rsaBits bits.
func parsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("more than one PEM block: keep one key per file")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want an RSA key (ID tokens are signed with RS256)", key)
	}
	if bits := priv.N.BitLen(); bits < rsaBits {
		return nil, fmt.Errorf("RSA key has %d bits, want at least %d", bits, rsaBits)
	}
	if err := priv.Validate(); err != nil {
		return nil, fmt.Errorf("invalid RSA key: %w", err)
	}
	return priv, nil
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
