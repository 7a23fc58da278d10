package admin

import (
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// The console speaks zh-CN and en. A person picks with the switch link
// (?lang=, remembered in a cookie for a year); otherwise Accept-Language
// decides; otherwise Chinese.

const ctxLang = "admin.console.lang"

// lang is the language of this request's pages: "zh" or "en".
func (c *Console) lang(ec echo.Context) string {
	if l, ok := ec.Get(ctxLang).(string); ok {
		return l
	}
	l := ""
	if q := ec.QueryParam("lang"); q == "zh" || q == "en" {
		l = q
		ec.SetCookie(c.cookie(langCookie, l, 365*24*3600))
	} else if ck, err := ec.Cookie(langCookie); err == nil && (ck.Value == "zh" || ck.Value == "en") {
		l = ck.Value
	} else {
		l = fromAcceptLanguage(ec.Request().Header.Get("Accept-Language"))
	}
	ec.Set(ctxLang, l)
	return l
}

// langTag is the BCP 47 tag of a page language (for ui_locales).
func langTag(l string) string {
	if l == "en" {
		return "en"
	}
	return "zh-CN"
}

// fromAcceptLanguage picks zh or en from an Accept-Language header (RFC
// 9110 §12.5.4): the supported language with the highest q, the earlier
// one on a tie; zh when neither is acceptable.
func fromAcceptLanguage(h string) string {
	type choice struct {
		lang string
		q    float64
		pos  int
	}
	var cs []choice
	for i, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if (primary == "zh" || primary == "en") && q > 0 {
			cs = append(cs, choice{primary, q, i})
		}
	}
	if len(cs) == 0 {
		return "zh"
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].q > cs[b].q })
	return cs[0].lang
}

// message is the text of key in lang. A key missing from the catalog
// shows as "[key]" (TestMessagesComplete keeps them all present).
func message(lang, key string) string {
	m, ok := messages[key]
	if !ok {
		return "[" + key + "]"
	}
	if lang == "en" {
		return m[1]
	}
	return m[0]
}

