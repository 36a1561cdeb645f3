package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// residentBytes returns this process's resident set size; 0 if it cannot
// be read.
func residentBytes() int64 {
	n, _ := readStatm("/proc/self/statm")
	return n
}

// residentBytesOf returns the resident set size of process pid.
func residentBytesOf(pid int) (int64, error) {
	return readStatm("/proc/" + strconv.Itoa(pid) + "/statm")
}

// readStatm reads the resident set size, in bytes, from a statm file.
func readStatm(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, fmt.Errorf("%s: %d fields, want at least 2", path, len(f))
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: resident pages %q: %w", path, f[1], err)
	}
	return pages * int64(os.Getpagesize()), nil
}

// openFileLimit returns RLIMIT_NOFILE as this process sees it. Go raises
// the soft limit to the hard limit when a program starts, so both are
// normally equal.
func openFileLimit() (soft, hard uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0
	}
	return rl.Cur, rl.Max
}

// clockTick is USER_HZ, the unit of CPU times in /proc/<pid>/stat; it is
// 100 on every Linux architecture Go supports.
const clockTick = 100

// processCPUOf returns the user+sys CPU time used so far by process pid,
// from /proc/<pid>/stat (10 ms resolution).
func processCPUOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count fields after the last ')'. utime and stime are fields 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name, want at least 13", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: cpu time %q: %w", pid, s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// loadAverage returns the 1-minute load average from /proc/loadavg; -1 if
// it cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return -1
	}
	return v
}
