package loadtest

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
)

// Rates are this machine's signing rates, in signatures per second on
// every core at once, with the provider's own signing code (package keys,
// go-jose) and a new key: RSA-2048 for RS256, P-256 for ES256.
type Rates struct {
	CPUs  int
	RS256 float64
	ES256 float64
	// RS256CPU and ES256CPU are the CPU time of one signature (0 when it
	// could not be measured): unlike the rates, other load on the machine
	// barely changes them.
	RS256CPU, ES256CPU time.Duration
}

// idTokenPayload is an ID token's claims as the provider signs them for a
// sign-in with scope openid profile.
var idTokenPayload = []byte(`{"at_hash":"q1yDhbiiGfnuHrXi7DMv6A","aud":"demo","auth_time":1767225600,"azp":"demo",` +
	`"exp":1767229200,"iat":1767225600,"iss":"http://127.0.0.1:8080","name":"压测用户 00001",` +
	`"nonce":"6nRo3Ob6cTyQZqv1tYgXyVJzrM2bK0ZxvP4aU8hT5sE","picture":"http://127.0.0.1:8080/wechat-sim/_sim/avatar/load00001/132",` +
	`"preferred_username":"压测用户 00001","sid":"Zb8Wq3nR5tY7uI9oP1aS2d","sub":"oAbCdEfGhIjKlMnOpQrStUvWxYz0"}`)

// SigningRates measures RS256 and ES256 signatures per second, each for d,
// on runtime.NumCPU() goroutines.
func SigningRates(ctx context.Context, d time.Duration) (Rates, error) {
	r := Rates{CPUs: runtime.NumCPU()}
	var err error
	if r.RS256, r.RS256CPU, err = signingRate(ctx, keys.RS256, d, r.CPUs); err != nil {
		return r, err
	}
	if r.ES256, r.ES256CPU, err = signingRate(ctx, keys.ES256, d, r.CPUs); err != nil {
		return r, err
	}
	return r, nil
}

// signingRate returns signatures per second with alg on goroutines for d,
// and the CPU time of one (0 if it could not be read).
func signingRate(ctx context.Context, alg string, d time.Duration, goroutines int) (float64, time.Duration, error) {
	set, err := keys.NewEphemeralAlgorithm(alg)
	if err != nil {
		return 0, 0, err
	}
	// One signature first: the signer is built before the clock starts.
	if _, err := set.Sign(idTokenPayload); err != nil {
		return 0, 0, fmt.Errorf("loadtest: sign with %s: %w", alg, err)
	}
	cpu0, cpuErr := selfCPU()
	counts := make([]int, goroutines)
	errs := make([]error, goroutines)
	start := time.Now()
	end := start.Add(d)
	var wg sync.WaitGroup
	for i := range goroutines {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(end) {
				if _, err := set.Sign(idTokenPayload); err != nil {
					errs[i] = err
					return
				}
				counts[i]++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, cpuErr2 := selfCPU()
	total := 0
	for i, n := range counts {
		if errs[i] != nil {
			return 0, 0, fmt.Errorf("loadtest: sign with %s: %w", alg, errs[i])
		}
		total += n
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("loadtest: no %s signature in %s", alg, d)
	}
	var perSig time.Duration
	if cpuErr == nil && cpuErr2 == nil {
		perSig = (cpu1 - cpu0) / time.Duration(total)
	}
	return float64(total) / elapsed.Seconds(), perSig, nil
}

// meanRates is the average of measurements.
func meanRates(rs []Rates) Rates {
	var m Rates
	for _, r := range rs {
		m.CPUs = r.CPUs
		m.RS256 += r.RS256 / float64(len(rs))
		m.ES256 += r.ES256 / float64(len(rs))
		m.RS256CPU += r.RS256CPU / time.Duration(len(rs))
		m.ES256CPU += r.ES256CPU / time.Duration(len(rs))
	}
	return m
}
