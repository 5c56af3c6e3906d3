package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"

	"github.com/hardened-dev/hardened/internal/atomicfile"
	"github.com/hardened-dev/hardened/internal/decide"
)

// Create hardens the bundle, then has the stock service create the
// container with the runtime the policy chose. Every check runs before
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
		s.publishRefused(ctx, r.ID, err)
		s.keepRefusal(ctx, r.ID, err)
		return nil, errgrpc.ToGRPC(err)
	}
	staged, err := p.pin()
	if err != nil {
		var refused *decide.Error
		if errors.As(err, &refused) {
			log.G(ctx).WithError(err).WithField("id", r.ID).Warn("hardened: container refused")
			s.publishRefused(ctx, r.ID, err)
			s.keepRefusal(ctx, r.ID, err)
			return nil, errgrpc.ToGRPC(err)
		}
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: container %s: %w", r.ID, err))
	}
	return s.createPinned(ctx, r, p, staged)
}

// createPinned writes the bundle files and runs the stock Create. The
// staging directory (staged, "" for none) is removed when the stock Create
// returns, or kept until Start for a container whose runtime opens its
// mount sources then (decide.Pins.HoldUntilStart).
func (s *Service) createPinned(ctx context.Context, r *taskAPI.CreateTaskRequest, p *plan, staged string) (*taskAPI.CreateTaskResponse, error) {
	resp, err := s.createCommitted(ctx, r, p)
	if staged != "" {
		if err == nil && p.Pins != nil && p.Pins.HoldUntilStart {
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
	s.publishDecided(ctx, p)
	s.keepReport(context.WithoutCancel(ctx), p.Report, false)
	return resp, nil
}

// createCommitted writes the plan to the bundle and runs the stock Create.
func (s *Service) createCommitted(ctx context.Context, r *taskAPI.CreateTaskRequest, p *plan) (*taskAPI.CreateTaskResponse, error) {
	if err := p.commit(r.Bundle); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: container %s: %w", r.ID, err))
	}
	opts, err := typeurl.MarshalAnyToProto(p.Runc)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: failed to encode runc options: %w", err))
	}
	if testHookAfterPin != nil {
		if err := testHookAfterPin(ctx, r.ID, r.Bundle); err != nil {
			return nil, errgrpc.ToGRPC(refusedf("container %s: test hook after pinning failed: %v", r.ID, err))
		}
	}
	r.Options = opts
	rec := s.newRecord(ctx, r.Bundle, p)
	w, err := s.listenSeccomp(ctx, r.ID, p, rec)
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("hardened: container %s: %w", r.ID, err))
	}
	resp, err := s.TTRPCTaskService.Create(ctx, r)
	if w != nil {
		if err != nil {
			w.agent.Close()
		} else {
			p.state.denials = w
			go s.watch(w)
		}
	}
	if err == nil {
		p.state.written = watchWritten(r, p, rec)
	}
	return resp, err
}

// plan is a decided Create (decide.Plan) with the shim's record of the
// container and the bundle files, encoded.
type plan struct {
	*decide.Plan
	state *ctrState
	// files are the bundle files commit writes, encoded (encode).
	files *planFiles
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
	if p.Spec != nil && f.spec == nil {
		if f.spec, err = json.Marshal(p.Spec); err != nil {
			return fmt.Errorf("failed to encode the hardened spec: %w", err)
		}
	}
	if f.state == nil {
		if f.state, err = indentJSON(p.State()); err != nil {
			return fmt.Errorf("failed to encode %s: %w", stateFile, err)
		}
	}
	if f.report == nil {
		if f.report, err = indentJSON(p.Report); err != nil {
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
// (besides the runsc wrapper directory, which is node-wide and
// idempotent): it gathers the facts and has package decide decide.
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
	rep := p.Report
	l := log.G(ctx).WithFields(log.Fields{
		"id":      rep.ContainerID,
		"profile": rep.Profile,
		"runtime": rep.Runtime,
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
