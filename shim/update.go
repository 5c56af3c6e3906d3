package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-dev/hardened/internal/policy"
)

// Update checks a resources update (JSON of specs.LinuxResources) against
// the container's pids limit before the stock service applies it: the pids
// limit (a fork-bomb bound) can be lowered, never raised or removed.
// Other resources pass unchanged.
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
	var profileLimit int64
	profile := "(none)"
	if st.cfg.Profile != nil {
		profileLimit, profile = st.cfg.Profile.Pids.Limit, st.cfg.Profile.Name
	}
	l := log.G(ctx).WithFields(log.Fields{"id": r.ID, "mode": st.mode, "profile": profile})

	st.mu.Lock()
	defer st.mu.Unlock()
	limit, clamped, err := checkPidsUpdate(&res, st.curPids, st.origPids, profileLimit)
	if err != nil {
		if st.mode != policy.ModeAudit {
			l.WithError(err).Warn("hardened: update refused")
			return nil, errgrpc.ToGRPC(refusedf("update of container %s refused by profile %s: %v", r.ID, profile, err))
		}
		l.WithError(err).Warn("hardened: update (audit: enforce would refuse it)")
		return s.TTRPCTaskService.Update(ctx, r)
	}
	if clamped && st.mode != policy.ModeAudit {
		res.Pids.Limit = limit
		data, err := json.Marshal(&res)
		if err != nil {
			return nil, errgrpc.ToGRPC(err)
		}
		r.Resources = &anypb.Any{TypeUrl: r.Resources.GetTypeUrl(), Value: data}
		l.WithField("pids", *limit).Info("hardened: update keeps the container's pids limit")
	}
	resp, err := s.TTRPCTaskService.Update(ctx, r)
	if err == nil && limit != nil && st.mode != policy.ModeAudit {
		v := *limit
		st.curPids = &v
	}
	return resp, err
}

// checkPidsUpdate decides a pids update. It returns the limit the update
// sets (nil: the update leaves pids alone), whether that limit replaces
// the requested one, or why the update is refused.
//
// The ceiling is the container's current limit, else the profile's. A
// request at or below it passes; a limit <= 0 (runc: "max") or above it is
// refused, with one exception: CRI's UpdateContainerResources re-sends the
// pids limit of containerd's stored, unhardened spec with every resize, so
// a request equal to that original limit is kept at the current one
// instead of failing the resize.
func checkPidsUpdate(res *specs.LinuxResources, cur, orig *int64, profileLimit int64) (*int64, bool, error) {
	for k := range res.Unified {
		// cgroup v2 unified keys are written as is by runc: pids.max there
		// would bypass the check below.
		if strings.HasPrefix(k, "pids.") {
			return nil, false, fmt.Errorf("resources.unified[%q]: the pids limit can only be changed through resources.pids", k)
		}
	}
	if res.Pids == nil || res.Pids.Limit == nil {
		return nil, false, nil
	}
	req := *res.Pids.Limit
	var ceiling *int64
	if cur != nil && *cur > 0 {
		ceiling = cur
	}
	if profileLimit > 0 && (ceiling == nil || profileLimit < *ceiling) {
		ceiling = &profileLimit
	}
	switch {
	case ceiling == nil:
		return &req, false, nil
	case req > 0 && req <= *ceiling:
		return &req, false, nil
	case orig != nil && req == *orig:
		v := *ceiling
		return &v, true, nil
	case req <= 0:
		return nil, false, fmt.Errorf("pids limit %d removes the limit of %d", req, *ceiling)
	default:
		return nil, false, fmt.Errorf("pids limit %d is above the container's limit of %d", req, *ceiling)
	}
}
