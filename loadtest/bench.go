package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Plan is a whole `wechat-oidc bench` run: Rounds rounds, each the signing
// rates then every issuer in turn (interleaved, so that a change in the
// machine's other load touches each alike), and the signing rates once more
// at the end.
type Plan struct {
	// Config applies to every issuer; its Issuer is ignored.
	Config
	// Issuers are the providers to compare; the first is the reference of
	// the ratios.
	Issuers []string
	// Rounds per issuer (default 1).
	Rounds int
	// SignFor is how long each signing rate is measured, before each round
	// and after the last (about a second is enough); 0 skips it.
	SignFor time.Duration
}

// Report is what a Plan measured.
type Report struct {
	Results []*Result // one per issuer, in the Plan's order
	// Signing is the mean of SigningSamples: the rates measured before
	// each round and after the last, so that a change in the machine's
	// other load during the run touches the signing rates as it touches
	// the sign-ins.
	Signing        Rates
	SigningSamples []Rates
	signed         bool
}

// Bench runs plan, writing progress lines to progress.
func Bench(ctx context.Context, plan Plan, progress io.Writer) (*Report, error) {
	if len(plan.Issuers) == 0 {
		return nil, errors.New("loadtest: no issuer: give --issuer URL (repeat it to compare providers)")
	}
	if plan.Rounds == 0 {
		plan.Rounds = 1
	}
	if plan.Rounds < 0 {
		return nil, fmt.Errorf("loadtest: --rounds must be at least 1 (got %d)", plan.Rounds)
	}
	rep := &Report{}
	targets := make([]*target, len(plan.Issuers))
	cfgs := make([]Config, len(plan.Issuers))
	transport := newTransport(max(plan.Concurrency, 8))
	defer transport.CloseIdleConnections()
	for i, iss := range plan.Issuers {
		cfg := plan.Config
		cfg.Issuer = iss
		var err error
		if cfgs[i], err = cfg.withDefaults(); err != nil {
			return nil, err
		}
		if targets[i], err = discover(ctx, &cfgs[i], transport); err != nil {
			return nil, err
		}
		rep.Results = append(rep.Results, newResult(iss, cfgs[i].Concurrency))
	}
	sign := func() error {
		if plan.SignFor <= 0 {
			return nil
		}
		fmt.Fprintf(progress, "measuring signing rates (%s per algorithm)…\n", plan.SignFor)
		r, err := SigningRates(ctx, plan.SignFor)
		if err != nil {
			return err
		}
		rep.SigningSamples = append(rep.SigningSamples, r)
		return nil
	}
	for round := 1; round <= plan.Rounds; round++ {
		if err := sign(); err != nil {
			return nil, err
		}
		for i, t := range targets {
			fmt.Fprintf(progress, "round %d/%d: %s, %d concurrent, %s warm-up + %s…\n", round, plan.Rounds, t.issuer, cfgs[i].Concurrency, cfgs[i].Warmup, cfgs[i].Duration)
			r := t.run(ctx, cfgs[i])
			fmt.Fprintf(progress, "  %.1f sign-ins/s, %d errors\n", r.PerSecond(), r.ErrorCount())
			rep.Results[i].merge(r)
			if err := ctx.Err(); err != nil {
				return rep, err
			}
		}
	}
	if err := sign(); err != nil {
		return nil, err
	}
	if len(rep.SigningSamples) > 0 {
		rep.Signing = meanRates(rep.SigningSamples)
		rep.signed = true
	}
	return rep, nil
}

// Ratio is sign-ins per second ÷ RS256 signatures per second (0 when the
// signing rate was not measured).
func (rep *Report) Ratio(r *Result) float64 {
	if !rep.signed || rep.Signing.RS256 == 0 {
		return 0
	}
	return r.PerSecond() / rep.Signing.RS256
}

// CPURatio is the CPU time of an RS256 signature ÷ the CPU time of a
// sign-in (bench and listed processes): what Ratio would be on an otherwise
// idle machine whose every core the sign-ins keep busy (0 when unmeasured).
func (rep *Report) CPURatio(r *Result) float64 {
	bench, server := r.CPUPerLogin()
	if !rep.signed || bench+server == 0 {
		return 0
	}
	return float64(rep.Signing.RS256CPU) / float64(bench+server)
}

