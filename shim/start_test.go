package shim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/shim/runscwrap"
)

// startInner is the stock service for Start: State reports a real child
// process in the created state, Wait waits for it.
type startInner struct {
	*fakeInner
	pid    int
	bundle string
	status task.Status
	done   chan struct{}

	mu                   sync.Mutex
	starts, kills, waits int
}

func (f *startInner) State(_ context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	return &taskAPI.StateResponse{ID: r.ID, Pid: uint32(f.pid), Status: f.status, Bundle: f.bundle}, nil
}

func (f *startInner) Start(_ context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts++
	return &taskAPI.StartResponse{Pid: uint32(f.pid)}, nil
}

func (f *startInner) Kill(_ context.Context, r *taskAPI.KillRequest) (*types.Empty, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kills++
	return &types.Empty{}, unix.Kill(f.pid, unix.Signal(r.Signal))
}

func (f *startInner) Wait(ctx context.Context, _ *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	f.mu.Lock()
	f.waits++
	f.mu.Unlock()
	select {
	case <-f.done:
		return &taskAPI.WaitResponse{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var cloexecOnce sync.Once

// startChild runs a process standing in for runc init: sleep, with extra
// (non-close-on-exec) descriptors.
func startChild(t *testing.T, extra ...*os.File) (*exec.Cmd, chan struct{}) {
	t.Helper()
	// Descriptors this test process inherited without O_CLOEXEC (from
	// whoever ran go test) would be the child's leaks too.
	cloexecOnce.Do(func() {
		if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
			t.Fatal(err)
		}
	})
	cmd := exec.Command("sleep", "100")
	cmd.ExtraFiles = extra
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot run sleep: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return cmd, done
}

type startCase struct {
	mode   policy.Mode
	binary string // the runtime the stock code recorded
	root   string // the spec's root.path
	leak   bool
	status task.Status
	execID string
}

func runStart(t *testing.T, tc startCase) (*startInner, chan struct{}, error) {
	t.Helper()
	leakDir := t.TempDir()
	var extra []*os.File
	if tc.leak {
		d, err := os.Open(leakDir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		extra = append(extra, d)
	}
	cmd, done := startChild(t, extra...)
	bundle := t.TempDir()
	if err := os.WriteFile(filepath.Join(bundle, "runtime"), []byte(tc.binary), 0o600); err != nil {
		t.Fatal(err)
	}
	inner := &startInner{fakeInner: &fakeInner{}, pid: cmd.Process.Pid, bundle: bundle, status: tc.status, done: done}
	if inner.status == task.Status_UNKNOWN {
		inner.status = task.Status_CREATED
	}
	s := NewService(inner, Config{RunDir: filepath.Join(t.TempDir(), "run")})
	s.containers["c1"] = &ctrState{bundle: bundle, mode: tc.mode, spec: &specs.Spec{Root: &specs.Root{Path: tc.root}}}
	_, err := s.Start(testCtx(), &taskAPI.StartRequest{ID: "c1", ExecID: tc.execID})
	if tc.leak && err != nil && !strings.Contains(err.Error(), leakDir) {
		t.Errorf("refusal does not name the leaked directory %s: %v", leakDir, err)
	}
	return inner, done, err
}

func TestStartCleanInitStarts(t *testing.T) {
	inner, done, err := runStart(t, startCase{mode: policy.ModeEnforce, binary: "/usr/bin/runc", root: "/"})
	if err != nil {
		t.Fatal(err)
	}
	if inner.starts != 1 || inner.kills != 0 {
		t.Errorf("stock Start %d times, Kill %d times; want 1, 0", inner.starts, inner.kills)
	}
	select {
	case <-done:
		t.Error("the clean init process was killed")
	default:
	}
}

func TestStartLeakedFDRefusedAndKilled(t *testing.T) {
	inner, done, err := runStart(t, startCase{mode: policy.ModeEnforce, binary: "/usr/bin/runc", root: "/", leak: true})
	wantCode(t, err, codes.FailedPrecondition, "c1", "fd 3", "O_CLOEXEC", "CVE-2024-21626", "killed")
	if inner.starts != 0 {
		t.Error("the stock Start ran for a refused container")
	}
	if inner.waits != 1 {
		t.Errorf("Wait called %d times, want 1 (the task must be stopped when Start returns)", inner.waits)
	}
	select {
	case <-done:
	default:
		t.Error("the refused init process is still running")
	}
}

func TestStartRootMismatchRefused(t *testing.T) {
	_, _, err := runStart(t, startCase{mode: policy.ModeEnforce, binary: "/usr/bin/runc", root: t.TempDir()})
	wantCode(t, err, codes.FailedPrecondition, "root / is not the container's root filesystem", "CVE-2024-21626")
}

func TestStartNotRefused(t *testing.T) {
	for name, tc := range map[string]startCase{
		// Audit mode reports, never refuses.
		"audit": {mode: policy.ModeAudit, binary: "/usr/bin/runc", root: "/", leak: true},
		// gVisor: the pid is runsc's; not inspected.
		"gvisor": {mode: policy.ModeEnforce, binary: "/run/containerd-hardened/runsc/x/" + runscwrap.Name, root: "/", leak: true},
		// An exec has no created state: not inspected.
		"exec": {mode: policy.ModeEnforce, binary: "/usr/bin/runc", root: "/", leak: true, execID: "e1"},
		// Not in the created state: the stock Start answers.
		"running": {mode: policy.ModeEnforce, binary: "/usr/bin/runc", root: "/", leak: true, status: task.Status_RUNNING},
	} {
		t.Run(name, func(t *testing.T) {
			inner, done, err := runStart(t, tc)
			if err != nil {
				t.Fatal(err)
			}
			if inner.starts != 1 || inner.kills != 0 {
				t.Errorf("stock Start %d times, Kill %d times; want 1, 0", inner.starts, inner.kills)
			}
			select {
			case <-done:
				t.Error("the init process was killed")
			default:
			}
		})
	}
}

func TestStartInitGoneRefused(t *testing.T) {
	cmd, done := startChild(t)
	_ = cmd.Process.Kill()
	<-done // reaped: the pid names no process
	inner := &startInner{fakeInner: &fakeInner{}, pid: cmd.Process.Pid, bundle: t.TempDir(), status: task.Status_CREATED, done: done}
	s := NewService(inner, Config{RunDir: filepath.Join(t.TempDir(), "run")})
	s.containers["c1"] = &ctrState{bundle: inner.bundle, mode: policy.ModeEnforce, spec: &specs.Spec{}}
	_, err := s.Start(testCtx(), &taskAPI.StartRequest{ID: "c1"})
	wantCode(t, err, codes.FailedPrecondition, "failed to inspect")
	if inner.starts != 0 || inner.kills != 1 {
		t.Errorf("stock Start %d times, Kill %d times; want 0, 1 (no pidfd: the stock Kill)", inner.starts, inner.kills)
	}
}

// TestStartGVisorReportSaysWhy: a gVisor container's report says why it
// gets no start-time check and what the sandbox guarantees instead.
func TestStartGVisorReportSaysWhy(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "g", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(map[string]string{"hardened.dev/runtime": "gvisor"}))
	bundle := ts.bundle(t, "g", orig)
	if _, err := ts.create(t, "g", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	if rep := readReport(t, bundle); !slices.Contains(rep.Notes, decide.GVisorStartNote) {
		t.Errorf("gVisor report notes %q lack the start-time check's note", rep.Notes)
	}
	runc := defaultSpec(t, "r", oci.WithProcessArgs("/bin/sh"))
	bundle = ts.bundle(t, "r", runc)
	if _, err := ts.create(t, "r", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	if rep := readReport(t, bundle); slices.Contains(rep.Notes, decide.GVisorStartNote) {
		t.Errorf("runc report carries the gVisor note: %q", rep.Notes)
	}
}
