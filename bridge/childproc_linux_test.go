package bridge

import "syscall"

// childProcAttr makes a server the tests start die with the test binary,
// even when the binary is killed (a timeout, ^C) before its cleanups run.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
