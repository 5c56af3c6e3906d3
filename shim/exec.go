package shim

import (
	"context"
	"encoding/json"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
)

// Exec hardens the process of an exec before the stock service runs it.
// containerd builds ExecProcessRequest.Spec (JSON of specs.Process) from
// its own stored spec, which the shim never hardened: without this, an
// exec would get the capabilities, the seccomp-free process and the cwd
// the init process was denied (and CVE-2024-21626 came in through
// `runc exec --cwd`). The engine holds it to the container's hardened
// spec; a profile that denies exec refuses it.
func (s *Service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*types.Empty, error) {
	st, err := s.state(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(refusedf("exec %s in container %s: %v", r.ExecID, r.ID, err))
	}
	if r.Spec == nil {
		return nil, errgrpc.ToGRPC(invalidf("exec %s in container %s: no process spec", r.ExecID, r.ID))
	}
	var p specs.Process
	if err := json.Unmarshal(r.Spec.GetValue(), &p); err != nil {
		return nil, errgrpc.ToGRPC(invalidf("exec %s in container %s: failed to parse the process spec: %v", r.ExecID, r.ID, err))
	}
	argv0 := ""
	if len(p.Args) > 0 {
		argv0 = p.Args[0]
	}
	// Never log the environment: its values may be secrets.
	l := log.G(ctx).WithFields(log.Fields{"id": r.ID, "exec": r.ExecID, "argv0": argv0, "mode": st.mode})
	if st.cfg.Profile == nil {
		// Audit mode without a profile: the container itself would have
		// been refused; run the exec unchanged.
		l.Info("hardened: exec (audit, no profile)")
		return s.TTRPCTaskService.Exec(ctx, r)
	}
	l = l.WithField("profile", st.cfg.Profile.Name)

	out, rep, err := hardening.HardenExec(&p, st.spec, st.cfg)
	if err != nil {
		if st.mode != policy.ModeAudit {
			l.WithError(err).Warn("hardened: exec refused")
			refusal := refusedf("exec %s (%s) in container %s refused by profile %s: %v", r.ExecID, argv0, r.ID, st.cfg.Profile.Name, err)
			s.publishRefusal(ctx, r.ID, r.ExecID, refusal)
			return nil, errgrpc.ToGRPC(refusal)
		}
		l.WithError(err).Warn("hardened: exec (audit: enforce would refuse it)")
		return s.TTRPCTaskService.Exec(ctx, r)
	}
	changes := 0
	if rep != nil {
		changes = len(rep.Changes)
	}
	l = l.WithField("changes", changes)
	if st.mode == policy.ModeAudit {
		l.Info("hardened: exec (audit, unchanged)")
		return s.TTRPCTaskService.Exec(ctx, r)
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	r.Spec = &anypb.Any{TypeUrl: r.Spec.GetTypeUrl(), Value: data}
	l.Info("hardened: exec")
	return s.TTRPCTaskService.Exec(ctx, r)
}
