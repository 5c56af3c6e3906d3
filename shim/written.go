package shim

import (
	"context"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/log"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/upperdir"
)

// Written paths. A container that runs with a writable rootfs while a
// stricter profile is audited (or enforce mode is only audited) would lose
// its writes under that profile's read-only rootfs: when it is deleted,
// the shim reads where it wrote from the overlay snapshot's upper
// directory (package upperdir) into its report, leaving out what the
// profile would still let it write (its scratch directories, the spec's
// mounts). The fix is then a scratch directory: the image's
// hardened.dev/scratch label, or the policy's scratch.

// writtenWatch is what reading a container's writes needs.
type writtenWatch struct {
	upper   string
	exclude []string
	rec     *ctrRecord
}

// watchWritten plans the read of a created container's writes; nil when
// its report does not ask for one.
func watchWritten(r *taskAPI.CreateTaskRequest, p *plan, rec *ctrRecord) *writtenWatch {
	if p.Report.Written == nil || p.Report.Written.Unavailable != "" {
		return nil
	}
	w := &writtenWatch{exclude: p.WrittenExclude, rec: rec}
	if len(r.Rootfs) == 1 && r.Rootfs[0].Type == "overlay" {
		w.upper = upperdir.Upper(r.Rootfs[0].Options)
	}
	return w
}

// readWritten records where the container wrote, before its bundle and
// snapshot go.
func (s *Service) readWritten(ctx context.Context, w *writtenWatch) {
	paths, truncated, err := []string(nil), false, error(nil)
	why := ""
	if w.upper == "" {
		why = "the rootfs is not an overlay snapshot with an upper directory"
	} else if paths, truncated, err = upperdir.Written(w.upper, w.exclude); err != nil {
		why = err.Error()
	}
	s.rewrite(ctx, w.rec, func(rep *decide.Report) bool {
		wr := rep.Written
		wr.Paths, wr.Truncated, wr.Unavailable = append([]string{}, paths...), truncated, why
		return true
	})
	log.G(ctx).WithFields(log.Fields{"id": w.rec.rep.ContainerID, "profile": w.rec.rep.Written.Profile, "paths": paths, "unavailable": why}).
		Info("hardened: written outside the audited profile's scratch")
}
