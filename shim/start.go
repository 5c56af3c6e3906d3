package shim

import (
	"context"
	"path/filepath"
	"strings"
	"time"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/runc"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
	"github.com/hardened-dev/hardened/shim/leakcheck"
	"github.com/hardened-dev/hardened/shim/runscwrap"
)

// The start-time check (CVE-2024-21626 class, at run time).
//
// Between `runc create` and `runc start` the container's init process
// (runc init) exists, waiting on runc's exec fifo, with its root and
// working directory set and every descriptor runc does not mean to pass on
// already close-on-exec. Start inspects it there (package leakcheck) before
// the stock Start lets it exec the container's code: a descriptor that
// would survive exec beyond stdio, a root that is not the bundle's rootfs,
// or a working directory outside the root is refused, and the init process
// is killed, so the container never runs and containerd's Delete cleans up
// a stopped task as usual.
//
// Exec'd processes are not inspected: `runc exec` starts the process at
// once, there is no created state in which the shim could see it before it
// runs the container's code. HardenExec's fd hygiene covers them on the
// spec side (cwd, args[0] and path lists through /proc/*/fd and the like
// are refused), and runc's own checks at run time (its setns init marks
// every descriptor beyond the passed ones close-on-exec and closes them
// before execve, and verifies the cwd after chdir): the runc gate refuses
// runc versions without them.
//
// gVisor containers are not inspected: the pid the runc shim code knows is
// runsc's (the sandbox, or the wrapper's waiter for a pod's app container),
// not the application's, which runs inside the Sentry with a file table of
// the Sentry's own; a host descriptor of runsc's never becomes one of the
// application's (decide.GVisorStartNote).

// killWait bounds the wait for a refused container's init process to be
// reaped after SIGKILL.
const killWait = 10 * time.Second

// Start inspects a container's init process before the stock Start runs
// it (see above); exec'd processes start unchecked. A container's staged
// mount sources held for its start (a gVisor pod's app container, whose
// gofer opens them in `runsc start`) are released when it returns, refused
// or not.
func (s *Service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	if r.ExecID != "" {
		return s.TTRPCTaskService.Start(ctx, r)
	}
	defer s.releaseStaged(ctx, r.ID)
	if err := s.checkInit(ctx, r.ID); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return s.TTRPCTaskService.Start(ctx, r)
}

// checkInit inspects the init process of a created container; it returns
// the refusal after it killed the process.
func (s *Service) checkInit(ctx context.Context, id string) error {
	st, err := s.TTRPCTaskService.State(ctx, &taskAPI.StateRequest{ID: id})
	if err != nil || st.Status != task.Status_CREATED {
		// Nothing in the created state: the stock Start answers (no such
		// container, already started, stopped).
		return nil
	}
	l := log.G(ctx).WithFields(log.Fields{"id": id, "pid": st.Pid})
	if isGVisorBundle(st.Bundle) {
		l.WithField("runtime", profiles.RuntimeGVisor).Info("hardened: start check skipped (gvisor: the pid is runsc's, the application runs in the Sentry)")
		return nil
	}
	audit, want := s.startExpect(id, st.Bundle, l)
	if audit {
		l = l.WithField("mode", policy.ModeAudit)
	}

	t0 := time.Now()
	proc, err := leakcheck.Open(int(st.Pid))
	if err != nil {
		return s.failStart(ctx, l, id, nil, audit, err)
	}
	defer proc.Close()
	found, err := proc.Inspect(want)
	l = l.WithField("took", time.Since(t0))
	if err != nil {
		return s.failStart(ctx, l, id, proc, audit, err)
	}
	if len(found) == 0 {
		l.Info("hardened: start check passed")
		return nil
	}
	what := describeFindings(found)
	if audit {
		l.WithField("wouldRefuse", what).Warn("hardened: start (audit: enforce would refuse it)")
		return nil
	}
	// CVE-2024-21626: a descriptor, root or working directory of the host
	// in the container's init process is how that escape reached the host's
	// filesystem. Refused, and the init process killed.
	err = refusedf("container %s refused at start: its init process (pid %d) holds a way out of the container: %s "+
		"(a host descriptor or working directory reaching into the container is how CVE-2024-21626 escaped); the init process was killed",
		id, st.Pid, what)
	s.killInit(ctx, l, id, proc)
	l.WithError(err).Warn("hardened: start refused")
	return err
}

