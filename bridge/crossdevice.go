package bridge

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// Cross-device QR login, for upstreams whose authorization works only on a
// phone (WeChat's Official Account web authorization works only inside
// WeChat): the desktop page shows a QR code of a short-lived, single-use
// bridge URL; the person scans it with the phone; on the phone the
// connector's leg runs, then the phone shows which application asks and a
// confirm button (so a QR code
// relayed by a phisher is not approved blindly); the desktop page polls and,
// once confirmed, finishes the OIDC flow in the desktop browser, which alone
// can redeem the ticket.
const (
	PathQR        = "/qr"
	PathQRScan    = "/qr/scan"
	PathQRConfirm = "/qr/confirm"

	qrPollSeconds = 2
)

// Ticket states.
const (
	ticketWaiting    = "waiting"    // shown on the desktop, not scanned yet
	ticketScanned    = "scanned"    // a phone took it and is at WeChat
	ticketIdentified = "identified" // WeChat said who; the phone must confirm
	ticketConfirmed  = "confirmed"  // the person confirmed on the phone
	ticketDenied     = "denied"     // the person cancelled on the phone
	ticketFailed     = "failed"     // WeChat or the subject rules refused
)

// xdRequest is the desktop side: the authorization request, bound to the
// desktop browser, and the ticket currently shown.
type xdRequest struct {
	Request     *oidc.AuthRequest `json:"request"`
	Browser     string            `json:"browser"`
	HintSubject string            `json:"hint_sub,omitempty"`
	// Leg is what the phone runs at the upstream; Flow names it (logs).
	Leg    connector.Leg `json:"leg"`
	Flow   string        `json:"flow,omitempty"`
	Ticket string        `json:"ticket"`
	// Invite: an invitation's sign-in (see pendingLogin.Invite).
	Invite string `json:"invite,omitempty"`
}

// xdTicket is one QR code's life.
type xdTicket struct {
	Desktop string `json:"desktop"` // the xdRequest handle
	Status  string `json:"status"`
	Phone   string `json:"phone,omitempty"` // binding hash of the phone that scanned
	Expires int64  `json:"expires"`
	// Identity is who the upstream said is on the phone; the directory's
	// decision is taken on the desktop, which alone receives the code.
	Identity *connector.Identity `json:"identity,omitempty"`
	Error    *oidc.Error         `json:"error,omitempty"`
}

// startCrossDevice creates the desktop side and its first ticket, and sends
// the desktop browser to the QR page.
func (s *Server) startCrossDevice(c echo.Context, req *oidc.AuthRequest, browser, hintSub string, st connector.Start, invite string) error {
	ctx := c.Request().Context()
	dh := randomID(handleLen)
	xd := xdRequest{Request: req, Browser: browser, HintSubject: hintSub, Leg: st.Leg, Flow: st.Flow, Invite: invite}
	ticket, err := s.newTicket(ctx, dh)
	if err == nil {
		xd.Ticket = ticket
		err = s.putJSON(ctx, keyXDRequest+dh, xd, s.opt.Login.PendingTTL)
	}
	if err != nil {
		return s.authorizeUnavailable(c, req, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, s.url(PathQR)+"?"+url.Values{"d": {dh}}.Encode())
}

func (s *Server) newTicket(ctx context.Context, dh string) (string, error) {
	ticket := randomID(handleLen)
	ttl := s.opt.WeChat.QRTicketTTL
	t := xdTicket{Desktop: dh, Status: ticketWaiting, Expires: s.now().Add(ttl).Unix()}
	return ticket, s.putJSON(ctx, keyXDTicket+ticket, t, ttl)
}

// ticketLive reads a ticket, treating one past its expiry as gone (the
// store's TTL may lag behind the clock).
func (s *Server) ticketLive(ctx context.Context, ticket string) (*xdTicket, error) {
	var t xdTicket
	if err := s.getJSON(ctx, keyXDTicket+ticket, &t); errors.Is(err, errUnreadable) {
		return nil, store.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	if s.now().Unix() >= t.Expires {
		return nil, store.ErrNotFound
	}
	return &t, nil
}

// updateTicket changes a live ticket atomically; fn reports false to leave it.
func (s *Server) updateTicket(ctx context.Context, ticket string, fn func(t *xdTicket) bool) (bool, error) {
	changed := false
	err := s.store.Update(ctx, keyXDTicket+ticket, s.opt.WeChat.QRTicketTTL, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, store.ErrNotFound
		}
		var t xdTicket
		if err := json.Unmarshal(old, &t); err != nil {
			return nil, err
		}
		if s.now().Unix() >= t.Expires {
			return nil, store.ErrNotFound
		}
		changed = fn(&t)
		if !changed {
			return old, nil
		}
		return json.Marshal(t)
	})
	return changed, err
}