// Write prints the report.
func (rep *Report) Write(w io.Writer) {
	for i, r := range rep.Results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		alg := r.Algorithm
		if alg == "" {
			alg = "?"
		}
		fmt.Fprintf(w, "%s (ID tokens %s), %d concurrent sign-ins, counted for %s\n", r.Issuer, alg, r.Concurrency, r.Window.Round(time.Millisecond))
		rounds := make([]string, len(r.Rounds))
		for j, x := range r.Rounds {
			rounds[j] = fmt.Sprintf("%.1f", x)
		}
		fmt.Fprintf(w, "  sign-ins      %d, %.1f/s", r.Logins, r.PerSecond())
		if len(r.Rounds) > 1 {
			fmt.Fprintf(w, " (rounds: %s)", strings.Join(rounds, ", "))
		}
		fmt.Fprintln(w)
		l := r.Latency()
		fmt.Fprintf(w, "  latency       p50 %s  p90 %s  p99 %s  max %s (whole sign-in)\n", ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max))
		q := r.Requests()
		fmt.Fprintf(w, "  requests      p50 %s  p90 %s  p99 %s  max %s (each HTTP request, %d)\n", ms(q.P50), ms(q.P90), ms(q.P99), ms(q.Max), q.N)
		if rep.signed {
			fmt.Fprintf(w, "  ratio         %.3f sign-ins/s ÷ RS256 signatures/s\n", rep.Ratio(r))
		}
		if bench, server := r.CPUPerLogin(); bench > 0 {
			fmt.Fprintf(w, "  CPU/sign-in   %s (bench %s + listed processes %s)", ms(bench+server), ms(bench), ms(server))
			if rep.signed && rep.Signing.RS256CPU > 0 {
				fmt.Fprintf(w, "; CPU ratio %.3f (RS256 signature CPU ÷ sign-in CPU)", rep.CPURatio(r))
			}
			fmt.Fprintln(w)
		} else if r.CPUErr != nil {
			fmt.Fprintf(w, "  CPU/sign-in   not measured: %v\n", r.CPUErr)
		}
		if i > 0 && rep.Results[0].PerSecond() > 0 {
			fmt.Fprintf(w, "  vs first      %.2f× the sign-ins/s of %s\n", r.PerSecond()/rep.Results[0].PerSecond(), rep.Results[0].Issuer)
		}
		fmt.Fprintf(w, "  steps         p50 / p99\n")
		for _, s := range r.Steps() {
			fmt.Fprintf(w, "    %-38s %8s / %s\n", s.Step, ms(s.P50), ms(s.P99))
		}
		if len(r.Errors) == 0 {
			fmt.Fprintf(w, "  errors        none")
		} else {
			fmt.Fprintf(w, "  errors        %d", r.ErrorCount())
			kinds := make([]string, 0, len(r.Errors))
			for k := range r.Errors {
				kinds = append(kinds, k)
			}
			slices.SortFunc(kinds, func(a, b string) int { return r.Errors[b] - r.Errors[a] })
			for _, k := range kinds {
				fmt.Fprintf(w, "\n    %6d  %s", r.Errors[k], k)
				if d := r.Details[k]; d != "" {
					fmt.Fprintf(w, "\n            e.g. %s", d)
				}
			}
		}
		if r.WarmupErrors > 0 {
			fmt.Fprintf(w, " (and %d during the warm-up)", r.WarmupErrors)
		}
		fmt.Fprintln(w)
	}
	if rep.signed {
		fmt.Fprintf(w, "\nsigning on %d cores (mean of %d measurements, before each round and after the last): RS256 (RSA-2048) %.0f/s, ES256 %.0f/s\n",
			rep.Signing.CPUs, len(rep.SigningSamples), rep.Signing.RS256, rep.Signing.ES256)
		rs := make([]string, len(rep.SigningSamples))
		for i, r := range rep.SigningSamples {
			rs[i] = fmt.Sprintf("%.0f", r.RS256)
		}
		fmt.Fprintf(w, "  RS256 signatures/s measured: %s\n", strings.Join(rs, ", "))
		if rep.Signing.RS256CPU > 0 {
			fmt.Fprintf(w, "  CPU time of one signature: RS256 %s, ES256 %s\n", ms(rep.Signing.RS256CPU), ms(rep.Signing.ES256CPU))
		}
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
