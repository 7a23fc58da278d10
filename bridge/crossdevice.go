package bridge

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/wechat-oidc/wechat-oidc/connector"
	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// Cross-device QR login, for upstreams whose authorization works only on a
// phone (WeChat's Official Account web authorization works only inside
// WeChat): the desktop page shows a QR code of a short-lived, single-use
// bridge URL; the person scans it with the phone; on the phone the
// connector's leg runs, then the phone shows which application asks, where
// the computer is (its network, browser and the time) and three numbers, of
// which the person must pick the one the computer shows; the desktop page
// polls and, once confirmed, finishes the OIDC flow in the desktop browser,
// which alone can redeem the ticket.
//
// A QR code can still be relayed by a phishing page to a person who then
// confirms (docs/security.md). What the relayer gets is bounded: a code for
// the one application that asked, and no SSO session on its desktop unless
// wechat.cross_device_sso is on. The confirmation is a POST with a token
// bound to the phone's binding cookie and the ticket, from our own origin.
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

// xdRequest is the desktop side: the authorization request (compacted),
// bound to the desktop browser, and the ticket currently shown.
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
	// Desktop is where the sign-in was asked for, shown on the phone.
	Desktop desktopFacts `json:"desktop"`
	// Slot is the pending-sign-in count this request holds until the
	// desktop takes its ticket.
	Slot *pendingSlot `json:"slot,omitempty"`
}

// desktopFacts are what the phone is shown about the computer that asked.
type desktopFacts struct {
	IP      string `json:"ip"`
	Browser string `json:"browser"`
	Asked   int64  `json:"asked"`
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
	// Code is the two-digit number the desktop shows once the code is
	// scanned; the phone must pick it among Choices.
	Code    string       `json:"code"`
	Choices []string     `json:"choices,omitempty"`
	Facts   desktopFacts `json:"facts"`
}

