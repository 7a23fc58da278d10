package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// DefaultRefresh is how often a Keyring reloads its keys when Options.Refresh
// is zero.
const DefaultRefresh = time.Minute

// Options say how a Keyring signs and rotates.
type Options struct {
	// Algorithms are the algorithms to sign with, the default first (the one
	// Sign uses); the others are for clients registered with another
	// id_token_signed_response_alg. Empty means RS256 alone.
	Algorithms []string

	// PublishBeforeUse is how long a new key is published before it signs,
	// so that every replica and every relying party's JWKS cache knows it
	// first. Required.
	PublishBeforeUse time.Duration

	// RotateEvery is how long a key signs before its successor takes over;
	// 0 turns automatic rotation off (keys change only with Rotate). It must
	// be longer than PublishBeforeUse.
	RotateEvery time.Duration

	// RetainAfterRetire is how long a key stays published after it stopped
	// signing: at least the longest lifetime of a token it signed (the
	// caller's max(id_token_ttl, access token ttl, ...)). Then it is removed.
	RetainAfterRetire time.Duration

	// Refresh is how often Run reloads the keys, so that every replica
	// publishes a key another one added; DefaultRefresh when 0. It must be
	// shorter than PublishBeforeUse, or a replica could see a key sign
	// elsewhere before it publishes it.
	Refresh time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Logger receives rotations and reload errors; nil discards them.
	Logger *slog.Logger
}

// policy is Options checked and with defaults filled in.
type policy struct {
	algs             []jose.SignatureAlgorithm
	publishBeforeUse time.Duration
	rotateEvery      time.Duration
	retain           time.Duration
	refresh          time.Duration
	now              func() time.Time
	log              *slog.Logger
}

// policy checks o. Messages name the option as configured under keys.
func (o Options) policy() (*policy, error) {
	p := &policy{
		publishBeforeUse: o.PublishBeforeUse,
		rotateEvery:      o.RotateEvery,
		retain:           o.RetainAfterRetire,
		refresh:          o.Refresh,
		now:              o.Now,
		log:              o.Logger,
	}
	names := o.Algorithms
	if len(names) == 0 {
		names = []string{RS256}
	}
	for _, n := range names {
		a, err := parseAlgorithm(n)
		if err != nil {
			return nil, err
		}
		if slices.Contains(p.algs, a) {
			return nil, fmt.Errorf("keys: signing algorithm %s is listed twice: list each once, the default first", a)
		}
		p.algs = append(p.algs, a)
	}
	if p.refresh == 0 {
		p.refresh = DefaultRefresh
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case p.publishBeforeUse <= 0:
		return nil, fmt.Errorf("keys: publish_before_use must be positive (got %s): set how long a new key is published before it signs, e.g. 24h", p.publishBeforeUse)
	case p.refresh < 0:
		return nil, fmt.Errorf("keys: refresh must be positive (got %s)", p.refresh)
	case p.refresh >= p.publishBeforeUse:
		return nil, fmt.Errorf("keys: refresh (%s) must be shorter than publish_before_use (%s), or a replica could sign with a key the others do not publish yet: lower refresh or raise publish_before_use", p.refresh, p.publishBeforeUse)
	case p.rotateEvery < 0:
		return nil, fmt.Errorf("keys: rotate_every must not be negative (got %s): use 0 to rotate only by hand", p.rotateEvery)
	case p.rotateEvery > 0 && p.rotateEvery <= p.publishBeforeUse:
		return nil, fmt.Errorf("keys: rotate_every (%s) must be longer than publish_before_use (%s): a key must sign before its successor is published", p.rotateEvery, p.publishBeforeUse)
	case p.retain < 0:
		return nil, fmt.Errorf("keys: retain_after_retire must not be negative (got %s): use the longest token lifetime", p.retain)
	}
	return p, nil
}

