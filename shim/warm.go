package shim

import (
	"bytes"
	"context"
	"path/filepath"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"google.golang.org/protobuf/types/known/anypb"
)

// A shim process serves the containers of one pod, usually one container,
// and containerd's Create reaches it a few milliseconds after it starts
// (containerd connects and mounts the rootfs in between). The first Create
// would pay the process's cold costs and its waits: the label lookup dials
// containerd, initialises the protobuf types of its messages and makes its
// four or five calls; the spec is decoded and the engine runs for the first
// time; the node policy is parsed with its profiles.
//
// containerd writes the bundle before it starts the shim, and the shim is
// started in the bundle of the container it is started for (the pod's
// sandbox, or a standalone container), whose Create comes first. So the
// shim reads what that Create will decide from (gather: the spec and the
// container's labels) as soon as it starts, and decides with the options
// containerd sends a Create that carries none of its own: the container
// record's runtime options. The Create takes the gathered inputs if they
// are still what it would read (same container, bundle and namespace, a
// lookup that did not fail, a spec file with the same bytes), and the
// decision too if its request carries those same options; otherwise it
// decides again with its own. Labels read a few milliseconds before the
// Create are as good as labels read in it: nothing orders a label change
// against a Create.

// speculation is the inputs gathered at start for the Create of the
// container the shim was started for, and the decision made with them.
type speculation struct {
	id, bundle, ns string
	done           chan struct{} // closed when in and plan are set
	in             *inputs       // nil: gathering failed
	// plan is decided from in with opts, the container record's runtime
	// options; nil when that was refused (the Create refuses again, and
	// says why).
	opts *anypb.Any
	plan *plan
}

// inputsFor returns the inputs of r's Create: the speculation's when they
// still hold, else gathered now; and the speculation's plan when r carries
// the options it was decided with. The speculation is used at most once.
func (s *Service) inputsFor(ctx context.Context, r *taskAPI.CreateTaskRequest) (*inputs, *plan, error) {
	s.mu.Lock()
	sp := s.speculation
	s.speculation = nil
	s.mu.Unlock()
	if ns, _ := namespaces.Namespace(ctx); sp != nil && sp.id == r.ID && sp.bundle == r.Bundle && sp.ns == ns {
		<-sp.done
		if in := sp.in; in != nil && in.lookupErr == nil {
			if raw, _, err := readBundleSpecFile(r.Bundle); err == nil && bytes.Equal(raw, in.raw) {
				if sp.plan != nil && sameOptions(r.Options, sp.opts) {
					return in, sp.plan, nil
				}
				return in, nil, nil
			}
		}
	}
	in, err := s.gather(ctx, r.ID, r.Bundle)
	return in, nil, err
}

// sameOptions reports whether two options messages are the same bytes
// (both absent counts).
func sameOptions(a, b *anypb.Any) bool {
	return a.GetTypeUrl() == b.GetTypeUrl() && bytes.Equal(a.GetValue(), b.GetValue())
}

// startSpeculation registers the speculation for the container whose
// bundle the shim was started in; speculate runs it.
func (s *Service) startSpeculation(ns, bundle string) *speculation {
	sp := &speculation{id: filepath.Base(bundle), bundle: bundle, ns: ns, done: make(chan struct{})}
	s.mu.Lock()
	s.speculation = sp
	s.mu.Unlock()
	return sp
}

// speculate gathers sp's inputs and decides with them and the container
// record's options, encoding the bundle files.
func (s *Service) speculate(sp *speculation) {
	defer close(sp.done)
	ctx := namespaces.WithNamespace(context.Background(), sp.ns)
	in, err := s.gather(ctx, sp.id, sp.bundle)
	if err != nil || in.lookupErr != nil {
		return
	}
	sp.in = in
	sp.opts = in.info.RuntimeOptions
	caller, err := splitOptions(sp.opts)
	if err != nil {
		return
	}
	p, err := s.decide(ctx, &taskAPI.CreateTaskRequest{ID: sp.id, Bundle: sp.bundle, Options: sp.opts}, caller, in)
	if err == nil && p.encode() == nil {
		sp.plan = p
	}
}

// warm starts what the first Create would otherwise wait for: the
// connection to containerd (grpcLabels.warm), and either the speculation
// or, without one, the node policy's parse (policyCache keeps it by file
// identity, so a file changed in between is read again).
func warm(labels labelSource, policies *policyCache, speculate func()) {
	if g, ok := labels.(*grpcLabels); ok {
		go g.warm()
	}
	if speculate != nil {
		speculate()
		return
	}
	_, _ = policies.get(nodePolicySource())
}
