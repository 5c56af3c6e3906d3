package shim

import (
	"context"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// Facts. A Create is decided by decide.Decide from facts the shim gathers:
// the spec and the container's records in containerd (gather, also run
// ahead at start, warm.go), then the policy, the pod's sandbox and the
// host (decide). Nothing here decides.

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
	sandboxID, err := decide.PodMember(id, orig.Annotations)
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

// decide gathers the rest of the facts of r's Create (the policy, the
// pod's sandbox, the host) around its inputs, decides, and loads the
// AppArmor profile the hardened spec names.
func (s *Service) decide(ctx context.Context, r *taskAPI.CreateTaskRequest, caller callerOptions, in *inputs) (*plan, error) {
	f := decide.Facts{
		ID: r.ID, Spec: in.spec,
		PolicyFromRequest: caller.Policy != nil,
		Runc:              caller.Runc,
		Containerd: decide.Containerd{
			Asked: s.labels != nil, Err: in.lookupErr,
			Labels: in.info.Labels, ImageLabels: in.info.ImageLabels, CRI: in.info.CRI,
			NamespaceLabels: in.info.NamespaceLabels,
		},
	}
	if ns, ok := namespaces.Namespace(ctx); ok {
		f.Namespace = ns
	} else {
		f.Namespace = s.namespace
	}
	// The node policy comes from runtimeoptions on the request; else from
	// the container record's runtime options (containerd sends task
	// options instead of runtime options when it has any, e.g. runc
	// options for user namespaces); else it is the node's file, or the
	// built-in default.
	src := caller.Policy
	if src == nil {
		if rec, err := splitOptions(in.info.RuntimeOptions); err == nil && rec.Policy != nil {
			src, f.Policy.FromRecord = rec.Policy, true
		}
	}
	if src == nil {
		node := nodePolicySource()
		src = &node
	}
	np, err := s.policies.get(*src)
	if err != nil {
		f.Policy.Err = err
	} else {
		f.Policy.Policy, f.Policy.Profiles, f.Policy.Source = np.pol, np.set, np.source
		f.Host = s.hostFacts(ctx, np.pol, in.spec)
	}
	if in.sandboxID != "" {
		sb := &f.Sandbox
		sb.Runtime, sb.CgroupsPath, sb.Err = readSandbox(r.Bundle, in.sandboxID)
	}
	dp, err := decide.Decide(f)
	if err != nil {
		return nil, err
	}
	if dp.AppArmorProfile != "" {
		// In the kernel before runc sees the spec (runc would fail after
		// cgroups and mounts exist).
		if err := s.apparmor.ensure(dp.AppArmorProfile); err != nil {
			return nil, refusedf("container %s: %v", r.ID, err)
		}
	}
	st := &ctrState{bundle: r.Bundle, mode: dp.Mode, cfg: dp.Config, spec: dp.Hardened, origPids: pidsLimit(in.spec)}
	st.curPids = st.origPids
	if dp.Spec != nil {
		st.curPids = pidsLimit(dp.Hardened)
	}
	return &plan{Plan: dp, state: st}, nil
}

// hostFacts gathers what the decision needs to know about the node: the
// policy's runtimes as prepared here, the runc gate's verdict, AppArmor,
// and whether the spec's namespace paths are the host's.
func (s *Service) hostFacts(ctx context.Context, pol *policy.Policy, spec *specs.Spec) decide.Host {
	var w hostfacts.Wrapper
	w.Path, w.Err = s.wrapper()
	h := decide.Host{AppArmor: s.appArmor(), RunDir: s.runDir, Runtimes: hostfacts.Runtimes(pol, s.runDir, w, true)}
	if rc := h.Runtimes[profiles.RuntimeRunc]; rc.Err == nil {
		h.RuncGate = s.gate(ctx, rc.Binary)
	}
	h.HostNamespaces, h.HostNamespacesErr = hostfacts.HostNamespaces(spec, "/proc")
	return h
}
