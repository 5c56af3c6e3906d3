package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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
// container's labels) as soon as it starts, and makes the decision once,
// unused, so that the engine, the policy and the JSON codecs are warm.
// Create then takes the gathered inputs if they are still what it would
// read: same container, bundle and namespace, a lookup that did not fail,
// and a spec file with the same bytes. It always decides again, with its
// own request: what runs is decided by the Create, as if nothing had been
// read ahead. Labels read a few milliseconds before the Create are as good
// as labels read in it: nothing orders a label change against a Create.

// inputs are what a Create decides from, besides its request's options.
type inputs struct {
	// raw is the spec file as read; spec is it decoded.
	raw  []byte
	spec *specs.Spec
	// sandboxID is the pod sandbox a CRI container joins ("" for the
	// sandbox itself and standalone containers).
	sandboxID string
	// info is from containerd (empty when it could not be asked or did not
	// answer); lookupErr is why it did not answer.
	info      *containerInfo
	lookupErr error
}

// gather reads the inputs of container id's Create from its bundle and
// from containerd.
func (s *Service) gather(ctx context.Context, id, bundle string) (*inputs, error) {
	raw, orig, err := readBundleSpec(bundle)
	if err != nil {
		return nil, invalidf("container %s: %v", id, err)
	}
	sandboxID, err := podMember(id, orig.Annotations)
	if err != nil {
		return nil, invalidf("container %s: %v", id, err)
	}
	in := &inputs{raw: raw, spec: orig, sandboxID: sandboxID, info: &containerInfo{}}
	if s.labels != nil {
		if info, err := s.labels.lookup(ctx, id, sandboxID); err != nil {
			in.lookupErr = err
		} else {
			in.info = info
		}
	}
	return in, nil
}

// speculation is the inputs gathered at start for the Create of the
// container the shim was started for.
type speculation struct {
	id, bundle, ns string
	done           chan struct{} // closed when in is set
	in             *inputs       // nil: gathering failed
}

// inputsFor returns the inputs of r's Create: the speculation's when they
// still hold, else gathered now. The speculation is used at most once.
func (s *Service) inputsFor(ctx context.Context, r *taskAPI.CreateTaskRequest) (*inputs, error) {
	s.mu.Lock()
	sp := s.speculation
	s.speculation = nil
	s.mu.Unlock()
	if ns, _ := namespaces.Namespace(ctx); sp != nil && sp.id == r.ID && sp.bundle == r.Bundle && sp.ns == ns {
		<-sp.done
		if in := sp.in; in != nil && in.lookupErr == nil {
			if raw, _, err := readBundleSpecFile(r.Bundle); err == nil && bytes.Equal(raw, in.raw) {
				return in, nil
			}
		}
	}
	return s.gather(ctx, r.ID, r.Bundle)
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

// speculate gathers sp's inputs, then decides once with them and the
// container record's options (what containerd sends when the request
// carries none of its own) and encodes the result, for the warmth only.
func (s *Service) speculate(sp *speculation) {
	ctx := namespaces.WithNamespace(context.Background(), sp.ns)
	in, err := s.gather(ctx, sp.id, sp.bundle)
	if err != nil {
		in = nil
	}
	sp.in = in
	close(sp.done)
	if in == nil || in.lookupErr != nil {
		return
	}
	p, err := s.decide(ctx, &taskAPI.CreateTaskRequest{ID: sp.id, Bundle: sp.bundle, Options: in.info.RuntimeOptions}, in)
	if err == nil && p.spec != nil {
		_, _ = json.Marshal(p.spec)
		_, _ = json.Marshal(p.report)
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
