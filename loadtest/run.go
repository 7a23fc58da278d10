package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// Config is one load run against one provider.
type Config struct {
	// Issuer is the provider's issuer URL (its discovery document is read).
	Issuer string
	// ClientID and ClientSecret are a registered confidential client's.
	ClientID, ClientSecret string
	// RedirectURI is the client's registered redirect_uri; "" means
	// Issuer + "/demo/callback" (dev mode's demo client). The browser stops
	// at the redirect to it.
	RedirectURI string
	// Scopes requested; nil means openid profile.
	Scopes []string
	// Concurrency is how many sign-ins run at once (default 8).
	Concurrency int
	// Duration is how long sign-ins are counted (default 10s), after
	// Warmup (default 2s), whose sign-ins are not counted.
	Duration, Warmup time.Duration
	// Users: the sign-ins go round the simulator's load users 1..Users
	// (simulator.LoadUsers; dev mode --bench has dev.BenchUsers), each named
	// in the approve header. 0 sends no header.
	Users int
	// UserAgent of the browser; "" means WeChat's in-app browser.
	UserAgent string
	// Timeout bounds each HTTP request (default 10s).
	Timeout time.Duration
	// PIDs are other processes whose CPU time the sign-ins cost: the
	// provider (with its simulator), Redis. Their CPU time in the window,
	// with this process's, gives the CPU time per sign-in, which other
	// load on the machine barely changes (Linux only).
	PIDs []int
}

func (c Config) withDefaults() (Config, error) {
	if c.Issuer == "" {
		return c, errors.New("loadtest: the issuer is required (--issuer URL)")
	}
	if _, err := url.Parse(c.Issuer); err != nil {
		return c, fmt.Errorf("loadtest: --issuer: %w", err)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return c, errors.New("loadtest: a client id and secret are required (--client-id, and --client-secret-file as written by `wechat-oidc dev --demo-secret-file`)")
	}
	if c.RedirectURI == "" {
		c.RedirectURI = c.Issuer + "/demo/callback"
	}
	if c.Scopes == nil {
		c.Scopes = []string{"openid", "profile"}
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.UserAgent == "" {
		c.UserAgent = UserAgentWeChat
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	switch {
	case c.Concurrency < 1:
		return c, fmt.Errorf("loadtest: --concurrency must be at least 1 (got %d)", c.Concurrency)
	case c.Duration < 0 || c.Warmup < 0:
		return c, errors.New("loadtest: --duration and --warmup must not be negative")
	case c.Users < 0:
		return c, fmt.Errorf("loadtest: --users must not be negative (got %d)", c.Users)
	}
	return c, nil
}

// Result is what one or more runs against one provider measured.
type Result struct {
	Issuer      string
	Algorithm   string // the ID tokens' alg
	Concurrency int
	// Window is the time sign-ins were counted in (the sum over rounds).
	Window time.Duration
	// Logins is how many sign-ins completed in the window without error.
	Logins int
	// Rounds are the sign-ins per second of each round, in order.
	Rounds []float64
	// Errors counts failed sign-ins in the window by kind ("step: reason");
	// Details holds the first detail of each kind.
	Errors  map[string]int
	Details map[string]string
	// WarmupErrors counts failures during the warm-up (not in Errors).
	WarmupErrors int
	// BenchCPU and ServerCPU are the CPU time this process and Config.PIDs
	// used in the window, for Completed sign-ins (with or without error);
	// CPUErr says why they were not measured.
	BenchCPU, ServerCPU time.Duration
	Completed           int
	CPUErr              error

	latencies []time.Duration
	steps     map[string][]time.Duration
	stepOrder []string
}

// PerSecond is the sign-ins per second over the window.
func (r *Result) PerSecond() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Logins) / r.Window.Seconds()
}

// ErrorCount is the number of failed sign-ins in the window.
func (r *Result) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// CPUPerLogin is the CPU time per completed sign-in, of this process and
// of the processes of Config.PIDs (0 when not measured).
func (r *Result) CPUPerLogin() (bench, server time.Duration) {
	if r.Completed == 0 || r.CPUErr != nil {
		return 0, 0
	}
	return r.BenchCPU / time.Duration(r.Completed), r.ServerCPU / time.Duration(r.Completed)
}

// Latency returns the whole sign-in's latency percentiles.
func (r *Result) Latency() Percentiles { return percentiles(r.latencies) }

// stepVerify is the one step that is not an HTTP request: the bench checks
// the ID token's signature itself.
const stepVerify = "verify ID token"

// Requests returns the latency percentiles of every HTTP request of every
// sign-in (each step but the local ID token check), the provider's and
// the simulated WeChat's alike: what one request waits for, where Latency
// is what a person waits for (several requests in a row).
func (r *Result) Requests() Percentiles {
	var all []time.Duration
	for name, d := range r.steps {
		if name != stepVerify {
			all = append(all, d...)
		}
	}
	return percentiles(all)
}

// StepLatency is one step's latency percentiles.
type StepLatency struct {
	Step string
	Percentiles
}

// Steps returns each step's latency percentiles, in the order of a sign-in.
func (r *Result) Steps() []StepLatency {
	out := make([]StepLatency, 0, len(r.stepOrder))
	for _, s := range r.stepOrder {
		out = append(out, StepLatency{s, percentiles(r.steps[s])})
	}
	return out
}

// Percentiles of a latency distribution (nearest rank).
type Percentiles struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		// Nearest rank: the smallest value with at least p of the values
		// at or below it.
		i := int(p*float64(len(s))+0.999999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return Percentiles{N: len(s), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: s[len(s)-1]}
}

