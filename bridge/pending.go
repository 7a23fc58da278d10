package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// Pending sign-ins (a leg sent upstream and not back yet, a QR code shown
// and not confirmed) are what anyone can make the bridge store without an
// account. They are bounded three ways:
//   - each stores only what finishing the sign-in needs (compactRequest);
//   - at most login.max_pending_per_ip per client network and
//     login.max_pending in total are pending at once; beyond that
//     /authorize answers 429 with Retry-After and a page;
//   - the memory store itself holds at most store.memory.max_entries.
//
// The counts live in the store, so replicas sharing Redis share them. A
// count is a small record of how many admitted sign-ins expire in each time
// bucket: admitting adds one to the bucket of its expiry, finishing (the
// upstream's callback takes the leg; the desktop takes the QR ticket)
// removes it, and a bucket whose end has passed no longer counts. An
// abandoned sign-in so stops counting when its pending login expires.

// pendingSlot is what an admitted sign-in holds, to give back when it
// finishes: its client network and the expiry bucket it was counted in.
type pendingSlot struct {
	Net    string `json:"net"`
	Bucket int64  `json:"b"`
}

// pendingCount is a count record: admitted sign-ins by expiry bucket.
type pendingCount struct {
	Buckets map[int64]int `json:"b"`
}

// errTooManyPending: a cap is reached; Retry is when a slot frees up.
type errTooManyPending struct {
	Scope string // "network" or "total"
	Retry time.Duration
}

func (e *errTooManyPending) Error() string {
	return fmt.Sprintf("too many sign-ins pending (%s); retry in %s", e.Scope, e.Retry)
}

// clientNetwork is the unit a client is counted and limited by: an IPv4
// address, or the /64 of an IPv6 address (one subscriber usually has a
// whole /64, so single IPv6 addresses would be no limit at all).
func clientNetwork(ip string) string {
	p := net.ParseIP(ip)
	switch {
	case p == nil:
		return ip
	case p.To4() != nil:
		return p.To4().String()
	default:
		return p.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
}

// bucketWidth is the granularity of the counts: a tenth of the pending
// lifetime, at least a second. A sign-in counts until the end of its
// bucket, so at most one bucket longer than it lives.
func (s *Server) bucketWidth() int64 {
	return max(int64(s.opt.Login.PendingTTL/time.Second)/10, 1)
}

// admitPending counts one more pending sign-in for the client network of
// ip, within both caps. It returns the slot to release when the sign-in
// finishes, or *errTooManyPending, or a store error.
func (s *Server) admitPending(ctx context.Context, ip string) (*pendingSlot, error) {
	w := s.bucketWidth()
	expires := s.now().Add(s.opt.Login.PendingTTL).Unix()
	slot := &pendingSlot{Net: clientNetwork(ip), Bucket: (expires + w - 1) / w}
	if err := s.countPending(ctx, keyPendingNet+slot.Net, "network", s.opt.Login.MaxPendingPerIP, slot.Bucket, 1); err != nil {
		return nil, err
	}
	if err := s.countPending(ctx, keyPendingTotal, "total", s.opt.Login.MaxPending, slot.Bucket, 1); err != nil {
		// Give back the network's count; if that fails too, it is
		// conservative (counted longer than needed) and expires.
		if rerr := s.countPending(ctx, keyPendingNet+slot.Net, "network", 0, slot.Bucket, -1); rerr != nil {
			s.log.WarnContext(ctx, "pending sign-ins: could not give back a count", "error", rerr)
		}
		return nil, err
	}
	return slot, nil
}

// releasePending gives back a finished sign-in's slot (nil: nothing). A
// failure is logged: the count stays until the bucket ends, which only
// makes the cap stricter for a while.
func (s *Server) releasePending(ctx context.Context, slot *pendingSlot) {
	if slot == nil {
		return
	}
	for _, k := range []string{keyPendingNet + slot.Net, keyPendingTotal} {
		if err := s.countPending(ctx, k, "", 0, slot.Bucket, -1); err != nil {
			s.log.WarnContext(ctx, "pending sign-ins: could not give back a count", "error", err)
		}
	}
}

// countPending adds delta to bucket in the count under key, refusing an
// addition that would make the live count exceed limit.
func (s *Server) countPending(ctx context.Context, key, scope string, limit int, bucket int64, delta int) error {
	w := s.bucketWidth()
	ttl := s.opt.Login.PendingTTL + 2*time.Duration(w)*time.Second
	return s.store.Update(ctx, key, ttl, func(old []byte) ([]byte, error) {
		var pc pendingCount
		if old != nil && json.Unmarshal(old, &pc) != nil {
			pc = pendingCount{} // unreadable: start over rather than refuse forever
		}
		now := s.now().Unix()
		live, earliest := 0, int64(0)
		for b, n := range pc.Buckets {
			if b*w <= now || n <= 0 {
				delete(pc.Buckets, b)
				continue
			}
			live += n
			if earliest == 0 || b < earliest {
				earliest = b
			}
		}
		if delta > 0 && live+delta > limit {
			return nil, &errTooManyPending{Scope: scope, Retry: max(time.Duration(earliest*w-now)*time.Second, time.Second)}
		}
		if pc.Buckets == nil {
			pc.Buckets = map[int64]int{}
		}
		if bucket*w > now {
			pc.Buckets[bucket] += delta
			if pc.Buckets[bucket] <= 0 {
				delete(pc.Buckets, bucket)
			}
		}
		if len(pc.Buckets) == 0 {
			return nil, nil // nothing pending: no record
		}
		return json.Marshal(pc)
	})
}

// compactRequest is the part of an authorization request a pending sign-in
// needs to finish: what the code is bound to and what the response echoes.
// Everything used only before the sign-in left for the upstream (prompt,
// max_age, id_token_hint, the connector's own parameters) and what the
// bridge ignores (login_hint, ui_locales) is dropped, so that a pending
// sign-in is at most a few KB (state ≤ 2 KB, nonce ≤ 512 B).
func compactRequest(req *oidc.AuthRequest) *oidc.AuthRequest {
	return &oidc.AuthRequest{
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		ResponseMode:        req.ResponseMode,
		Scopes:              req.Scopes,
		State:               req.State,
		Nonce:               req.Nonce,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		MaxAge:              -1,
	}
}

// notAdmitted answers a request admitPending refused: at a cap 429 with
// Retry-After and a page (the person can only wait; the client is not
// told), else (the store failed) whatever unavailable answers.
func (s *Server) notAdmitted(c echo.Context, err error, unavailable func(error) error) error {
	var full *errTooManyPending
	if !errors.As(err, &full) {
		return unavailable(err)
	}
	s.log.WarnContext(c.Request().Context(), "too many sign-ins pending: request refused", "scope", full.Scope, "remote", c.RealIP())
	c.Response().Header().Set("Retry-After", retryAfter(full.Retry))
	return s.renderPage(c, http.StatusTooManyRequests, pageTooManyPending)
}
