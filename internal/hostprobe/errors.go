package hostprobe

import "errors"

// Sentinel errors. Test with errors.Is.
var (
	// ErrVulnerableRuntime: the runtime's version has a known container
	// escape; the shim refuses to use it.
	ErrVulnerableRuntime = errors.New("vulnerable runtime")
	// ErrBadVersion: a version string or --version output does not parse.
	ErrBadVersion = errors.New("unrecognised version")
	// ErrProbe: running the runtime to learn its version failed.
	ErrProbe = errors.New("failed to probe runtime")
)