// Source is where a Keyring's keys live: a key directory (NewDirSource) or
// the shared store (NewStoreSource). Only this package implements it.
type Source interface {
	// String names the source in messages: "key directory /x".
	String() string

	// load returns every key, each with its schedule.
	load(ctx context.Context, p *policy) ([]*signingKey, error)

	// writable returns why keys cannot be added or removed, or nil.
	writable(ctx context.Context) error

	// change applies what decide returns for the current keys, atomically
	// with respect to every other change of the same keys, by any replica;
	// it returns what it applied. decide may be called more than once; it
	// sees only the keys' metadata (no private keys) and must not block.
	change(ctx context.Context, p *policy, decide func(current []*signingKey) changes) (changes, error)

	// managed: nobody but a Keyring changes these keys, so a Keyring removes
	// retired keys even without automatic rotation.
	managed() bool

	// keepAlive refreshes whatever would otherwise expire.
	keepAlive(ctx context.Context, p *policy) error
}

// changes are what a plan does to the keys.
type changes struct {
	add    []*signingKey        // new keys, scheduled
	retire map[string]time.Time // kid: when it stops signing
	remove []*signingKey        // keys retired for longer than retain
}

func (c changes) empty() bool { return len(c.add) == 0 && len(c.retire) == 0 && len(c.remove) == 0 }

// inService reports whether k has not retired at t.
func inService(k *signingKey, t time.Time) bool { return k.retires.IsZero() || t.Before(k.retires) }

// plan decides what the keys need at now:
//   - a first key, signing at once, for each signing algorithm that has no
//     key in service;
//   - a successor for an algorithm whose newest key started RotateEvery
//     minus PublishBeforeUse ago (or for every signing algorithm, with
//     force: the Rotate command). It signs PublishBeforeUse from now; its
//     predecessors retire then;
//   - retirement now of the keys of an algorithm no longer configured, once
//     their rotation is overdue (a replica still running an older
//     configuration leaves newer algorithms' fresh keys alone);
//   - with removeRetired, removal of keys retired for RetainAfterRetire.
//
// New keys come from fresh (by algorithm); an algorithm that needs one that
// fresh lacks is returned in missing. plan reads only the keys' metadata.
func (p *policy) plan(cur []*signingKey, now time.Time, fresh map[jose.SignatureAlgorithm]*signingKey, force, removeRetired bool) (ch changes, missing []jose.SignatureAlgorithm) {
	ch.retire = make(map[string]time.Time)
	newest := make(map[jose.SignatureAlgorithm]*signingKey) // in service, latest start
	for _, k := range cur {
		if inService(k, now) && (newest[k.alg] == nil || k.activates.After(newest[k.alg].activates)) {
			newest[k.alg] = k
		}
	}
	for _, alg := range p.algs {
		n := newest[alg]
		var activates time.Time
		switch {
		case n == nil:
			activates = now
		case force || (p.rotateEvery > 0 && !now.Before(n.activates.Add(p.rotateEvery-p.publishBeforeUse))):
			activates = now.Add(p.publishBeforeUse)
		default:
			continue
		}
		f := fresh[alg]
		if f == nil {
			missing = append(missing, alg)
			continue
		}
		k := *f
		k.created, k.activates, k.retires, k.scheduled = now, activates, time.Time{}, true
		ch.add = append(ch.add, &k)
		for _, old := range cur {
			if old.alg == alg && inService(old, now) && (old.retires.IsZero() || old.retires.After(activates)) {
				ch.retire[old.kid] = activates
			}
		}
	}
	for alg, n := range newest {
		if slices.Contains(p.algs, alg) || p.rotateEvery == 0 || now.Before(n.activates.Add(p.rotateEvery)) {
			continue
		}
		for _, old := range cur {
			if old.alg == alg && inService(old, now) {
				ch.retire[old.kid] = now
			}
		}
	}
	if removeRetired {
		for _, k := range cur {
			if !k.retires.IsZero() && !now.Before(k.retires.Add(p.retain)) {
				ch.remove = append(ch.remove, k)
			}
		}
	}
	return ch, missing
}