// startCrossDevice creates the desktop side and its first ticket, and sends
// the desktop browser to the QR page.
func (s *Server) startCrossDevice(c echo.Context, req *oidc.AuthRequest, browser, hintSub string, st connector.Start, slot *pendingSlot, invite string) error {
	ctx := c.Request().Context()
	dh := randomID(handleLen)
	xd := xdRequest{Request: req, Browser: browser, HintSubject: hintSub, Leg: st.Leg, Flow: st.Flow, Slot: slot, Invite: invite,
		Desktop: desktopFacts{IP: c.RealIP(), Browser: browserFamily(c.Request().UserAgent()), Asked: s.now().Unix()}}
	ticket, err := s.newTicket(ctx, dh, xd.Desktop)
	if err == nil {
		xd.Ticket = ticket
		err = s.putJSON(ctx, keyXDRequest+dh, xd, s.opt.Login.PendingTTL)
	}
	if err != nil {
		s.releasePending(ctx, slot)
		return s.authorizeUnavailable(c, req, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, s.url(PathQR)+"?"+url.Values{"d": {dh}}.Encode())
}

func (s *Server) newTicket(ctx context.Context, dh string, facts desktopFacts) (string, error) {
	ticket := randomID(handleLen)
	ttl := s.opt.WeChat.QRTicketTTL
	t := xdTicket{Desktop: dh, Status: ticketWaiting, Expires: s.now().Add(ttl).Unix(), Code: matchCode(), Facts: facts}
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
	b, err := s.browserHash(c)
	if err != nil {
		s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if b == "" || subtle.ConstantTimeCompare([]byte(b), []byte(xd.Browser)) != 1 {
		s.log.WarnContext(ctx, "cross-device: QR page opened in another browser", "client_id", xd.Request.ClientID)
		return s.renderPage(c, http.StatusForbidden, pageOtherBrowser)
	}
	t, err := s.ticketLive(ctx, xd.Ticket)
	if errors.Is(err, store.ErrNotFound) {
		// The ticket expired unused: show a fresh one for the same request.
		ticket, err := s.newTicket(ctx, dh, xd.Desktop)
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
		s.releasePending(ctx, xd.Slot)
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
	case t.Status == ticketDenied && t.Error != nil:
		s.provider.WriteAuthorizeError(c.Response(), req, t.Error)
		return nil
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
	// A code for the requesting application only: the desktop gets no SSO
	// session cookie unless the operator opted in, so a relayed QR code
	// does not sign the relayer in to every other application. The session
	// still exists (without a cookie) so that logout ends its tokens.
	return s.finishSignIn(c, req, si.Identity, xd.Flow, s.opt.WeChat.CrossDeviceSSO)
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
		pg.Message = "请在手机微信上选择下面的数字，确认登录「" + s.clientName(xd.Request.ClientID) + "」，这个页面会自动继续。"
		pg.Detail = "Scanned. Confirm on your phone by picking the number below; this page continues by itself."
		pg.QRImage, pg.Note = "", "" // taken: nothing left to scan
		pg.MatchCode = t.Code
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
	phone, err := s.browserBinding(c)
	if err != nil {
		s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
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
	// Each scan sends the phone upstream with a leg of its own: it counts
	// as a pending sign-in of the phone's network.
	slot, err := s.admitPending(ctx, c.RealIP())
	if err != nil {
		return s.notAdmitted(c, err, func(err error) error {
			s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		})
	}
	s.log.InfoContext(ctx, "cross-device: QR scanned; the phone goes upstream", "client_id", xd.Request.ClientID, "flow", xd.Flow)
	return s.sendUpstream(c, pendingLogin{Request: xd.Request, Browser: phone, Leg: xd.Leg, Flow: xd.Flow, HintSubject: xd.HintSubject, Ticket: ticket, Slot: slot})
}

// phoneIdentified: WeChat told who is on the phone; the phone must confirm
// by picking the number the desktop shows. It returns the page for the
// phone (200) or an expired page (400); an error means the store failed.
func (s *Server) phoneIdentified(c echo.Context, pl pendingLogin, id connector.Identity) (int, page, error) {
	ctx := c.Request().Context()
	var t xdTicket
	ok, err := s.updateTicket(ctx, pl.Ticket, func(cur *xdTicket) bool {
		if cur.Phone != pl.Browser || (cur.Status != ticketScanned && cur.Status != ticketIdentified) {
			return false
		}
		cur.Status, cur.Identity = ticketIdentified, &id
		if len(cur.Choices) == 0 {
			cur.Choices = matchChoices(cur.Code)
		}
		t = *cur
		return true
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, page{}, err
	}
	if err != nil || !ok {
		return http.StatusBadRequest, pageQRExpired, nil
	}
	key, err := s.macKey(ctx)
	if err != nil {
		return 0, page{}, err
	}
	name := s.clientName(pl.Request.ClientID)
	nick, _ := id.Claims["name"].(string)
	who := ""
	if nick != "" {
		who = "（" + nick + "）"
	}
	buttons := make([]pageButton, 0, len(t.Choices)+1)
	for _, n := range t.Choices {
		buttons = append(buttons, pageButton{Name: "pick", Value: n, Label: n, Number: true})
	}
	buttons = append(buttons, pageButton{Name: "decision", Value: "deny", Label: "不是我，取消 · Not me, cancel", Secondary: true})
	pg := page{
		Name:    "qr-confirm",
		Title:   "确认登录 · Confirm sign-in",
		Heading: "在电脑上登录「" + name + "」？",
		Message: "有人正在电脑上用你的微信" + who + "登录「" + name + "」。请核对下面的电脑信息，并选择电脑屏幕上显示的数字。如果不是你本人在操作，或者你是从别人发来的链接或图片扫的码，请点击取消。",
		Detail:  "A computer is signing in to " + name + " with your WeChat account. Check where it is, and pick the number it shows. If it is not you, or you scanned a code someone sent you, cancel.",
		Icon:    "info",
		Facts:   s.desktopFactsFor(c, t.Facts),
		Form: &pageForm{
			Action:  s.url(PathQRConfirm),
			Fields:  map[string]string{"t": pl.Ticket, "csrf": macToken(key, "qr-confirm", pl.Browser, pl.Ticket)},
			Buttons: buttons,
		},
		// The confirmation POST must carry our Origin (handleQRConfirm
		// refuses others); with no-referrer browsers send "Origin: null".
		ReferrerSameOrigin: true,
	}
	return http.StatusOK, pg, nil
}

// desktopFactsFor describes the desktop to the phone: its network as seen
// from the phone's, its browser, and when it asked.
func (s *Server) desktopFactsFor(c echo.Context, f desktopFacts) []pageFact {
	where := "其他网络 · another network: " + maskIP(f.IP)
	if clientNetwork(f.IP) == clientNetwork(c.RealIP()) {
		where = "与这部手机同一网络 · the same network as this phone"
	}
	asked := time.Unix(f.Asked, 0).In(chinaTime).Format("15:04:05") + " (UTC+8)"
	return []pageFact{
		{Label: "电脑所在网络 · Network", Value: where},
		{Label: "电脑浏览器 · Browser", Value: f.Browser},
		{Label: "发起时间 · Asked at", Value: asked},
	}
}

// chinaTime is the time zone pages show times in (WeChat's users, and
// China has one zone). A fixed zone: no tz database needed.
var chinaTime = time.FixedZone("UTC+8", 8*3600)

// maskIP shows an address only to its network: a.b.c.0/24 for IPv4, the
// /48 for IPv6. Enough to tell "not my office" from "my office", not to
// locate a person.
func maskIP(ip string) string {
	p := net.ParseIP(ip)
	switch {
	case p == nil:
		return "未知 · unknown"
	case p.To4() != nil:
		return p.Mask(net.CIDRMask(24, 32)).String() + "/24"
	default:
		return p.Mask(net.CIDRMask(48, 128)).String() + "/48"
	}
}

// browserFamily names a browser and its system from a User-Agent, as a
// person would recognise them (Chrome · Windows). Unknown parts say so.
func browserFamily(ua string) string {
	browser := "未知浏览器 · unknown browser"
	for _, b := range []struct{ token, name string }{
		{"MicroMessenger", "WeChat"}, {"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"},
		{"Chrome/", "Chrome"}, {"Version/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := "未知系统 · unknown system"
	for _, o := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Android", "Android"},
		{"CrOS", "ChromeOS"}, {"Mac OS X", "macOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	return browser + " · " + system
}

// matchCode is a fresh two-digit number, 10 to 99.
func matchCode() string {
	var b [1]byte
	for {
		rand.Read(b[:])
		if b[0] < 180 { // 180 = 2 × 90: no modulo bias
			return strconv.Itoa(10 + int(b[0])%90)
		}
	}
}

// matchChoices are code and two other numbers, in random order.
func matchChoices(code string) []string {
	out := []string{code}
	for len(out) < 3 {
		if n := matchCode(); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	var b [1]byte
	for i := len(out) - 1; i > 0; i-- {
		n := i + 1
		for {
			rand.Read(b[:])
			if int(b[0]) < 256-256%n { // no modulo bias: the right number's place is not guessable
				break
			}
		}
		j := int(b[0]) % n
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// phoneFailed: the phone leg ended in an error; the desktop learns it, the
// phone is shown the returned page. An error means the store failed.
func (s *Server) phoneFailed(c echo.Context, pl pendingLogin, f *connector.Failure) (page, error) {
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
		// until the ticket expires.
		return page{}, err
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
	return pg, nil
}

// sameOrigin reports whether a state-changing POST comes from our own
// pages: an Origin header, when present, must be the issuer's origin
// ("null", sent by sandboxed frames and no-referrer pages, is refused);
// without one, a Referer, when present, must be on the issuer's origin.
// A request with neither (older browsers) relies on the CSRF token and
// SameSite=Lax alone.
func (s *Server) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Host != "" && origin(u) == s.origin
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Host != "" && origin(u) == s.origin
	}
	return true
}

// handleQRConfirm takes the phone's decision: the number it picked, or a
// cancellation. It must come from the phone that scanned (binding cookie),
// with the form's token (bound to that cookie and the ticket), from our
// own origin. A wrong number denies the ticket: the desktop is told.
func (s *Server) handleQRConfirm(c echo.Context) error {
	ctx := c.Request().Context()
	if !s.sameOrigin(c.Request()) {
		s.log.WarnContext(ctx, "cross-device: confirmation from another origin refused")
		return s.renderPage(c, http.StatusForbidden, pageCrossOrigin)
	}
	params, perr := oidc.ReadForm(c.Response(), c.Request())
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	phone, err := s.browserHash(c)
	if err != nil {
		s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if phone == "" {
		return s.renderPage(c, http.StatusForbidden, pageQRTaken)
	}
	key, err := s.macKey(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "cross-device: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	ticket := params["t"]
	if !validHandle(ticket) || !equalToken(params["csrf"], macToken(key, "qr-confirm", phone, ticket)) {
		s.log.WarnContext(ctx, "cross-device: confirmation without this phone's form token refused")
		return s.renderPage(c, http.StatusForbidden, pageQRTaken)
	}
	deny, pick := params["decision"] == "deny", params["pick"]
	if !deny && pick == "" {
		return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("pick the number shown on the computer, or cancel"))
	}
	wrong := false
	ok, err := s.updateTicket(ctx, ticket, func(t *xdTicket) bool {
		// Only the phone that scanned, and only after WeChat identified it.
		if t.Phone != phone || t.Status != ticketIdentified {
			return false
		}
		switch {
		case deny:
			t.Status, t.Identity = ticketDenied, nil
		case subtle.ConstantTimeCompare([]byte(pick), []byte(t.Code)) == 1:
			t.Status = ticketConfirmed
		default:
			// A wrong number: likely a relayed code (the person does not see
			// the computer). The sign-in ends; the desktop is told.
			wrong = true
			t.Status, t.Identity = ticketDenied, nil
			t.Error = oidc.ErrAccessDenied("the number picked on the phone was not the one the computer showed")
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
	switch {
	case wrong:
		s.log.WarnContext(ctx, "cross-device: wrong number picked on the phone; sign-in denied")
		return s.renderPage(c, http.StatusOK, pageQRWrongNumber)
	case deny:
		return s.renderPage(c, http.StatusOK, pageQRDenied)
	}
	return s.renderPage(c, http.StatusOK, pageQRConfirmed)
}
