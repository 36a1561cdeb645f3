//go:build linux || darwin

package fdlimit

import "syscall"

// Get returns the process's open-file limit.
func Get() (Limit, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return Limit{}, err
	}
	return Limit{Soft: r.Cur, Hard: r.Max}, nil
}

// setSoft sets the soft limit to soft, keeping the hard limit l.Hard.
func setSoft(l Limit, soft uint64) error {
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: soft, Max: l.Hard})
}
