package shim

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// shimError is an error with its errdefs class. The task API boundary
// turns it into a TTRPC status (errgrpc.ToGRPC) whose message is msg;
// containerd turns it back and ctr/crictl print it.
type shimError struct {
	msg  string
	kind error
}

func (e *shimError) Error() string { return e.msg }
func (e *shimError) Unwrap() error { return e.kind }

// refusedf is a container (or exec, or update) the shim will not run: a
// policy decision, FailedPrecondition.
func refusedf(format string, args ...any) error {
	return &shimError{msg: "hardened: " + fmt.Sprintf(format, args...), kind: errdefs.ErrFailedPrecondition}
}

// invalidf is a request or configuration the shim cannot read:
// InvalidArgument.
func invalidf(format string, args ...any) error {
	return &shimError{msg: "hardened: " + fmt.Sprintf(format, args...), kind: errdefs.ErrInvalidArgument}
}
