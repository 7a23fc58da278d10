package config

import (
	"time"

	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// WeChat's defaults. They equal package wechat's constants (a test checks):
// config must not depend on the WeChat client, so that the login core,
// which reads Options, does not either.
const (
	DefaultWeChatOpenBaseURL = "https://open.weixin.qq.com"
	DefaultWeChatAPIBaseURL  = "https://api.weixin.qq.com"
	DefaultWeChatTimeout     = 5 * time.Second
)

// DefaultDirectorySignInTimeout is directory.sign_in_timeout's default: a
// sign-in normally spends about a millisecond in the directory, so two
// seconds is only ever a lock held by someone else or a database not
// answering, and a person is better told to try again than kept waiting.
const DefaultDirectorySignInTimeout = 2 * time.Second

// DefaultMemoryMaxEntries bounds the memory store (store.memory.max_entries).
const DefaultMemoryMaxEntries = 250_000

// ApplyDefaults fills every key left empty with its default. (One
// assignment per key, in the file's order: a list to read, not logic to
// split.)
func (c *File) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = "0.0.0.0:8080"
	}
	if c.Subject == "" {
		c.Subject = SubjectUnionID
	}
	if c.WeChat.OpenBaseURL == "" {
		c.WeChat.OpenBaseURL = DefaultWeChatOpenBaseURL
	}
	if c.WeChat.APIBaseURL == "" {
		c.WeChat.APIBaseURL = DefaultWeChatAPIBaseURL
	}
	if c.WeChat.Timeout == 0 {
		c.WeChat.Timeout = Duration(DefaultWeChatTimeout)
	}
	if oa := c.WeChat.OfficialAccount; oa != nil && oa.Scope == "" {
		oa.Scope = ScopeUserInfo
		if c.Subject == SubjectUnionID || c.Subject == "" {
			oa.Scope = ScopeSilentFirst
		}
	}
	if c.WeChat.UserinfoRetryDeadline == 0 {
		c.WeChat.UserinfoRetryDeadline = Duration(3 * time.Second)
	}
	if c.WeChat.AvatarSize == nil {
		size := 132
		c.WeChat.AvatarSize = &size
	}
	if c.WeChat.QRTicketTTL == 0 {
		c.WeChat.QRTicketTTL = Duration(3 * time.Minute)
	}
	if c.WeChat.SnapshotForcePopup == nil {
		t := true
		c.WeChat.SnapshotForcePopup = &t
	}
	if c.WeChat.CrossDevice == nil {
		t := true
		c.WeChat.CrossDevice = &t
	}
	if c.Store.Type == "" {
		c.Store.Type = "memory"
	}
	if c.Store.Memory.MaxEntries == 0 {
		c.Store.Memory.MaxEntries = DefaultMemoryMaxEntries
	}
	if c.Tokens.CodeTTL == 0 {
		c.Tokens.CodeTTL = Duration(60 * time.Second)
	}
	if c.Tokens.AccessTokenTTL == 0 {
		c.Tokens.AccessTokenTTL = Duration(time.Hour)
	}
	if c.Tokens.IDTokenTTL == 0 {
		c.Tokens.IDTokenTTL = Duration(time.Hour)
	}
	if c.Tokens.RefreshIdleTTL == 0 {
		c.Tokens.RefreshIdleTTL = Duration(oidc.DefaultRefreshTokenIdleTTL)
	}
	if c.Tokens.RefreshAbsoluteTTL == 0 {
		c.Tokens.RefreshAbsoluteTTL = Duration(oidc.DefaultRefreshTokenAbsoluteTTL)
	}
	// tokens.refresh_reuse_grace defaults to 0: strict rotation (RFC 9700
	// §4.14.2), any reuse of a used refresh token revokes its family.
	if c.Login.PendingTTL == 0 {
		c.Login.PendingTTL = Duration(10 * time.Minute)
	}
	if c.Login.MaxPendingPerIP == 0 {
		// Generous: a whole office behind one address signs in at 9:00,
		// but a sign-in stops counting once WeChat sends the person back.
		c.Login.MaxPendingPerIP = 100
	}
	if c.Login.MaxPending == 0 {
		c.Login.MaxPending = 10_000
	}
	if c.Session.IdleTTL == 0 {
		c.Session.IdleTTL = Duration(8 * time.Hour)
	}
	if c.Session.AbsoluteTTL == 0 {
		c.Session.AbsoluteTTL = Duration(7 * 24 * time.Hour)
	}
	if c.Limits.TokenPerClient == (RateConfig{}) {
		c.Limits.TokenPerClient = RateConfig{Rate: 20, Burst: 40}
	}
	if c.Limits.TokenAuthFailures == (RateConfig{}) {
		// 10 failed client authentications a minute per client and address.
		c.Limits.TokenAuthFailures = RateConfig{Rate: 10.0 / 60, Burst: 10}
	}
	if c.Limits.LogoutPerIP == (RateConfig{}) {
		c.Limits.LogoutPerIP = RateConfig{Rate: 2, Burst: 20}
	}
	if c.Limits.AuthorizePerIP == (RateConfig{}) {
		// Generous: a whole office often shares one egress IP.
		c.Limits.AuthorizePerIP = RateConfig{Rate: 20, Burst: 100}
	}
	if c.Keys.PublishBeforeUse == 0 {
		c.Keys.PublishBeforeUse = Duration(time.Hour)
	}
	if c.Directory.Type == "" {
		c.Directory.Type = "sqlite"
	}
	if c.Directory.SignInTimeout == 0 {
		c.Directory.SignInTimeout = Duration(DefaultDirectorySignInTimeout)
	}
	if c.Access.Mode == "" {
		// The bridge fronts internal systems: admitting the whole of WeChat
		// must be written down, not defaulted.
		c.Access.Mode = AccessApproval
	}
	if c.Access.AdminGroup == "" {
		c.Access.AdminGroup = "admins"
	}
	if c.Access.PendingTTL == 0 {
		c.Access.PendingTTL = Duration(30 * time.Minute)
	}
	if c.Audit.Retention == 0 {
		c.Audit.Retention = Duration(180 * 24 * time.Hour)
	}
	if c.Keys.Algorithm == "" {
		c.Keys.Algorithm = "RS256" // every relying party must accept it (OpenID Connect Core 1.0 §15.1)
	}
	if c.Shutdown.Timeout == 0 {
		c.Shutdown.Timeout = Duration(10 * time.Second)
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
}
