// Package store owns the provider's short-lived server-side state: pending
// authorization requests, authorization codes, opaque-token hashes, SSO
// sessions and refresh-token families. Everything is a value of bytes under a
// string key with a time to live; callers own the encoding.
//
// Two implementations satisfy [Store]: [Memory] (go-cache, the embedded
// default for a single replica) and [Redis] (shared, for several replicas).
// Both pass the same conformance suite in package storetest, which is what
// "implements Store" means here: a third backend is correct when it passes
// storetest.Run.
//
// The operations that security depends on are atomic in both: [Store.Take]
// hands a value to exactly one of many concurrent callers (an authorization
// code is redeemed once), [Store.PutNew] stores only if absent, and
// [Store.Update] serialises read-modify-write cycles (a refresh-token family
// is rotated by one request at a time).
package store
