//go:build !linux

package loadtest

import (
	"errors"
	"time"
)

var errNoCPUTime = errors.New("loadtest: CPU times are measured on Linux only")

func selfCPU() (time.Duration, error)           { return 0, errNoCPUTime }
func processCPU(pid int) (time.Duration, error) { return 0, errNoCPUTime }
