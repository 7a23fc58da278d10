package bridge

import (
	"context"
	"strconv"
	"time"
)

// Background work of the people directory, run by every replica.
const (
	revocationPoll = 2 * time.Second
	auditPrunePoll = time.Hour
)

// RunPeopleLoops runs until ctx ends: it carries out revocations written to
// the audit trail by anyone (the console, the CLI in another process,
// another replica) — ending the person's sessions and tokens and telling
// their applications — and prunes the audit trail past audit.retention.
// Token use is refused at once regardless (oidc AccountCheck); this loop
// ends what would otherwise linger: sessions and back-channel notices.
func (s *Server) RunPeopleLoops(ctx context.Context) {
	last, err := s.dir.Audit().LatestID(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "people: could not read the audit trail; revocations start from the next event", "error", err)
	}
	rev := time.NewTicker(revocationPoll)
	defer rev.Stop()
	prune := time.NewTicker(auditPrunePoll)
	defer prune.Stop()
	s.pruneAudit(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-rev.C:
			last = s.carryOutRevocations(ctx, last)
		case <-prune.C:
			s.pruneAudit(ctx)
		}
	}
}

// carryOutRevocations handles the revoking audit events after last and
// returns the id to continue from. With a shared store (Redis) one replica
// carries out each event; with the memory store each replica ends its own.
func (s *Server) carryOutRevocations(ctx context.Context, last int64) int64 {
	events, err := s.dir.Audit().Revocations(ctx, last, 100)
	if err != nil {
		s.log.WarnContext(ctx, "people: could not read revocations; retrying", "error", err)
		return last
	}
	for _, e := range events {
		first, err := s.store.PutNew(ctx, keyRevoked+strconv.FormatInt(e.ID, 10), []byte("1"), time.Hour)
		if err != nil {
			s.log.WarnContext(ctx, "people: store unavailable; the revocation is retried", "event", e.ID, "error", err)
			return last
		}
		if first {
			if err := s.EndPersonAccess(ctx, e.PersonID); err != nil {
				s.log.ErrorContext(ctx, "people: could not end a person's access; retrying", "person", e.PersonID, "error", err)
				if delErr := s.store.Delete(ctx, keyRevoked+strconv.FormatInt(e.ID, 10)); delErr != nil {
					s.log.ErrorContext(ctx, "people: could not release the revocation claim", "error", delErr)
				}
				return last
			}
		}
		last = e.ID
	}
	return last
}

func (s *Server) pruneAudit(ctx context.Context) {
	n, err := s.dir.Audit().Prune(ctx, s.now().Add(-s.opt.Audit.Retention))
	if err != nil {
		s.log.WarnContext(ctx, "audit: prune failed; retried later", "error", err)
		return
	}
	if n > 0 {
		s.log.InfoContext(ctx, "audit: pruned rows past the retention", "rows", n)
	}
}
