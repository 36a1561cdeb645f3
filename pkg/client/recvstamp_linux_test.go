package client

import (
	"syscall"
	"testing"
	"unsafe"
)

// TestKernelStamp reads the receive time out of control messages laid
// out with the system's own types, and finds none in other messages.
func TestKernelStamp(t *testing.T) {
	t.Parallel()
	const want = 1796174572026499535
	message := func(level, typ int32) []byte {
		b := make([]byte, syscall.CmsgSpace(int(unsafe.Sizeof(syscall.Timespec{}))))
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = level, typ
		h.SetLen(syscall.CmsgLen(int(unsafe.Sizeof(syscall.Timespec{}))))
		*(*syscall.Timespec)(unsafe.Pointer(&b[syscall.CmsgLen(0)])) = syscall.NsecToTimespec(want)
		return b
	}
	tests := []struct {
		name string
		oob  []byte
		want int64
	}{
		{"SCM_TIMESTAMPNS", message(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS), want},
		{"SCM_TIMESTAMP (microseconds)", message(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMP), 0},
		{"another level", message(syscall.IPPROTO_TCP, syscall.SCM_TIMESTAMPNS), 0},
		{"cut short", message(syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS)[:syscall.CmsgLen(0)+4], 0},
		{"none", nil, 0},
	}
	for _, tt := range tests {
		if got := kernelStamp(tt.oob); got != tt.want {
			t.Errorf("%s: kernelStamp = %d, want %d", tt.name, got, tt.want)
		}
	}
}
