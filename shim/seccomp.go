package shim

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/log"

	"github.com/hardened-dev/hardened/internal/atomicfile"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/internal/reports"
	"github.com/hardened-dev/hardened/internal/seccompagent"
)

// Seccomp denials (seccomp_notify = "report" or "learn"): the shim is the
// listener of the container's filter (package seccompagent). What it
// records is flushed at most every denialFlush (rate limit: one event and
// one report write per interval per container, whatever the workload
// does) and when the container is deleted: into the bundle's report, the
// kept report, a /hardened/container/seccomp event and a log line, and in
// learn mode the learned profile.

// TopicSeccomp is the topic of the aggregated seccomp denials event.
const TopicSeccomp = "/hardened/container/seccomp"

// denialFlush is the interval between two flushes of a container's
// denials.
const denialFlush = 5 * time.Second

// denialWatch is one container's listener and the flushing of its record.
type denialWatch struct {
	agent *seccompagent.Agent
	id    string
	plan  *decide.SeccompPlan
	rec   *ctrRecord

	flushed uint64 // the record's sequence number at the last flush (under rec.mu)
	stop    chan struct{}
	done    chan struct{}
}

// listenSeccomp starts the container's listener, before the runtime
// creates the container (runc connects to it while it does).
func (s *Service) listenSeccomp(ctx context.Context, id string, p *plan, rec *ctrRecord) (*denialWatch, error) {
	if p.Seccomp == nil {
		return nil, nil
	}
	a, err := seccompagent.Listen(id, p.Seccomp, log.G(ctx).Logger.WithField("id", id))
	if err != nil {
		return nil, err
	}
	return &denialWatch{agent: a, id: id, plan: p.Seccomp, rec: rec,
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// watch flushes the container's denials every denialFlush until stopped.
func (s *Service) watch(w *denialWatch) {
	defer close(w.done)
	t := time.NewTicker(denialFlush)
	defer t.Stop()
	ctx := namespaces.WithNamespace(context.Background(), w.rec.ns)
	for {
		select {
		case <-t.C:
			s.flushDenials(ctx, w, false)
		case <-w.stop:
			return
		}
	}
}

// endWatch stops a container's flushing, flushes what is left (the learned
// profile included) and, with closeAgent, closes its listener.
func (s *Service) endWatch(ctx context.Context, w *denialWatch, closeAgent bool) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	s.flushDenials(ctx, w, true)
	if closeAgent {
		w.agent.Close()
	}
}

// flushDenials writes the denials recorded since the last flush; in learn
// mode the last one writes the learned profile even without denials (the
// filter as enforced: all the workload needed).
func (s *Service) flushDenials(ctx context.Context, w *denialWatch, last bool) {
	ds, dropped, seq := w.agent.Record().Snapshot()
	learn := w.plan.Mode == policy.SeccompNotifyLearn
	l := log.G(ctx).WithFields(log.Fields{"id": w.id, "mode": string(w.plan.Mode)})
	var fresh bool
	var learned string
	s.rewrite(ctx, w.rec, func(rep *decide.Report) bool {
		if seq == w.flushed && !(last && learn) {
			return false // nothing new: the reports say it already
		}
		fresh = seq != w.flushed
		w.flushed = seq
		sr := rep.Seccomp
		sr.Denials, sr.Dropped = ds, dropped
		if learn && s.reportsDir != "" {
			path, err := reports.KeepLearned(s.reportsDir, w.rec.ns, w.id, seccompagent.Learned(w.plan.Notice, ds))
			if err != nil {
				l.WithError(err).Warn("hardened: failed to keep the learned seccomp profile")
			} else {
				sr.Learned = path
			}
		}
		learned = sr.Learned
		return true
	})
	if !fresh {
		return
	}
	summary := seccompagent.Summary(ds)
	l.WithFields(log.Fields{"syscalls": summary, "dropped": dropped}).Info("hardened: seccomp denials")
	if s.events != nil {
		var total uint64
		for _, d := range ds {
			total += d.Count
		}
		s.publish(ctx, TopicSeccomp, map[string]any{
			"container_id": w.id, "mode": string(w.plan.Mode), "syscalls": summary,
			"distinct": len(ds), "total": total, "dropped": dropped, "learned": learned,
		})
	}
}

// ctrRecord is a container's report as the shim keeps it up to date after
// the Create (seccomp denials, written paths): its copy, and where it is
// written.
type ctrRecord struct {
	mu         sync.Mutex
	rep        *decide.Report
	ns, bundle string
}

// newRecord is the record of a created container whose report changes
// after its Create; nil for one whose report does not.
func (s *Service) newRecord(ctx context.Context, bundle string, p *plan) *ctrRecord {
	if p.Seccomp == nil && p.Report.Written == nil {
		return nil
	}
	ns, ok := namespaces.Namespace(ctx)
	if !ok {
		ns = s.namespace
	}
	rep := *p.Report
	if p.Report.Seccomp != nil {
		sr := *p.Report.Seccomp
		rep.Seccomp = &sr
	}
	if p.Report.Written != nil {
		wr := *p.Report.Written
		rep.Written = &wr
	}
	return &ctrRecord{rep: &rep, ns: ns, bundle: bundle}
}

// rewrite edits the record and, when edit says it changed, writes it to
// the bundle (while it is there) and the kept reports.
func (s *Service) rewrite(ctx context.Context, rec *ctrRecord, edit func(*decide.Report) bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !edit(rec.rep) {
		return
	}
	if data, err := indentJSON(rec.rep); err == nil {
		// The bundle is gone once containerd deleted the container.
		_ = atomicfile.Write(filepath.Join(rec.bundle, reportFile), data, 0o644)
	}
	if s.reportsDir != "" {
		if err := reports.Keep(s.reportsDir, rec.ns, rec.rep); err != nil {
			log.G(ctx).WithError(err).WithField("id", rec.rep.ContainerID).Warn("hardened: failed to keep the report")
		}
	}
}