// handleQR is the desktop page: it shows the QR code, renews an expired
// ticket, and finishes the login once the phone confirmed.
func (s *Server) handleQR(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	params, perr := requestParams(c)
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	dh := params["d"]
	var xd xdRequest
	if !validHandle(dh) {
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
	}
	if err := s.getJSON(ctx, keyXDRequest+dh, &xd); err != nil || xd.Request == nil {
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, errUnreadable) {
			s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
	}
	// Only the desktop browser that started the login may see or redeem it.
	if b := s.browserHash(c); b == "" || subtle.ConstantTimeCompare([]byte(b), []byte(xd.Browser)) != 1 {
		s.log.WarnContext(ctx, "cross-device: QR page opened in another browser", "client_id", xd.Request.ClientID)
		return s.renderPage(c, http.StatusForbidden, pageOtherBrowser)
	}
	t, err := s.ticketLive(ctx, xd.Ticket)
	if errors.Is(err, store.ErrNotFound) {
		// The ticket expired unused: show a fresh one for the same request.
		ticket, err := s.newTicket(ctx, dh)
		if err == nil {
			xd.Ticket = ticket
			err = s.putJSON(ctx, keyXDRequest+dh, xd, s.opt.Login.PendingTTL)
		}
		if err != nil {
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		s.log.InfoContext(ctx, "cross-device: expired QR ticket renewed", "client_id", xd.Request.ClientID)
		t = &xdTicket{Status: ticketWaiting, Expires: s.now().Add(s.opt.WeChat.QRTicketTTL).Unix()}
	} else if err != nil {
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	switch t.Status {
	case ticketConfirmed, ticketDenied, ticketFailed:
		// Single use: of two desktop requests racing here, one takes it.
		raw, err := s.store.Take(ctx, keyXDTicket+xd.Ticket)
		if errors.Is(err, store.ErrNotFound) {
			return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
		} else if err != nil {
			s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		if err := s.store.Delete(ctx, keyXDRequest+dh); err != nil {
			// The ticket is taken, so the request cannot be redeemed twice;
			// the leftover expires with login.pending_ttl.
			s.log.WarnContext(ctx, "cross-device: could not delete the finished request", "error", err)
		}
		var taken xdTicket
		if json.Unmarshal(raw, &taken) != nil {
			return s.renderPage(c, http.StatusInternalServerError, pageUnavailable)
		}
		return s.finishCrossDevice(c, xd, &taken)
	}
	return s.qrPage(c, xd, t)
}

// finishCrossDevice completes the OIDC flow in the desktop browser.
func (s *Server) finishCrossDevice(c echo.Context, xd xdRequest, t *xdTicket) error {
	ctx := c.Request().Context()
	req := xd.Request
	if xd.Invite != "" {
		switch {
		case t.Status == ticketDenied:
			return s.failurePage(c, &connector.Failure{Error: oidc.ErrAccessDenied("the sign-in was cancelled on the phone"), Declined: true})
		case t.Status == ticketFailed && t.Error != nil:
			return s.failurePage(c, &connector.Failure{Error: t.Error})
		case t.Identity != nil:
			return s.redeemInvite(c, xd.Invite, xd.Flow, *t.Identity)
		}
	}
	switch {
	case t.Status == ticketDenied:
		s.metrics.SignIn(xd.Flow, oidc.CodeAccessDenied)
		s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrAccessDenied("the user cancelled the sign-in on the phone"))
		return nil
	case t.Status == ticketFailed && t.Error != nil:
		s.metrics.SignIn(xd.Flow, t.Error.Code)
		s.provider.WriteAuthorizeError(c.Response(), req, t.Error)
		return nil
	case t.Identity == nil:
		return s.redirectServerError(c, req, errors.New("confirmed ticket without identity"))
	}
	si, r := s.admit(ctx, admission{Upstream: *t.Identity, ClientID: req.ClientID, Flow: xd.Flow, IP: c.RealIP(), UA: c.Request().UserAgent()})
	if r != nil {
		return s.refusedPage(c, req, xd.Browser, xd.Flow, *t.Identity, r)
	}
	if xd.HintSubject != "" && xd.HintSubject != si.Identity.Subject {
		// Core §3.1.2.1: the person identified by id_token_hint did not sign in.
		s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrLoginRequired("the person who signed in is not the one named by id_token_hint"))
		return nil
	}
	s.log.InfoContext(ctx, "cross-device: confirmed on the phone; finishing on the desktop", "client_id", req.ClientID)
	return s.finishSignIn(c, req, si.Identity, xd.Flow)
}

// qrPage renders the desktop page with the QR code. It reloads itself every
// few seconds (no script needed: the CSP allows none).
func (s *Server) qrPage(c echo.Context, xd xdRequest, t *xdTicket) error {
	scanURL := s.url(PathQRScan) + "?" + url.Values{"t": {xd.Ticket}}.Encode()
	q, err := qrcode.New(scanURL, qrcode.Medium)
	if err != nil {
		return s.redirectServerError(c, xd.Request, err)
	}
	png, err := q.PNG(-6) // 6 px per module: crisp, no scaling in the browser
	if err != nil {
		return s.redirectServerError(c, xd.Request, err)
	}
	left := time.Unix(t.Expires, 0).Sub(s.now())
	pg := page{
		Name:    "qr",
		Title:   "微信扫码登录 · Scan with WeChat",
		Heading: "请使用微信扫一扫登录",
		Message: "用手机微信扫描二维码，并在手机上确认登录「" + s.clientName(xd.Request.ClientID) + "」。",
		Detail:  "Scan the code with WeChat on your phone, then confirm on the phone to sign in to " + s.clientName(xd.Request.ClientID) + ".",
		Icon:    "none",
		QRImage: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
		Refresh: qrPollSeconds,
		Note:    "二维码 " + formatSeconds(left) + " 后自动刷新 · The code renews itself in " + formatSecondsEN(left),
	}
	if t.Status == ticketScanned || t.Status == ticketIdentified {
		pg.Heading = "已扫码，请在手机上确认"
		pg.Message = "请在手机微信上确认登录「" + s.clientName(xd.Request.ClientID) + "」，这个页面会自动继续。"
		pg.Detail = "Scanned. Confirm on your phone to continue here."
		pg.QRImage, pg.Note = "", "" // taken: nothing left to scan
	}
	if s.devLinks {
		pg.DevLink = scanURL
	}
	return s.renderPage(c, http.StatusOK, pg)
}

// formatSeconds says how long is left the way a person reads it: 2分59秒.
func formatSeconds(d time.Duration) string {
	m, sec := minSec(d)
	if m == 0 {
		return strconv.Itoa(sec) + "秒"
	}
	return strconv.Itoa(m) + "分" + strconv.Itoa(sec) + "秒"
}

func formatSecondsEN(d time.Duration) string {
	m, sec := minSec(d)
	if m == 0 {
		return strconv.Itoa(sec) + " s"
	}
	return strconv.Itoa(m) + " min " + strconv.Itoa(sec) + " s"
}

func minSec(d time.Duration) (int, int) {
	if d < 0 {
		d = 0
	}
	n := int(d.Round(time.Second) / time.Second)
	return n / 60, n % 60
}

func (s *Server) clientName(id string) string {
	if cc := s.clients[id]; cc != nil && cc.Name != "" {
		return cc.Name
	}
	return id
}

// handleQRScan is what the phone opens from the QR code.
func (s *Server) handleQRScan(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	params, perr := requestParams(c)
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	ticket := params["t"]
	if !validHandle(ticket) {
		return s.renderPage(c, http.StatusBadRequest, pageQRExpired)
	}
	if !s.conn.CanRunPhoneLeg(c.Request().UserAgent()) && !(s.devLinks && params["dev_phone"] == "1") {
		pg := pageScanWithWeChat
		if s.devLinks {
			pg.DevLink = s.url(PathQRScan) + "?" + url.Values{"t": {ticket}, "dev_phone": {"1"}}.Encode()
		}
		return s.renderPage(c, http.StatusOK, pg)
	}
	phone := s.browserBinding(c)
	var desktop string
	ok, err := s.updateTicket(ctx, ticket, func(t *xdTicket) bool {
		desktop = t.Desktop
		switch {
		case t.Status == ticketWaiting:
			t.Status, t.Phone = ticketScanned, phone
			return true
		case t.Phone == phone && (t.Status == ticketScanned || t.Status == ticketIdentified):
			return true // the same phone again (e.g. it went back): restart its leg
		}
		return false
	})
	if errors.Is(err, store.ErrNotFound) {
		return s.renderPage(c, http.StatusBadRequest, pageQRExpired)
	}
	if err != nil {
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if !ok {
		s.log.WarnContext(ctx, "cross-device: a second phone scanned a ticket already taken")
		return s.renderPage(c, http.StatusForbidden, pageQRTaken)
	}
	var xd xdRequest
	if err := s.getJSON(ctx, keyXDRequest+desktop, &xd); err != nil || xd.Request == nil {
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, errUnreadable) {
			s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		return s.renderPage(c, http.StatusBadRequest, pageQRExpired)
	}
	s.log.InfoContext(ctx, "cross-device: QR scanned; the phone goes upstream", "client_id", xd.Request.ClientID, "flow", xd.Flow)
	return s.sendUpstream(c, pendingLogin{Request: xd.Request, Browser: phone, Leg: xd.Leg, Flow: xd.Flow, HintSubject: xd.HintSubject, Ticket: ticket})
}

// phoneIdentified: WeChat told who is on the phone; the phone must confirm.
func (s *Server) phoneIdentified(c echo.Context, pl pendingLogin, id connector.Identity) error {
	ctx := c.Request().Context()
	ok, err := s.updateTicket(ctx, pl.Ticket, func(t *xdTicket) bool {
		if t.Phone != pl.Browser || (t.Status != ticketScanned && t.Status != ticketIdentified) {
			return false
		}
		t.Status, t.Identity = ticketIdentified, &id
		return true
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if err != nil || !ok {
		return s.renderPage(c, http.StatusBadRequest, pageQRExpired)
	}
	name := s.clientName(pl.Request.ClientID)
	nick, _ := id.Claims["name"].(string)
	who := ""
	if nick != "" {
		who = "（" + nick + "）"
	}
	pg := page{
		Name:    "qr-confirm",
		Title:   "确认登录 · Confirm sign-in",
		Heading: "在电脑上登录「" + name + "」？",
		Message: "有人正在电脑上用你的微信" + who + "登录「" + name + "」。如果不是你本人操作，请点击取消。",
		Detail:  "A computer is signing in to " + name + " with your WeChat account. Confirm only if you are the one doing it.",
		Icon:    "info",
		Form: &pageForm{
			Action: s.url(PathQRConfirm),
			Fields: map[string]string{"t": pl.Ticket},
			Buttons: []pageButton{
				{Name: "decision", Value: "confirm", Label: "确认登录 · Confirm"},
				{Name: "decision", Value: "deny", Label: "取消 · Cancel", Secondary: true},
			},
		},
	}
	return s.renderPage(c, http.StatusOK, pg)
}

// phoneFailed: the phone leg ended in an error; the desktop learns it, the
// phone shows it.
func (s *Server) phoneFailed(c echo.Context, pl pendingLogin, f *connector.Failure) error {
	ctx := c.Request().Context()
	e := f.Error
	_, err := s.updateTicket(ctx, pl.Ticket, func(t *xdTicket) bool {
		if t.Phone != pl.Browser {
			return false
		}
		t.Status, t.Error = ticketFailed, &oidc.Error{Code: e.Code, Description: e.Description}
		if f.Declined {
			t.Status, t.Error = ticketDenied, nil
		}
		return true
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		// The desktop cannot learn of the failure: it shows the QR page
		// until the ticket expires. Say so here.
		s.log.ErrorContext(ctx, "cross-device: store unavailable; the desktop will not learn of the failure", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	pg := page{
		Name:    "qr-failed",
		Title:   "登录失败 · Sign-in failed",
		Heading: "登录失败",
		Message: "微信登录没有完成，请回到电脑上重试。",
		Detail:  e.Description,
		Icon:    "warn",
	}
	if f.PersonZH != "" {
		pg.Message, pg.Detail = f.PersonZH, f.PersonEN
	}
	return s.renderPage(c, http.StatusOK, pg)
}

// handleQRConfirm takes the phone's decision.
func (s *Server) handleQRConfirm(c echo.Context) error {
	ctx := c.Request().Context()
	params, perr := oidc.ReadForm(c.Response(), c.Request())
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	phone := s.browserHash(c)
	if phone == "" {
		return s.renderPage(c, http.StatusForbidden, pageQRTaken)
	}
	decision := params["decision"]
	if decision != "confirm" && decision != "deny" {
		return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("decision must be confirm or deny"))
	}
	ok, err := s.updateTicket(ctx, params["t"], func(t *xdTicket) bool {
		// Only the phone that scanned, and only after WeChat identified it.
		if t.Phone != phone || t.Status != ticketIdentified {
			return false
		}
		t.Status = ticketConfirmed
		if decision == "deny" {
			t.Status, t.Identity = ticketDenied, nil
		}
		return true
	})
	if errors.Is(err, store.ErrNotFound) {
		return s.renderPage(c, http.StatusBadRequest, pageQRExpired)
	}
	if err != nil {
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if !ok {
		s.log.WarnContext(ctx, "cross-device: confirmation from a phone that did not scan, or out of order")
		return s.renderPage(c, http.StatusForbidden, pageQRTaken)
	}
	if decision == "deny" {
		return s.renderPage(c, http.StatusOK, pageQRDenied)
	}
	return s.renderPage(c, http.StatusOK, pageQRConfirmed)
}
