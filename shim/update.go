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

// Update checks a resources update (JSON of specs.LinuxResources) with
// hardening.HardenUpdate before the stock service applies it: the pids
// limit (a fork-bomb bound) can be lowered, never raised or removed, and
// only the cgroup files an update may set pass.
func (s *Service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*types.Empty, error) {
	st, err := s.state(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(refusedf("update of container %s: %v", r.ID, err))
	}
	var res specs.LinuxResources
	if r.Resources != nil && len(r.Resources.GetValue()) > 0 {
		if err := json.Unmarshal(r.Resources.GetValue(), &res); err != nil {
			return nil, errgrpc.ToGRPC(invalidf("update of container %s: failed to parse the resources: %v", r.ID, err))
		}
	}
	profile := "(none)"
	if st.cfg.Profile != nil {
		profile = st.cfg.Profile.Name
	}
	l := log.G(ctx).WithFields(log.Fields{"id": r.ID, "mode": st.mode, "profile": profile})
	audit := st.mode == policy.ModeAudit
	if st.cfg.Profile == nil {
		// Only in audit mode: the container runs without a resolved profile.
		l.Info("hardened: update (audit: no profile to check it against)")
		return s.TTRPCTaskService.Update(ctx, r)
	}

	st.mu.Lock()
	defer st.mu.Unlock()
	out, rep, err := hardening.HardenUpdate(&res, hardening.Running{PidsLimit: st.curPids, RequestedPidsLimit: st.origPids}, st.cfg)
	if err != nil {
		if !audit {
			l.WithError(err).Warn("hardened: update refused")
			return nil, errgrpc.ToGRPC(refusedf("update of container %s refused by profile %s: %v", r.ID, profile, err))
		}
		l.WithError(err).Warn("hardened: update (audit: enforce would refuse it)")
		return s.TTRPCTaskService.Update(ctx, r)
	}
	if audit {
		return s.TTRPCTaskService.Update(ctx, r)
	}
	if len(rep.Changes) > 0 {
		data, err := json.Marshal(out)
		if err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		r.Resources = &anypb.Any{TypeUrl: r.Resources.GetTypeUrl(), Value: data}
		for _, c := range rep.Changes {
			l.WithFields(log.Fields{"field": c.Field, "before": c.Before, "after": c.After}).Info("hardened: update changed")
		}
	}
	resp, err := s.TTRPCTaskService.Update(ctx, r)
	if err == nil && out.Pids != nil && out.Pids.Limit != nil {
		v := *out.Pids.Limit
		st.curPids = &v
	}
	return resp, err
}
