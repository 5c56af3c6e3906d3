package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/atomicfile"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/internal/resolve"
)

// Create hardens the bundle, then has the stock service create the
// container with the backend the policy chose. Every check runs before
// anything is staged, written or created, so a refused Create leaves the
// bundle as containerd wrote it and nothing behind. The host paths the
// spec mounts are pinned (pin.go) right before the bundle files are
// written, and released once the runtime has mounted them.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	s.release.creating()
	defer s.release.created()
	p, err := s.plan(ctx, r)
	if err != nil {
		log.G(ctx).WithError(err).WithField("id", r.ID).Warn("hardened: container refused")
		return nil, errgrpc.ToGRPC(err)
	}
	staged, err := p.pin()
	if err != nil {
		var refused *shimError
		if errors.As(err, &refused) {
			log.G(ctx).WithError(err).WithField("id", r.ID).Warn("hardened: container refused")
			return nil, errgrpc.ToGRPC(err)
		}
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: container %s: %w", r.ID, err))
	}
	return s.createPinned(ctx, r, p, staged)
}

// createPinned writes the bundle files and runs the stock Create. The
// staging directory (staged, "" for none) is removed when the stock Create
// returns, or kept until Start for a container whose runtime opens its
// mount sources then (pinPlan.holdUntilStart).
func (s *Service) createPinned(ctx context.Context, r *taskAPI.CreateTaskRequest, p *plan, staged string) (*taskAPI.CreateTaskResponse, error) {
	resp, err := s.createCommitted(ctx, r, p)
	if staged != "" {
		if err == nil && p.pins.holdUntilStart {
			s.hold(r.ID, staged)
		} else {
			s.unstage(ctx, r.ID, staged)
		}
	}
	if err != nil {
		return resp, err
	}
	s.mu.Lock()
	s.containers[r.ID] = p.state
	s.mu.Unlock()
	p.log(ctx)
	return resp, nil
}

// createCommitted writes the plan to the bundle and runs the stock Create.
func (s *Service) createCommitted(ctx context.Context, r *taskAPI.CreateTaskRequest, p *plan) (*taskAPI.CreateTaskResponse, error) {
	if err := p.commit(r.Bundle); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: container %s: %w", r.ID, err))
	}
	opts, err := typeurl.MarshalAnyToProto(p.runc)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: failed to encode runc options: %w", err))
	}
	if testHookAfterPin != nil {
		if err := testHookAfterPin(ctx, r.ID, r.Bundle); err != nil {
			return nil, errgrpc.ToGRPC(refusedf("container %s: test hook after pinning failed: %v", r.ID, err))
		}
	}
	r.Options = opts
	return s.TTRPCTaskService.Create(ctx, r)
}

// plan is a decided Create: what to write in the bundle and how to run it.
type plan struct {
	report *Report
	state  *ctrState
	// spec replaces config.json (enforce mode); nil leaves it (audit mode).
	spec *specs.Spec
	runc *options.Options
	// files are the bundle files commit writes, encoded (encode).
	files *planFiles
	// pins are the host paths Create pins (pin.go); nil when none.
	pins *pinPlan
}

// planFiles are a plan's bundle files, encoded: config.json (nil in audit
// mode), hardening-state.json and hardening-report.json.
type planFiles struct {
	spec, state, report []byte
}

// encode encodes the plan's bundle files that are not encoded yet.
func (p *plan) encode() error {
	if p.files == nil {
		p.files = &planFiles{}
	}
	f := p.files
	var err error
	if p.spec != nil && f.spec == nil {
		if f.spec, err = json.Marshal(p.spec); err != nil {
			return fmt.Errorf("failed to encode the hardened spec: %w", err)
		}
	}
	if f.state == nil {
		if f.state, err = indentJSON(stateOf(p.state.mode, p.state.cfg)); err != nil {
			return fmt.Errorf("failed to encode %s: %w", stateFile, err)
		}
	}
	if f.report == nil {
		if f.report, err = indentJSON(p.report); err != nil {
			return fmt.Errorf("failed to encode %s: %w", reportFile, err)
		}
	}
	return nil
}

// dropReport forgets the encoded report after the report changed.
func (p *plan) dropReport() {
	if p.files != nil {
		p.files.report = nil
	}
}

// plan decides everything about a container without side effects
// (besides the runsc wrapper directory, which is node-wide and idempotent).
// In enforce mode every refusal returns an error; in audit mode the first
// one is recorded in the report and the container runs unchanged on runc.
func (s *Service) plan(ctx context.Context, r *taskAPI.CreateTaskRequest) (*plan, error) {
	caller, err := splitOptions(r.Options)
	if err != nil {
		return nil, invalidf("container %s: %v", r.ID, err)
	}
	in, decided, err := s.inputsFor(ctx, r)
	if err != nil {
		return nil, err
	}
	if decided != nil {
		return decided, nil
	}
	return s.decide(ctx, r, caller, in)
}

