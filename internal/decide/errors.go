package decide

import (
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
)

// Error is a container (or exec, or update) the shim will not run, or a
// request or configuration it cannot read, with its errdefs class: the
// envelope the task API boundary turns into a TTRPC status whose message
// is Msg (containerd turns it back for ctr and crictl). The refusal inside
// it is the one refusal type, *hardening.RefusalError (rule, the input
// that caused it, reason), from the engine, the resolver or the decision:
// errors.As reaches it, in the shim and in hardenctl alike.
type Error struct {
	Msg string
	// Kind is errdefs.ErrFailedPrecondition (refused by policy) or
	// errdefs.ErrInvalidArgument (unreadable request or configuration).
	Kind error
	// Cause is the engine's or resolver's error the message quotes, if any.
	Cause error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap gives the errdefs class alone: the task API boundary
// (errgrpc.ToGRPC) classifies the error by what it unwraps to, and the
// cause's own class (an engine error about a malformed field) must not
// change a refusal's.
func (e *Error) Unwrap() error { return e.Kind }

// As reaches into the cause: errors.As finds the engine's
// *hardening.RefusalError (rule, field, reason) in a refusal.
func (e *Error) As(target any) bool {
	return e.Cause != nil && errors.As(e.Cause, target)
}

// Refusedf is a policy decision: FailedPrecondition.
func Refusedf(format string, args ...any) error {
	return newError(errdefs.ErrFailedPrecondition, format, args)
}

// Invalidf is a request or configuration that cannot be read:
// InvalidArgument.
func Invalidf(format string, args ...any) error {
	return newError(errdefs.ErrInvalidArgument, format, args)
}

func newError(kind error, format string, args []any) error {
	e := &Error{Msg: "hardened: " + fmt.Sprintf(format, args...), Kind: kind}
	for _, a := range args {
		if err, ok := a.(error); ok {
			e.Cause = err
			break
		}
	}
	return e
}
