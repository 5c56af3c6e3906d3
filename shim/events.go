package shim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"

	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/internal/reports"
)

// Events. The shim publishes what it decided about each container on
// containerd's event bus, next to containerd's own /tasks/* events:
//
//	/hardened/container/hardened  a container runs hardened (enforce mode)
//	/hardened/container/audited   a container runs unchanged (audit mode):
//	                              what enforce would have changed or refused
//	/hardened/container/refused   a container (or an exec into it:
//	                              exec_id) was refused
//
// The payload is a containerd.events.ContainerUpdate (eventPayload), a
// type every containerd client (ctr events included) decodes: its id is the
// container, its labels these fields (absent when empty): profile, profile_source, runtime, runtime_source, mode,
// policy, changes (number), rule, field, reason (a refusal's, or in audit
// mode what enforce would have refused), message (docs/events.md).
const (
	TopicHardened = "/hardened/container/hardened"
	TopicAudited  = "/hardened/container/audited"
	TopicRefused  = "/hardened/container/refused"
)

// publishTimeout bounds a refusal's publication, which the Create waits
// for (the shim may exit right after a refused Create).
const publishTimeout = 2 * time.Second

// publishDecided publishes a created container's event, without holding up
// the Create.
func (s *Service) publishDecided(ctx context.Context, p *plan) {
	if s.events == nil {
		return
	}
	rep := p.Report
	topic := TopicHardened
	fields := map[string]any{
		"container_id": rep.ContainerID, "profile": rep.Profile, "profile_source": rep.ProfileSource,
		"runtime": string(rep.Runtime), "runtime_source": rep.RuntimeSource, "mode": string(rep.Mode),
		"policy": rep.Policy, "changes": len(rep.Changes),
	}
	if rep.Mode == policy.ModeAudit {
		topic = TopicAudited
		fields["reason"] = rep.Refused
	}
	if a := rep.Audit; a != nil {
		fields["audit_profile"], fields["audit_changes"], fields["audit_reason"] = a.Profile, len(a.Changes), a.Refused
	}
	ctx = context.WithoutCancel(ctx)
	s.background.Go(func() { s.publish(ctx, topic, fields) })
}

// keepReport keeps a copy of a container's report under the node's
// reports directory (package reports), for after its bundle is gone. A
// created container's is written after the Create returns; a refused
// one's (the refusal) before.
func (s *Service) keepReport(ctx context.Context, rep *decide.Report, wait bool) {
	if s.reportsDir == "" {
		return
	}
	ns, ok := namespaces.Namespace(ctx)
	if !ok {
		ns = s.namespace
	}
	keep := func() {
		if err := reports.Keep(s.reportsDir, ns, rep); err != nil {
			log.G(ctx).WithError(err).WithField("id", rep.ContainerID).Warn("hardened: failed to keep the report")
		}
	}
	if wait {
		keep()
		return
	}
	s.background.Go(keep)
}

// keepRefusal keeps the record of a refused container: its refusal.
func (s *Service) keepRefusal(ctx context.Context, id string, err error) {
	var de *decide.Error
	if errors.As(err, &de) {
		s.keepReport(ctx, &decide.Report{ContainerID: id, Mode: policy.ModeEnforce, Changes: []hardening.Change{}, Refused: err.Error()}, true)
	}
}

// publishRefused publishes a refusal: its rule, the input that caused it
// and the reason when it is a *hardening.RefusalError, and the message.
func (s *Service) publishRefused(ctx context.Context, id string, err error) {
	s.publishRefusal(ctx, id, "", err)
}

// publishRefusal publishes a refused Create (execID "") or exec.
func (s *Service) publishRefusal(ctx context.Context, id, execID string, err error) {
	if s.events == nil {
		return
	}
	var de *decide.Error
	if !errors.As(err, &de) {
		return // not a refusal: a failure to run
	}
	fields := map[string]any{"container_id": id, "exec_id": execID, "message": err.Error()}
	var re *hardening.RefusalError
	if errors.As(err, &re) {
		fields["rule"], fields["field"], fields["reason"] = re.Rule, re.Field, re.Reason
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	s.publish(ctx, TopicRefused, fields)
}

func (s *Service) publish(ctx context.Context, topic string, fields map[string]any) {
	if err := s.events.Publish(ctx, topic, eventPayload(fields)); err != nil {
		log.G(ctx).WithError(err).WithField("topic", topic).Warn("hardened: failed to publish an event")
	}
}

// eventPayload is an event's payload: a containerd.events.ContainerUpdate
// whose id is the container and whose labels are the other fields, as
// text (empty ones left out). A type every containerd client links, so
// that `ctr events` prints it; its topic, not its type, says what it is.
func eventPayload(fields map[string]any) *apievents.ContainerUpdate {
	ev := &apievents.ContainerUpdate{Labels: map[string]string{}}
	for k, v := range fields {
		text := fmt.Sprint(v)
		switch {
		case k == "container_id":
			ev.ID = text
		case text != "":
			ev.Labels[k] = text
		}
	}
	return ev
}

// EventFields are the fields of a payload the shim published (container_id
// included), or nil for another payload.
func EventFields(v any) map[string]string {
	ev, ok := v.(*apievents.ContainerUpdate)
	if !ok {
		return nil
	}
	f := map[string]string{"container_id": ev.ID}
	maps.Copy(f, ev.Labels)
	return f
}

// eventPublisher is what the shim publishes through (containerd's shim
// publisher; nil publishes nothing).
type eventPublisher = events.Publisher

// backgroundWait bounds how long Shutdown waits for the event and report
// writes still running.
const backgroundWait = 2 * time.Second

// Shutdown lets the event and report writes a Create left running finish
// (for at most backgroundWait) before the stock Shutdown ends the process.
func (s *Service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*types.Empty, error) {
	s.mu.Lock()
	var ws []*denialWatch
	for _, st := range s.containers {
		if st.denials != nil {
			ws = append(ws, st.denials)
		}
	}
	s.mu.Unlock()
	for _, w := range ws {
		s.endWatch(ctx, w, true)
	}
	done := make(chan struct{})
	go func() {
		s.background.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(backgroundWait):
		log.G(ctx).Warn("hardened: shutting down with event or report writes still running")
	}
	return s.TTRPCTaskService.Shutdown(ctx, r)
}
