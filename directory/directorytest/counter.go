package directorytest

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync/atomic"
)

// StatementCounter counts what a Directory sends to its database: each
// statement executed or queried, and each BEGIN, COMMIT and ROLLBACK. Pass
// its Wrap as directory.Options.WrapConnector.
type StatementCounter struct{ n atomic.Int64 }

// Count is the number of statements since the start or the last Reset.
func (c *StatementCounter) Count() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *StatementCounter) Reset() { c.n.Store(0) }

// Wrap returns a connector whose connections count statements.
func (c *StatementCounter) Wrap(dc driver.Connector) driver.Connector {
	return countingConnector{Connector: dc, c: c}
}

type countingConnector struct {
	driver.Connector
	c *StatementCounter
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: cc.c}, nil
}

// countingConn forwards every optional interface database/sql uses, so the
// driver behaves as it would unwrapped.
type countingConn struct {
	driver.Conn
	c *StatementCounter
}

func (c *countingConn) Unwrap() driver.Conn { return c.Conn }

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := e.ExecContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.c.n.Add(1)
	}
	return r, err
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := q.QueryContext(ctx, query, args)
	if !errors.Is(err, driver.ErrSkip) {
		c.c.n.Add(1)
	}
	return r, err
}

// PrepareContext is used when the driver skipped the direct path; the
// statement counts when it runs.
func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var s driver.Stmt
	var err error
	if p, ok := c.Conn.(driver.ConnPrepareContext); ok {
		s, err = p.PrepareContext(ctx, query)
	} else {
		s, err = c.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: s, c: c.c}, nil
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	b, ok := c.Conn.(driver.ConnBeginTx)
	if !ok {
		return nil, errors.New("directorytest: the driver does not implement ConnBeginTx")
	}
	c.c.n.Add(1)
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &countingTx{Tx: tx, c: c.c}, nil
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingTx struct {
	driver.Tx
	c *StatementCounter
}

func (t *countingTx) Commit() error   { t.c.n.Add(1); return t.Tx.Commit() }
func (t *countingTx) Rollback() error { t.c.n.Add(1); return t.Tx.Rollback() }

type countingStmt struct {
	driver.Stmt
	c *StatementCounter
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	e, ok := s.Stmt.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("directorytest: the driver's statement does not implement StmtExecContext")
	}
	s.c.n.Add(1)
	return e.ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := s.Stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("directorytest: the driver's statement does not implement StmtQueryContext")
	}
	s.c.n.Add(1)
	return q.QueryContext(ctx, args)
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
