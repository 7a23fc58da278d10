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
		id, e := x.ExchangeCode(ctx, client.ID, code)
		if e != nil {
			s.metrics.SignIn(flowMiniProgram, e.Code)
			return oidc.Identity{}, e
		}
		s.metrics.SignIn(flowMiniProgram, signInOK)
		return oidc.Identity{Subject: id.Subject, AuthTime: s.now(), Claims: s.shapeClaims(client.ID, id.Subject, id.Claims)}, nil
	}
}
