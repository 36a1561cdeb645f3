//go:build !(linux || darwin)

package fdlimit

// Get reports ErrUnsupported: this platform's open-file limit is not
// checked.
func Get() (Limit, error) { return Limit{}, ErrUnsupported }

func setSoft(Limit, uint64) error { return ErrUnsupported }