// maintain brings the keys of src up to date (see plan) and returns them,
// with the keys it added. Keys are generated before the change and offered
// to it, because the change may run more than once (a compare-and-swap that
// lost is retried) and must not block; a key another replica made
// unnecessary meanwhile is dropped unused.
func maintain(ctx context.Context, src Source, p *policy, force bool) (keys, added []*signingKey, err error) {
	keys, err = src.load(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	now := p.now()
	removeRetired := src.managed() || p.rotateEvery > 0
	ch, missing := p.plan(keys, now, nil, force, removeRetired)
	if ch.empty() && len(missing) == 0 {
		return keys, nil, nil
	}
	if err := src.writable(ctx); err != nil {
		return nil, nil, cannotWrite(src, missing, keys, err)
	}
	fresh := make(map[jose.SignatureAlgorithm]*signingKey, len(missing))
	for _, alg := range missing {
		if fresh[alg], err = generate(alg, now); err != nil {
			return nil, nil, err
		}
	}
	applied, err := src.change(ctx, p, func(cur []*signingKey) changes {
		ch, _ := p.plan(cur, now, fresh, force, removeRetired)
		return ch
	})
	if errors.Is(err, errBusy) && !force {
		// Another process holds the key directory's lock: it is making
		// this change. Load what is there; the next reload sees the result.
		p.log.Info("keys: another process is changing the keys; reloading without changing them", "source", src.String())
		return keys, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, k := range applied.add {
		p.log.Info("keys: new signing key published", "source", src.String(), "kid", k.kid, "alg", string(k.alg), "signs_from", k.activates)
	}
	for kid, t := range applied.retire {
		p.log.Info("keys: signing key retires", "source", src.String(), "kid", kid, "at", t)
	}
	for _, k := range applied.remove {
		p.log.Info("keys: retired signing key removed", "source", src.String(), "kid", k.kid, "alg", string(k.alg))
	}
	if keys, err = src.load(ctx, p); err != nil {
		return nil, nil, err
	}
	return keys, applied.add, nil
}

// cannotWrite explains why a change that is due cannot be made.
func cannotWrite(src Source, missing []jose.SignatureAlgorithm, keys []*signingKey, err error) error {
	for _, a := range missing {
		if !slices.ContainsFunc(keys, func(k *signingKey) bool { return k.alg == a }) {
			return fmt.Errorf("keys: %s holds no %s key and cannot be written (%w): add %s there (PKCS#8 PEM, mode 0600), or make it writable", src, a, err, keyKind(a))
		}
	}
	return fmt.Errorf("keys: a key change is due (a rotation or a removal) but %s cannot be written (%w): make it writable, or set rotate_every to 0 and manage the keys yourself", src, err)
}

// State is where a key is in its life.
type State string

// The states of a key: published and waiting to sign; signing; no longer
// signing, still published until it is removed.
const (
	StateNext    State = "next"
	StateActive  State = "active"
	StateRetired State = "retired"
)

// Key describes one signing key, for listing. It holds no key material.
type Key struct {
	KID       string
	Algorithm string
	State     State
	Created   time.Time
	Activates time.Time // when it signs (or signed) from
	Retires   time.Time // when it stops (or stopped) signing; zero: not scheduled
	Removes   time.Time // when it is removed; zero: not scheduled
	File      string    // its file, for a key directory
}

// describe lists keys at t, newest first.
func describe(keys []*signingKey, t time.Time, retain time.Duration, removeRetired bool) []Key {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, newestFirst)
	windows := schedule(keys, 0)
	out := make([]Key, 0, len(keys))
	for _, k := range keys {
		d := Key{KID: k.kid, Algorithm: string(k.alg), Created: k.created, Activates: k.activates, Retires: k.retires, File: k.file}
		switch {
		case activeAt(keys, windows, k.alg, t) == k:
			d.State = StateActive
		case k.activates.After(t) && inService(k, t):
			d.State = StateNext
		default:
			d.State = StateRetired
		}
		if removeRetired && !k.retires.IsZero() {
			d.Removes = k.retires.Add(retain)
		}
		out = append(out, d)
	}
	return out
}

// describeAdded describes the added keys among keys.
func describeAdded(keys, added []*signingKey, p *policy, src Source) []Key {
	var out []Key
	for _, d := range describe(keys, p.now(), p.retain, src.managed() || p.rotateEvery > 0) {
		if containsKID(added, d.KID) {
			out = append(out, d)
		}
	}
	return out
}

// List describes the keys in src at o.Now(), newest first, without changing
// them: what `keys list` shows.
func List(ctx context.Context, src Source, o Options) ([]Key, error) {
	p, err := o.policy()
	if err != nil {
		return nil, err
	}
	keys, err := src.load(ctx, p)
	if err != nil {
		return nil, err
	}
	return describe(keys, p.now(), p.retain, src.managed() || p.rotateEvery > 0), nil
}

// Rotate adds a next key to src for each of o's algorithms: published now,
// it signs PublishBeforeUse from now, when the key it succeeds retires. It
// returns the new keys. Running Keyrings publish them at their next reload.
func Rotate(ctx context.Context, src Source, o Options) ([]Key, error) {
	p, err := o.policy()
	if err != nil {
		return nil, err
	}
	if err := src.writable(ctx); err != nil {
		return nil, fmt.Errorf("keys: cannot rotate: %s cannot be written (%w): make it writable, or add the key there yourself", src, err)
	}
	keys, added, err := maintain(ctx, src, p, true)
	if err != nil {
		return nil, err
	}
	if len(added) == 0 {
		return nil, errors.New("keys: rotate: another process changed the keys at the same moment: run it again")
	}
	return describeAdded(keys, added, p, src), nil
}

// Keyring holds the current Set of a Source and keeps it current: Reload
// (and Run, every Refresh) reads the keys again, so that every replica
// publishes a key any of them added, and performs what is due: a first key
// per algorithm, automatic rotation, removal of retired keys. Of several
// replicas that find a change due at once, exactly one makes it (the
// source's compare-and-swap, or its lock); the others load the result.
//
// Between reloads the Set does not change, and its signers stay built: a
// Keyring signs at the speed of a Set. It has the Set's methods, each using
// the current Set.
type Keyring struct {
	src Source
	p   *policy
	cur atomic.Pointer[Set]

	mu    sync.Mutex       // one reload at a time
	ticks <-chan time.Time // Run's ticker; tests set their own
}

// NewKeyring loads src and does what is due (see Keyring), so that it
// signs on return. Automatic rotation is refused for a source that cannot
// be written, such as a read-only key directory (a Kubernetes Secret
// volume): its keys are the operator's to manage.
func NewKeyring(ctx context.Context, src Source, o Options) (*Keyring, error) {
	p, err := o.policy()
	if err != nil {
		return nil, err
	}
	if p.rotateEvery > 0 {
		if err := src.writable(ctx); err != nil {
			return nil, fmt.Errorf("keys: automatic rotation (rotate_every) writes new keys, but %s cannot be written (%w): make it writable, or set rotate_every to 0 and add keys there yourself", src, err)
		}
	}
	kr := &Keyring{src: src, p: p}
	if err := kr.Reload(ctx); err != nil {
		return nil, err
	}
	return kr, nil
}

// Reload reads the keys again, does what is due, and switches to a new Set
// if the keys changed. On error the current Set stays.
func (kr *Keyring) Reload(ctx context.Context) error {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	keys, _, err := maintain(ctx, kr.src, kr.p, false)
	if err != nil {
		return err
	}
	if err := kr.install(keys); err != nil {
		return err
	}
	// Only once the keys read well: a damaged entry is left as it is.
	return kr.src.keepAlive(ctx, kr.p)
}

// install makes keys the current Set, unless they are what it holds.
func (kr *Keyring) install(keys []*signingKey) error {
	prev := kr.cur.Load()
	if prev != nil && sameKeys(prev.keys, keys) {
		return nil
	}
	for _, a := range kr.p.algs {
		if !slices.ContainsFunc(keys, func(k *signingKey) bool { return k.alg == a }) {
			return fmt.Errorf("keys: %s holds no %s key: add %s there, or remove %s from the signing algorithms", kr.src, a, keyKind(a), a)
		}
	}
	set, err := buildSet(keys, setConfig{algs: kr.p.algs, now: kr.p.now, prev: prev})
	if err != nil {
		return fmt.Errorf("keys: %s: %w", kr.src, err)
	}
	kr.cur.Store(set)
	return nil
}

// sameKeys reports whether a and b are the same keys with the same schedule.
func sameKeys(a, b []*signingKey) bool {
	if len(a) != len(b) {
		return false
	}
	b = slices.Clone(b)
	slices.SortFunc(b, newestFirst)
	for i := range a {
		x, y := a[i], b[i]
		if x.kid != y.kid || x.alg != y.alg || x.file != y.file || !x.created.Equal(y.created) ||
			!x.activates.Equal(y.activates) || !x.retires.Equal(y.retires) {
			return false
		}
	}
	return true
}

// Run reloads every Refresh until ctx ends. A failed reload is logged and
// the current Set kept: tokens are still signed, and the next reload tries
// again.
func (kr *Keyring) Run(ctx context.Context) {
	ticks := kr.ticks
	if ticks == nil {
		t := time.NewTicker(kr.p.refresh)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			if err := kr.Reload(ctx); err != nil && ctx.Err() == nil {
				kr.p.log.Error("keys: reload failed; signing keys unchanged", "source", kr.src.String(), "err", err)
			}
		}
	}
}