// merge adds o (a later round against the same provider) to r.
func (r *Result) merge(o *Result) {
	r.Window += o.Window
	r.Logins += o.Logins
	r.Rounds = append(r.Rounds, o.Rounds...)
	r.WarmupErrors += o.WarmupErrors
	r.BenchCPU += o.BenchCPU
	r.ServerCPU += o.ServerCPU
	r.Completed += o.Completed
	if r.CPUErr == nil {
		r.CPUErr = o.CPUErr
	}
	r.latencies = append(r.latencies, o.latencies...)
	if r.Algorithm == "" {
		r.Algorithm = o.Algorithm
	}
	for k, n := range o.Errors {
		r.Errors[k] += n
		if _, ok := r.Details[k]; !ok {
			r.Details[k] = o.Details[k]
		}
	}
	for _, s := range o.stepOrder {
		if _, ok := r.steps[s]; !ok {
			r.stepOrder = append(r.stepOrder, s)
		}
		r.steps[s] = append(r.steps[s], o.steps[s]...)
	}
}

func newResult(issuer string, concurrency int) *Result {
	return &Result{Issuer: issuer, Concurrency: concurrency, Errors: map[string]int{}, Details: map[string]string{}, steps: map[string][]time.Duration{}}
}

// newTransport is the connection pool of a run: keep-alive connections, as
// browsers and relying parties keep them, enough for every worker.
func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy:               nil, // loopback: never through a proxy from the environment
		MaxIdleConns:        4 * concurrency,
		MaxIdleConnsPerHost: 4 * concurrency,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// Run signs in for cfg.Warmup + cfg.Duration with cfg.Concurrency sign-ins
// at once and counts those that complete after the warm-up. An error means
// the run could not start (bad configuration, discovery failed); failed
// sign-ins are counted in the Result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	transport := newTransport(cfg.Concurrency)
	defer transport.CloseIdleConnections()
	t, err := discover(ctx, &cfg, transport)
	if err != nil {
		return nil, err
	}
	return t.run(ctx, cfg), nil
}

// worker is one sign-in loop's own tallies, merged at the end, so that the
// loops share nothing while they run.
type worker struct {
	res *Result
}

func (t *target) run(ctx context.Context, cfg Config) *Result {
	start := time.Now()
	warmEnd := start.Add(cfg.Warmup)
	end := warmEnd.Add(cfg.Duration)
	var next atomic.Uint64
	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	cpu := make(chan cpuWindow, 1)
	go func() { cpu <- measureCPU(ctx, warmEnd, end, cfg.PIDs) }()
	for i := range workers {
		w := &worker{res: newResult(cfg.Issuer, cfg.Concurrency)}
		workers[i] = w
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				user := ""
				if cfg.Users > 0 {
					user = simulator.LoadUserKey(int((next.Add(1)-1)%uint64(cfg.Users)) + 1)
				}
				began := time.Now()
				s, f := t.signIn(ctx, user)
				done := time.Now()
				w.record(began, done, warmEnd, end, s, f)
			}
		})
	}
	wg.Wait()
	res := newResult(cfg.Issuer, cfg.Concurrency)
	for _, w := range workers {
		res.merge(w.res)
	}
	res.Window = cfg.Duration
	res.Rounds = []float64{res.PerSecond()}
	w := <-cpu
	res.BenchCPU, res.ServerCPU, res.CPUErr = w.self, w.others, w.err
	res.Completed = res.Logins + res.ErrorCount()
	return res
}

// cpuWindow is the CPU time used between two instants.
type cpuWindow struct {
	self, others time.Duration
	err          error
}

// cpuNow is the CPU time used so far by this process and by pids.
func cpuNow(pids []int) (self, others time.Duration, err error) {
	if self, err = selfCPU(); err != nil {
		return 0, 0, err
	}
	for _, pid := range pids {
		d, err := processCPU(pid)
		if err != nil {
			return 0, 0, err
		}
		others += d
	}
	return self, others, nil
}

// measureCPU returns the CPU time used from `from` to `to`.
func measureCPU(ctx context.Context, from, to time.Time, pids []int) cpuWindow {
	wait := func(t time.Time) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(t)):
			return nil
		}
	}
	if err := wait(from); err != nil {
		return cpuWindow{err: err}
	}
	s0, o0, err := cpuNow(pids)
	if err != nil {
		return cpuWindow{err: err}
	}
	if err := wait(to); err != nil {
		return cpuWindow{err: err}
	}
	s1, o1, err := cpuNow(pids)
	if err != nil {
		return cpuWindow{err: err}
	}
	return cpuWindow{self: s1 - s0, others: o1 - o0}
}

// record counts one sign-in that ended at done: in the window [warmEnd,
// end] it counts; before, only a failure is noted; after, nothing.
func (w *worker) record(began, done, warmEnd, end time.Time, s *signIn, f *failure) {
	r := w.res
	switch {
	case done.After(end):
		return
	case done.Before(warmEnd):
		if f != nil {
			r.WarmupErrors++
		}
		return
	case f != nil:
		r.Errors[f.kind]++
		if _, ok := r.Details[f.kind]; !ok {
			r.Details[f.kind] = f.detail
		}
		return
	}
	r.Logins++
	r.latencies = append(r.latencies, done.Sub(began))
	if r.Algorithm == "" {
		r.Algorithm = s.alg
	}
	for _, st := range s.steps {
		if _, ok := r.steps[st.name]; !ok {
			r.stepOrder = append(r.stepOrder, st.name)
		}
		r.steps[st.name] = append(r.steps[st.name], st.d)
	}
}
