package bridge

import (
	"context"
	"errors"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
)

// oidcStorage adapts a store.Store to oidc.Storage: absent keys are (nil, nil).
type oidcStorage struct{ s store.Store }

func (a oidcStorage) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return a.s.Put(ctx, key, value, ttl)
}

func (a oidcStorage) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := a.s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (a oidcStorage) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := a.s.Take(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (a oidcStorage) Delete(ctx context.Context, key string) error {
	return a.s.Delete(ctx, key)
}

func (a oidcStorage) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	return a.s.Update(ctx, key, ttl, fn)
}