// decide is plan with the request's options decoded and the inputs read.
func (s *Service) decide(ctx context.Context, r *taskAPI.CreateTaskRequest, caller callerOptions, in *inputs) (*plan, error) {
	orig, sandboxID := in.spec, in.sandboxID
	rep := &Report{ContainerID: r.ID, Changes: []hardening.Change{}}

	// Labels come from containerd, or not at all when there is no
	// containerd to ask: never a silent fallback when containerd fails to
	// answer. The node policy comes from runtimeoptions on the request;
	// else from the container record's runtime options (containerd sends
	// task options instead of runtime options when it has any, e.g. runc
	// options for user namespaces); else it is the built-in default. So the
	// record is read first unless the request names the policy.
	info, lookupErr := in.info, in.lookupErr
	if s.labels == nil {
		rep.Notes = append(rep.Notes, "no containerd address: labels not read, decided from annotations only")
	} else if lookupErr != nil && caller.Policy == nil {
		return nil, refusedf("container %s: cannot read its record from containerd, refusing rather than deciding without it: %v", r.ID, lookupErr)
	}
	// The pod a container belongs to, as CRI recorded it: the annotations
	// that say it can be changed after CRI (NRI, CDI).
	if info != nil {
		if why := criIdentityProblem(r.ID, orig.Annotations, info.CRI); why != "" {
			return nil, refusedf("container %s: %s", r.ID, why)
		}
	}
	src := caller.Policy
	if src == nil {
		if rec, err := splitOptions(info.RuntimeOptions); err == nil && rec.Policy != nil {
			src = rec.Policy
			rep.Notes = append(rep.Notes, "policy taken from the container's runtime options (the task carried runc options)")
		}
	}
	if src == nil {
		node := nodePolicySource()
		src = &node
	}
	np, err := s.policies.get(*src)
	if err != nil {
		return nil, invalidf("container %s: %v", r.ID, err)
	}
	pol := np.pol
	audit := pol.Mode == policy.ModeAudit
	rep.Policy, rep.Mode = np.source, pol.Mode
	if lookupErr != nil {
		msg := fmt.Sprintf("container %s: cannot read its labels from containerd, refusing rather than deciding without them: %v", r.ID, lookupErr)
		if !audit {
			return nil, refusedf("%s", msg)
		}
		rep.Refused = "hardened: " + msg
		rep.Notes = append(rep.Notes, "audit mode: labels not read, decided from annotations only")
	}

	// refuse returns the enforce-mode error, or records the reason in audit
	// mode and returns nil.
	refuse := func(format string, args ...any) error {
		err := refusedf(format, args...)
		if !audit {
			return err
		}
		if rep.Refused == "" {
			rep.Refused = err.Error()
		}
		return nil
	}

	// Profile and backend.
	dec, err := resolve.Resolve(pol, np.set, resolve.Inputs{
		Annotations: orig.Annotations,
		ImageLabels: info.ImageLabels,
		Labels:      info.Labels,
	})
	if err != nil {
		if err := refuse("container %s: %v (policy %s)", r.ID, err, np.source); err != nil {
			return nil, err
		}
	}
	want := policy.RuntimeRunc
	if dec != nil {
		rep.Profile, rep.ProfileSource = dec.Profile.Name, dec.ProfileSource
		rep.RuntimeSource = dec.RuntimeSource
		rep.Notes = append(rep.Notes, dec.Notes...)
		want = dec.Runtime
	}
	use := want
	if audit && want != policy.RuntimeRunc {
		use = policy.RuntimeRunc
		rep.Notes = append(rep.Notes, fmt.Sprintf("audit mode: enforce would run this container on %s (%s); it runs on runc", want, dec.RuntimeSource))
	}

	// One backend per pod: the sandbox decided it and recorded it in its
	// bundle; a container that would run elsewhere cannot join the pod.
	var sbCgroups string
	if sandboxID != "" {
		sb, cg, err := readSandbox(r.Bundle, sandboxID)
		sbCgroups = cg
		switch {
		case err != nil:
			if err := refuse("container %s: %v", r.ID, err); err != nil {
				return nil, err
			}
		case sb != use:
			if err := refuse("pod sandbox %s runs on %s; container %s would run on %s (%s)", sandboxID, sb, r.ID, use, rep.RuntimeSource); err != nil {
				return nil, err
			}
			rep.Notes = append(rep.Notes, fmt.Sprintf("audit mode: runs on %s, the backend of pod sandbox %s", sb, sandboxID))
			use = sb
		}
	}
	rep.Runtime = use

	// Joining a host namespace by a path other than /proc/1/ns/* is only
	// visible to a stat: the engine compares paths.
	if dec != nil && dec.Profile.Namespaces.DenyHost {
		host, err := hostNamespaceJoins(orig, "/proc")
		if err != nil {
			return nil, invalidf("container %s: %v", r.ID, err)
		}
		if len(host) > 0 {
			if err := refuse("container %s refused by profile %s (%s): namespaces: %s", r.ID, dec.Profile.Name, dec.ProfileSource, strings.Join(host, "; ")); err != nil {
				return nil, err
			}
		}
	}

	be, err := prepareBackend(pol, use, s.runDir)
	if err != nil {
		return nil, refusedf("container %s: %v", r.ID, err)
	}
	if be.Name == policy.RuntimeRunc {
		if err := s.gate(ctx, be.Binary); err != nil {
			if err := refuse("container %s: runc %s refused: %v", r.ID, be.Binary, err); err != nil {
				return nil, err
			}
		}
	}
	rep.Binary = be.Binary

	// The spec.
	st := &ctrState{bundle: r.Bundle, mode: pol.Mode, spec: orig, origPids: pidsLimit(orig)}
	st.curPids = st.origPids
	var hardened *specs.Spec
	if dec != nil {
		st.cfg = hardening.Config{
			Profile:      dec.Profile,
			Host:         hardening.Host{AppArmor: s.appArmor()},
			AppArmorMode: pol.AppArmor,
			AllowedHooks: pol.AllowedHooks,
			HostPaths:    pol.AllowHostPathPrefixes,
			ContainerID:  r.ID,
			// An app container's cgroup sits next to its sandbox's.
			SandboxCgroupsPath: sbCgroups,
			// In audit mode, report what enforce would do on its backend.
			Backend: want,
			// The runsc wrapper always passes --oci-seccomp.
			RunscOCISeccomp: true,
		}
		if !audit {
			st.cfg.Backend = use
		}
		out, hrep, err := hardening.Harden(orig, st.cfg)
		if err != nil {
			if err := refuse("container %s refused by profile %s (%s; runtime %s from %s; policy %s): %v", r.ID, dec.Profile.Name, dec.ProfileSource, st.cfg.Backend, dec.RuntimeSource, np.source, err); err != nil {
				return nil, err
			}
		} else {
			hardened = out
			st.spec = out
			rep.Changes = append(rep.Changes, hrep.Changes...)
			rep.NotEnforced = hrep.NotEnforced
		}
	}
	// The AppArmor profile the spec names must be in the kernel before runc
	// sees the spec (runc would fail after cgroups and mounts exist).
	if hardened != nil && !audit && st.cfg.Host.AppArmor && use == policy.RuntimeRunc {
		if name := hardened.Process.ApparmorProfile; name != "" && name != "unconfined" {
			if err := s.apparmor.ensure(name); err != nil {
				return nil, refusedf("container %s: %v", r.ID, err)
			}
		}
	}
	if use == policy.RuntimeGVisor {
		rep.Notes = append(rep.Notes, "gvisor: runsc runs with --oci-seccomp, so the spec's seccomp filter applies inside the sandbox")
		rep.Notes = append(rep.Notes, gvisorStartNote)
	}

	opts, notes := runcOptions(caller.Runc, be.Binary, be.Root)
	rep.Notes = append(rep.Notes, notes...)

	p := &plan{report: rep, state: st, runc: opts}
	if !audit {
		p.spec = hardened
		st.curPids = pidsLimit(hardened)
	}
	// Host paths are judged as the host resolves them when Create pins
	// them (pin.go): the engine compares sources as written, so a bind
	// source that is a symlink to a denied path (/data/x -> /proc) is only
	// caught there.
	if hardened != nil {
		if err := s.pinsFor(ctx, r.ID, p, hardened, audit, use); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// commit writes the plan to the bundle: the hardened config.json (enforce
// mode), the state and the report.
func (p *plan) commit(bundle string) error {
	if err := p.encode(); err != nil {
		return err
	}
	if p.files.spec != nil {
		if err := writeBundleSpec(bundle, p.files.spec); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(filepath.Join(bundle, stateFile), p.files.state, 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", stateFile, err)
	}
	if err := atomicfile.Write(filepath.Join(bundle, reportFile), p.files.report, 0o644); err != nil {
		return fmt.Errorf("failed to write %s: %w", reportFile, err)
	}
	return nil
}

func (p *plan) log(ctx context.Context) {
	rep := p.report
	l := log.G(ctx).WithFields(log.Fields{
		"id":      rep.ContainerID,
		"profile": rep.Profile,
		"backend": rep.Runtime,
		"changes": len(rep.Changes),
		"mode":    rep.Mode,
	})
	for _, c := range rep.Changes {
		f := log.Fields{"rule": c.Rule, "field": c.Field}
		// Environment values may be secrets: never logged.
		if !strings.HasPrefix(c.Field, "process.env") {
			f["before"], f["after"] = c.Before, c.After
		}
		l.WithFields(f).Debug("hardened: change")
	}
	if rep.Refused != "" {
		l = l.WithField("wouldRefuse", rep.Refused)
	}
	l.Info("hardened: container")
}
