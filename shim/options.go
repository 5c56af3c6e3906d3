package shim

import (
	"fmt"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types/runc/options"

	"github.com/hardened-dev/hardened/internal/policy"

	// Registers runtimeoptions.v1.Options with typeurl: without it every
	// call carrying them fails with "type with url runtimeoptions.v1.Options:
	// not found".
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
)

// Runtime options.
//
// containerd hands a shim one options message: to the manager's Start (as
// a BootstrapParams extension), Info (stdin) and the task service's Create
// (CreateTaskRequest.Options). The runc shim code reads it as runc
// options.Options. What this shim gets instead is, from `ctr run
// --runtime-config-path F` and from CRI (the runtime's `options` table in
// containerd's config), runtimeoptions/v1.Options: ConfigPath names the
// node policy file, or ConfigBody holds it. This file splits what was sent
// into the policy source and the caller's runc options, and builds the
// runc options the stock code reads. BinaryName and Root never come from
// the caller: the policy picks the OCI binary.

// policySource says where the node policy comes from. The zero value is
// the built-in default policy.
type policySource struct {
	// Path is a policy file (runtimeoptions ConfigPath).
	Path string
	// Body is the policy itself (runtimeoptions ConfigBody).
	Body []byte
}

func (p policySource) isDefault() bool { return p.Path == "" && len(p.Body) == 0 }

func (p policySource) String() string {
	switch {
	case p.Path != "":
		return p.Path
	case len(p.Body) > 0:
		return "runtime options (inline policy)"
	default:
		return "built-in default"
	}
}

// DefaultPolicyPath is the node policy used when containerd sends none
// (no --runtime-config-path, no options table for the CRI runtime);
// $HARDENED_POLICY overrides it. A CRI runtime that has an options table
// makes containerd's client fail to read them for pods with user
// namespaces (it expects runc options), so operators of such nodes leave
// the table out and install the policy here.
const DefaultPolicyPath = policy.NodePath

// nodePolicySource is where the policy comes from when the request names
// none: the node's policy file if it exists, else the built-in default
// (policy.NodeFile). A file that exists but cannot be read or parsed
// refuses containers (the policy cache reports it), never falls back to
// the default.
func nodePolicySource() policySource {
	return policySource{Path: policy.NodeFile()}
}

// callerOptions is what a caller's options message says.
type callerOptions struct {
	// Policy is set when the message was runtimeoptions.
	Policy *policySource
	// Runc is set when the message was runc options (CRI's task options for
	// user namespaces, `ctr --runc-*` flags): its IO and cgroup settings are
	// kept, its binary and root are not.
	Runc *options.Options
}

// splitOptions decodes an options message. No message, or an empty one,
// gives a zero callerOptions.
func splitOptions(a *anypb.Any) (callerOptions, error) {
	if a == nil || a.GetTypeUrl() == "" {
		return callerOptions{}, nil
	}
	v, err := typeurl.UnmarshalAny(a)
	if err != nil {
		return callerOptions{}, fmt.Errorf("failed to decode runtime options %q: %w", a.GetTypeUrl(), errdefs.ErrInvalidArgument)
	}
	switch o := v.(type) {
	case *runtimeoptions.Options:
		return callerOptions{Policy: &policySource{Path: o.GetConfigPath(), Body: o.GetConfigBody()}}, nil
	case *options.Options:
		return callerOptions{Runc: o}, nil
	default:
		return callerOptions{}, fmt.Errorf("unsupported runtime options type %T (want runtimeoptions.v1.Options or runc options): %w", v, errdefs.ErrInvalidArgument)
	}
}

// translateBootstrap rewrites a runtimeoptions extension of Start's
// parameters into runc options, so the stock manager (which looks for runc
// options by type) reads a message of the type it knows. runtimeoptions
// carry nothing the manager uses (it only reads ShimCgroup), so the result
// is an empty runc options message; the policy is read by Create.
func translateBootstrap(p *bootapi.BootstrapParams) error {
	for _, ext := range p.GetExtensions() {
		v := ext.GetValue()
		if v == nil || !v.MessageIs(&runtimeoptions.Options{}) {
			continue
		}
		a, err := anypb.New(&options.Options{})
		if err != nil {
			return err
		}
		ext.Value = a
	}
	return nil
}