// Rotate adds a next key for each signing algorithm (see the function
// Rotate) and switches to the new Set: the keys are published at once and
// sign PublishBeforeUse later.
func (kr *Keyring) Rotate(ctx context.Context) ([]Key, error) {
	kr.mu.Lock()
	defer kr.mu.Unlock()
	if err := kr.src.writable(ctx); err != nil {
		return nil, fmt.Errorf("keys: cannot rotate: %s cannot be written (%w): make it writable, or add the key there yourself", kr.src, err)
	}
	keys, added, err := maintain(ctx, kr.src, kr.p, true)
	if err != nil {
		return nil, err
	}
	if err := kr.install(keys); err != nil {
		return nil, err
	}
	return describeAdded(keys, added, kr.p, kr.src), nil
}

// List describes the keys as the source holds them now (see List).
func (kr *Keyring) List(ctx context.Context) ([]Key, error) {
	keys, err := kr.src.load(ctx, kr.p)
	if err != nil {
		return nil, err
	}
	return describe(keys, kr.p.now(), kr.p.retain, kr.src.managed() || kr.p.rotateEvery > 0), nil
}

// Set returns the current Set.
func (kr *Keyring) Set() *Set { return kr.cur.Load() }

// Sign is Set.Sign on the current Set.
func (kr *Keyring) Sign(payload []byte) (string, error) { return kr.Set().Sign(payload) }

// SignWithType is Set.SignWithType on the current Set.
func (kr *Keyring) SignWithType(payload []byte, typ string) (string, error) {
	return kr.Set().SignWithType(payload, typ)
}

// SignWithAlgorithm is Set.SignWithAlgorithm on the current Set.
func (kr *Keyring) SignWithAlgorithm(payload []byte, alg, typ string) (string, error) {
	return kr.Set().SignWithAlgorithm(payload, alg, typ)
}

// Verify is Set.Verify on the current Set.
func (kr *Keyring) Verify(token string) ([]byte, error) { return kr.Set().Verify(token) }

// JWKS is Set.JWKS on the current Set.
func (kr *Keyring) JWKS() jose.JSONWebKeySet { return kr.Set().JWKS() }

// KeyID is Set.KeyID on the current Set.
func (kr *Keyring) KeyID() string { return kr.Set().KeyID() }

// Algorithm is Set.Algorithm: the default algorithm.
func (kr *Keyring) Algorithm() string { return kr.Set().Algorithm() }

// Algorithms is Set.Algorithms: every algorithm the keyring signs with.
func (kr *Keyring) Algorithms() []string { return kr.Set().Algorithms() }
