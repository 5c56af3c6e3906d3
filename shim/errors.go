package shim

import "github.com/hardened-dev/hardened/internal/decide"

// The shim's errors are decide.Error, the one refusal type: the task API
// boundary turns it into a TTRPC status (errgrpc.ToGRPC) whose message is
// its text; containerd turns it back and ctr/crictl print it.
var (
	// refusedf is a container (or exec, or update) the shim will not run:
	// a policy decision, FailedPrecondition.
	refusedf = decide.Refusedf
	// invalidf is a request or configuration the shim cannot read:
	// InvalidArgument.
	invalidf = decide.Invalidf
)
