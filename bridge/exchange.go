package bridge

import (
	"context"

	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// codeExchanger turns a connector's code exchange (a mini program's
// wx.login js_code) into the oidc token exchanger: the identity gets the
// client's claims like every other sign-in. An exchange starts no SSO
// session (there is no browser).
// flowMiniProgram names the code exchange's sign-ins (metrics).
const flowMiniProgram = "mini_program"

func (s *Server) codeExchanger(x connector.CodeExchanger) oidc.TokenExchanger {
	return func(ctx context.Context, client *oidc.Client, code string) (oidc.Identity, *oidc.Error) {
		if !x.AllowsClient(client.ID) {
			return oidc.Identity{}, oidc.ErrUnauthorizedClient("this client may not use the code exchange")
		}
		up, e := x.ExchangeCode(ctx, client.ID, code)
		if e != nil {
			s.metrics.SignIn(flowMiniProgram, e.Code)
			return oidc.Identity{}, e
		}
		si, r := s.admit(ctx, admission{Upstream: up, ClientID: client.ID, Flow: "code_exchange"})
		if r != nil {
			s.metrics.SignIn(flowMiniProgram, "refused_"+r.Kind)
			if r.Kind == "unavailable" {
				return oidc.Identity{}, oidc.ErrTemporarilyUnavailable("%s (reference %s)", r.Reason, r.Ref)
			}
			// RFC 8693 §2.2.2 answers with RFC 6749 §5.2's errors, which have
			// no access_denied: the subject token cannot be used, which is
			// invalid_grant, with the reason and the reference.
			return oidc.Identity{}, oidc.ErrInvalidGrant("%s (reference %s)", r.Reason, r.Ref)
		}
		s.metrics.SignIn(flowMiniProgram, signInOK)
		id := si.Identity
		id.Claims = s.shapeClaims(client.ID, id.Subject, id.Claims)
		return id, nil
	}
}
