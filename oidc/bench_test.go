package oidc

import (
	"strings"
	"testing"
)

// BenchmarkClientSecretCompare shows that checking a secret costs the same
// whether a guess is wrong in its first byte, its last byte or not at all
// (both sides are hashed, then compared in constant time). Only the length
// of the guess itself changes the cost (hashing more input), which tells an
// attacker nothing about the secret. Compare the sub-benchmarks of one run.
func BenchmarkClientSecretCompare(b *testing.B) {
	secret := strings.Repeat("s", 40)
	c := NewClient("app", secret, nil)
	guesses := map[string]string{
		"right":            secret,
		"first-byte-wrong": "x" + secret[1:],
		"last-byte-wrong":  secret[:39] + "x",
		"short":            "s",
		"long":             secret + strings.Repeat("s", 40),
	}
	for name, g := range guesses {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.checkSecret(g)
			}
		})
	}
}