// startExpect returns the container's mode (audit or not) and what its
// init process may hold. Without the container's record it checks as
// enforce mode would, without the root comparison.
func (s *Service) startExpect(id, bundle string, l *log.Entry) (bool, leakcheck.Expect) {
	// Nothing beyond stdio may survive exec: containerd asks runc to pass
	// no descriptor to a task's init process (the runc shim code's go-runc
	// CreateOpts carry no ExtraFiles, hence no --preserve-fds), and runc
	// adds sockets of systemd socket activation only when runc itself was
	// started with LISTEN_PID equal to its own pid, which go-runc never
	// does. Those two are all runc passes on (libcontainer's
	// PassedFilesCount); every other descriptor is close-on-exec.
	want := leakcheck.Expect{Preserved: 0}
	ctr, err := s.state(id)
	if err != nil {
		l.WithError(err).Warn("hardened: start check without the container's record (enforce mode, no root comparison)")
		return false, want
	}
	if ctr.spec != nil && ctr.spec.Root != nil && ctr.spec.Root.Path != "" {
		want.Root = ctr.spec.Root.Path
		if !filepath.IsAbs(want.Root) {
			want.Root = filepath.Join(bundle, want.Root)
		}
	}
	return ctr.mode == policy.ModeAudit, want
}

// failStart handles an init process that could not be inspected: refused
// (fail closed) and killed, except in audit mode.
func (s *Service) failStart(ctx context.Context, l *log.Entry, id string, proc *leakcheck.Process, audit bool, cause error) error {
	if audit {
		l.WithError(cause).Warn("hardened: start (audit: enforce would refuse it: failed to inspect the init process)")
		return nil
	}
	err := refusedf("container %s refused at start: failed to inspect its init process for leaked descriptors (CVE-2024-21626): %v; the init process was killed", id, cause)
	s.killInit(ctx, l, id, proc)
	l.WithError(err).Warn("hardened: start refused")
	return err
}

// killInit kills a refused container's init process and waits until the
// stock service has reaped it: the task is then stopped, and containerd's
// Delete (ctr's, CRI's, the client's) removes it, its cgroup and its rootfs
// as for any exited task. (The shim does not delete the task itself: the
// client's Delete asks the task's state first and fails on a task the shim
// no longer knows, which would leave containerd's record and the shim.)
// The process is killed through its pidfd (the one inspected, whatever the
// runtime binary does); without one, through the stock Kill (runc kill).
func (s *Service) killInit(ctx context.Context, l *log.Entry, id string, proc *leakcheck.Process) {
	var err error
	if proc != nil {
		err = proc.Kill()
	}
	if proc == nil || err != nil {
		_, err = s.TTRPCTaskService.Kill(ctx, &taskAPI.KillRequest{ID: id, Signal: uint32(unix.SIGKILL)})
	}
	if err != nil {
		l.WithError(err).Warn("hardened: failed to kill the refused container's init process")
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
	defer cancel()
	if _, err := s.TTRPCTaskService.Wait(wctx, &taskAPI.WaitRequest{ID: id}); err != nil {
		l.WithError(err).Warn("hardened: failed to wait for the refused container's init process")
	}
}

// isGVisorBundle reports whether the runc shim code runs the bundle's
// container with the runsc wrapper (the binary it recorded at Create).
// The stock record is what runs: hardening-state.json's runtime is, in
// audit mode, the one enforce mode would have used.
func isGVisorBundle(bundle string) bool {
	bin, err := runc.ReadRuntime(bundle)
	return err == nil && filepath.Base(bin) == runscwrap.Name
}

func describeFindings(found []leakcheck.Finding) string {
	s := make([]string, len(found))
	for i, f := range found {
		s[i] = f.String()
	}
	return strings.Join(s, "; ")
}
