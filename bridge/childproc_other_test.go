//go:build !linux

package bridge

import "syscall"

// childProcAttr: outside Linux there is no parent-death signal; the tests'
// cleanups stop what they started.
func childProcAttr() *syscall.SysProcAttr { return nil }