// messages: key → {zh-CN, en}.
var messages = map[string][2]string{
	"console":         {"管理控制台", "Admin console"},
	"signout":         {"退出", "Sign out"},
	"nav.pending":     {"待审批", "Pending"},
	"nav.people":      {"人员", "People"},
	"nav.invitations": {"邀请", "Invitations"},
	"nav.audit":       {"审计", "Audit"},
	"lang.other":      {"English", "中文"},
	"request":         {"请求", "request"},
	"ref":             {"参考号", "Reference"},

	"signin.expired.title":    {"登录已失效", "Sign-in expired"},
	"signin.expired.body":     {"这次登录已过期，或不是在这个浏览器中发起的。请重新登录。", "This sign-in has expired or was started in another browser. Sign in again."},
	"signin.denied.title":     {"无法登录", "Cannot sign in"},
	"signin.denied.body":      {"登录服务拒绝了这次登录。如果你是管理员，请联系其他管理员。", "The sign-in service refused this sign-in. If you are an administrator, ask another administrator."},
	"signin.failed.title":     {"登录失败", "Sign-in failed"},
	"signin.failed.body":      {"无法完成登录，请重试。如果问题持续，请把参考号告诉技术支持。", "The sign-in could not be completed. Try again; if it keeps failing, quote the reference to support."},
	"signedout.expired.title": {"请重新登录", "Please sign in again"},
	"signedout.expired.body":  {"你的管理会话已结束，操作没有执行。请重新登录后再试。", "Your console session has ended and nothing was changed. Sign in and try again."},
	"signedout.title":         {"已退出管理控制台", "Signed out of the console"},
	"signedout.body":          {"你已退出管理控制台。若要同时退出微信登录服务，请点击下方的「退出登录服务」。", "You are signed out of the console. To end your WeChat sign-in for every application too, use “Sign out everywhere” below."},
	"csrf.title":              {"请求已拒绝", "Request refused"},
	"csrf.body":               {"这个表单已过期或不是从本控制台提交的，操作没有执行。请返回后重试。", "This form has expired or was not sent from this console; nothing was changed. Go back and try again."},
	"forbidden.title":         {"没有权限", "Not allowed"},
	"forbidden.body":          {"只有管理员组的成员才能使用管理控制台。如需权限，请联系管理员。", "Only members of the administrators' group may use the console. Ask an administrator if you need access."},
	"unavailable.title":       {"服务暂时不可用", "Temporarily unavailable"},
	"unavailable.body":        {"控制台暂时无法处理请求，请稍后重试。如果问题持续，请把参考号告诉技术支持。", "The console cannot handle the request right now. Try again shortly; if it keeps failing, quote the reference to support."},
	"link.switch":             {"以其他身份登录", "Sign in as someone else"},
	"link.back":               {"返回", "Back"},
	"link.retry":              {"重试", "Try again"},
	"link.signin":             {"登录", "Sign in"},
	"link.logout":             {"退出登录服务", "Sign out everywhere"},

	"reauth.title":  {"请再次确认身份", "Confirm it is you"},
	"reauth.body":   {"停用或删除人员、变更管理员组需要在 10 分钟内登录过。请重新登录，然后再操作一次。", "Disabling or removing a person and changing the administrators' group need a sign-in within the last 10 minutes. Sign in again, then repeat the action."},
	"reauth.button": {"重新登录", "Sign in again"},

	"pending.title":     {"待审批", "Pending approval"},
	"pending.none":      {"没有待审批的人。", "Nobody is waiting for approval."},
	"pending.first":     {"首次登录", "First sign-in"},
	"pending.approve":   {"批准", "Approve"},
	"pending.deny":      {"拒绝", "Deny"},
	"field.username":    {"用户名", "Username"},
	"field.groups":      {"用户组", "Groups"},
	"field.groups.hint": {"多个用空格分隔，如 dev ops", "separated by spaces, e.g. dev ops"},
	"field.name":        {"姓名", "Name"},
	"field.email":       {"邮箱", "Email"},
	"field.app":         {"登录后进入的应用", "Application to land in"},
	"field.days":        {"有效天数（1–90）", "Valid for days (1–90)"},

	"people.title":         {"人员", "People"},
	"people.search":        {"搜索", "Search"},
	"people.search.hint":   {"姓名、用户名、邮箱、openid 或 unionid", "name, username, email, openid or unionid"},
	"people.search.button": {"搜索", "Search"},
	"people.none":          {"没有找到人员。", "Nobody found."},
	"people.last":          {"最近登录", "Last sign-in"},
	"status.active":        {"正常", "Active"},
	"status.pending":       {"待审批", "Pending"},
	"status.disabled":      {"已停用", "Disabled"},
	"pager.prev":           {"上一页", "Previous"},
	"pager.next":           {"下一页", "Next"},

	"person.id":               {"ID", "ID"},
	"person.created":          {"创建于", "Created"},
	"person.identities":       {"绑定的账号", "Bound accounts"},
	"person.identities.none":  {"没有绑定的账号。", "No bound accounts."},
	"person.bound":            {"绑定于", "Bound"},
	"person.groups.none":      {"不在任何组中。", "In no group."},
	"person.groups.edit":      {"修改用户组", "Change groups"},
	"person.groups.admin":     {"加入或移出 %s 组需要 10 分钟内登录过。", "Adding to or removing from %s needs a sign-in within 10 minutes."},
	"person.groups.save":      {"保存用户组", "Save groups"},
	"person.sessions":         {"登录会话与令牌", "Sessions and tokens"},
	"person.sessions.error":   {"暂时无法读取登录会话。", "Sessions cannot be read right now."},
	"person.sessions.none":    {"没有有效的登录会话或令牌。", "No live sessions or tokens."},
	"person.session":          {"登录会话", "Session"},
	"person.grants.error":     {"暂时无法读取刷新令牌。", "Refresh tokens cannot be read right now."},
	"person.grant":            {"刷新令牌", "Refresh token"},
	"person.grant.offline":    {"离线访问：退出登录后仍然有效。", "Offline access: stays valid after sign-out."},
	"person.grant.session":    {"随登录会话结束。", "Ends with its session."},
	"person.grant.nosession":  {"不属于任何登录会话。", "Not tied to a session."},
	"person.grant.scopes":     {"权限", "Scopes"},
	"person.grant.created":    {"签发于", "Issued"},
	"person.grant.used":       {"最近刷新", "last refreshed"},
	"person.grant.expires":    {"不使用则失效于", "Ends if unused"},
	"person.grant.latest":     {"最迟失效于", "ends at the latest"},
	"person.grant.revoke":     {"撤销此令牌", "Revoke this token"},
	"person.sessions.noapps":  {"尚未进入任何应用", "no application yet"},
	"person.sessions.auth":    {"认证于", "Authenticated"},
	"person.sessions.created": {"开始于", "started"},
	"person.sessions.revoke":  {"结束此会话", "End this session"},
	"person.status":           {"状态", "Status"},
	"person.self":             {"你不能停用或删除自己。请让其他管理员操作。", "You cannot disable or remove yourself; ask another administrator."},
	"person.enable":           {"启用", "Enable"},
	"person.disable":          {"停用", "Disable"},
	"person.disable.note":     {"停用后立即退出所有应用，所有令牌失效。", "Disabling signs the person out of every application at once and revokes every token."},
	"person.remove.confirm":   {"我确认删除此人及其绑定的账号", "I confirm removing this person and their bound accounts"},
	"person.remove":           {"删除", "Remove"},
	"person.audit":            {"最近记录", "Recent events"},
	"person.audit.all":        {"查看全部记录", "All events"},

	"inv.title":         {"邀请", "Invitations"},
	"inv.create":        {"创建邀请", "New invitation"},
	"inv.app.none":      {"不指定（显示应用列表）", "None (list the applications)"},
	"inv.create.button": {"创建邀请链接", "Create invitation link"},
	"inv.list":          {"邀请列表", "Invitations"},
	"inv.none":          {"还没有邀请。", "No invitations yet."},
	"inv.state.pending": {"待使用", "Open"},
	"inv.state.used":    {"已使用", "Used"},
	"inv.state.expired": {"已过期", "Expired"},
	"inv.state.revoked": {"已撤销", "Revoked"},
	"inv.created":       {"创建于", "Created"},
	"inv.expires":       {"有效期至", "Expires"},
	"inv.revoke":        {"撤销邀请", "Revoke"},
	"inv.created.title": {"已创建给 @%s 的邀请", "Invitation for @%s created"},
	"inv.created.body":  {"把链接发给对方，或让对方用微信扫描二维码。", "Send the link, or let them scan the QR code with WeChat."},
	"inv.qr":            {"邀请二维码", "Invitation QR code"},
	"inv.once":          {"链接只显示这一次，只能使用一次。", "The link is shown this once and works once."},
	"inv.back":          {"返回邀请列表", "Back to invitations"},

	"audit.title":       {"审计记录", "Audit trail"},
	"audit.person":      {"人员", "Person"},
	"audit.person.hint": {"用户名或人员 ID", "username or person id"},
	"audit.action":      {"操作", "Action"},
	"audit.action.any":  {"全部操作", "Any action"},
	"audit.since":       {"起始日期", "Since"},
	"audit.filter":      {"筛选", "Filter"},
	"audit.filters":     {"筛选条件", "Filters"},
	"audit.actor":       {"操作者", "By"},
	"audit.none":        {"没有记录。", "No events."},

	"flash.approved":       {"已批准 @%s。", "@%s approved."},
	"flash.denied":         {"已拒绝并删除该申请。", "Denied; the request was removed."},
	"flash.groups":         {"已保存 @%s 的用户组。", "Groups of @%s saved."},
	"flash.disabled":       {"已停用 @%s，其会话和令牌已全部失效。", "@%s disabled; their sessions and tokens are ended."},
	"flash.disabled.later": {"已停用 @%s；结束其会话时出错，将在几秒内由后台自动完成。", "@%s disabled; ending their sessions failed here and will complete in the background within seconds."},
	"flash.enabled":        {"已启用 @%s。", "@%s enabled."},
	"flash.removed":        {"已删除 @%s。", "@%s removed."},
	"flash.session":        {"已结束该会话。", "Session ended."},
	"flash.grant":          {"已撤销该刷新令牌及其签发的访问令牌。", "Refresh token revoked, with the access tokens issued from it."},
	"flash.inv.revoked":    {"已撤销邀请。", "Invitation revoked."},
	"err.invalid":          {"输入有误：%s", "Invalid input: %s"},
	"err.username.taken":   {"用户名 %s 已被使用，请换一个。", "The username %s is taken; choose another."},
	"err.notpending":       {"此人已不在待审批状态（可能已被其他管理员处理）。", "This person is no longer pending (another administrator may have acted)."},
	"err.notfound":         {"找不到该记录（可能已被删除）。", "Not found (it may have been removed)."},
	"err.self":             {"你不能停用或删除自己。", "You cannot disable or remove yourself."},
	"err.confirm":          {"请勾选确认框后再删除。", "Tick the confirmation box to remove."},
	"err.inv.used":         {"邀请已被使用，无法撤销。", "The invitation was already used and cannot be revoked."},
	"err.session.gone":     {"该会话已结束。", "That session has already ended."},
	"err.grant.gone":       {"该刷新令牌已失效。", "That refresh token has already ended."},
	"err.audit":            {"操作已执行，但审计记录写入失败（参考号 %s）。", "Done, but the audit row could not be written (reference %s)."},
	"err.unavailable":      {"暂时无法完成，请重试（参考号 %s）。", "Could not be done right now; try again (reference %s)."},
	"err.app":              {"未知的应用。", "Unknown application."},
	"err.days":             {"有效天数须为 1 到 90。", "Valid days must be 1 to 90."},
	"err.notdisabled":      {"只有已停用的人才能启用；待审批的人请在「待审批」中批准。", "Only a disabled person can be enabled; approve pending people on Pending."},
	"err.remove.partial":   {"@%s 已停用，但结束其会话失败，未删除。后台将在几秒内结束其会话，请稍后再删除。", "@%s is disabled but ending their sessions failed, so they were not removed. Their sessions end in the background within seconds; remove again then."},
	"notfound.title":       {"找不到", "Not found"},
	"notfound.body":        {"找不到这个人，可能已被删除。", "This person does not exist; they may have been removed."},
	"err.filter":           {"筛选条件有误：%s", "Invalid filter: %s"},
}
