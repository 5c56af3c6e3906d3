package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is the runtime a container is created with.
type Runtime struct {
	// Name is the runtime type (RuntimeHardened, RuntimeRunc).
	Name string
	// Options are handed to the shim as CreateTaskRequest.Options.
	Options any
}

// Hardened is the hardened shim; policyPath "" keeps the built-in default
// policy, otherwise runtimeoptions/v1.Options{ConfigPath} points the shim
// at a node policy file (what CRI and `ctr run --runtime-config-path` send).
func Hardened(policyPath string) Runtime {
	if policyPath == "" {
		return Runtime{Name: RuntimeHardened}
	}
	return Runtime{Name: RuntimeHardened, Options: &runtimeoptions.Options{ConfigPath: policyPath}}
}

// StockRunc is containerd's own runc shim; binary "" is runc from PATH,
// otherwise runc options' BinaryName (an absolute runsc for gVisor).
func StockRunc(binary string) Runtime {
	if binary == "" {
		return Runtime{Name: RuntimeRunc}
	}
	return Runtime{Name: RuntimeRunc, Options: &runcoptions.Options{BinaryName: binary}}
}

// Spec describes a container to create.
type Spec struct {
	ID    string
	Image string // default ImageBusybox
	// Args replace the image's Cmd when set.
	Args        []string
	Runtime     Runtime
	Annotations map[string]string
	// SpecOpts are applied after the image config, args and annotations.
	SpecOpts []oci.SpecOpts
	// ContainerOpts are appended to the container options.
	ContainerOpts []client.NewContainerOpts
}

// Result is how a process ended and what it printed.
type Result struct {
	ExitCode uint32
	Stdout   string
	Stderr   string
	// Phases are the wall times of Run's steps (Run only).
	Phases Phases
}

// Phases of Run: NewContainer (record and snapshot), NewTask (shim start
// and the shim's Create: where the hardened shim does its work), Start,
// the process's run until its exit, and the deletion of task and
// container.
type Phases struct {
	Create, Task, Start, Run, Delete time.Duration
}

// PhaseNames name the fields of Phases, in order.
var PhaseNames = []string{"create", "task", "start", "run", "delete"}

// List returns the phases in PhaseNames order.
func (p Phases) List() []time.Duration {
	return []time.Duration{p.Create, p.Task, p.Start, p.Run, p.Delete}
}

// Output is stdout and stderr together, for failure messages.
func (r Result) Output() string {
	return fmt.Sprintf("exit %d\n--- stdout ---\n%s--- stderr ---\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// Container is a created container; Start makes a task of it.
type Container struct {
	d      *Daemon
	NS     string
	ID     string
	C      client.Container
	Task   client.Task
	stdout *SyncBuffer
	stderr *SyncBuffer
	exitCh <-chan client.ExitStatus
	execN  atomic.Int64
}

// SyncBuffer is a bytes.Buffer safe for one writer and concurrent readers
// (a process's output read while it runs).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StageError says which step of running a container failed: "create"
// (NewContainer), "task" (NewTask: the shim's Create), "start", "exec"
// (task.Exec and process start).
type StageError struct {
	Stage string
	Err   error
}

func (e *StageError) Error() string { return e.Stage + ": " + e.Err.Error() }
func (e *StageError) Unwrap() error { return e.Err }

// Stage returns the stage of err ("" if it is no StageError).
func Stage(err error) string {
	var se *StageError
	if errors.As(err, &se) {
		return se.Stage
	}
	return ""
}

// Create creates the container record (and its snapshot) in namespace ns.
func (d *Daemon) Create(ctx context.Context, ns string, s Spec) (*Container, error) {
	ctx = Context(ctx, ns)
	ref := s.Image
	if ref == "" {
		ref = ImageBusybox
	}
	img, err := d.Client.GetImage(ctx, ref)
	if err != nil {
		return nil, &StageError{"create", fmt.Errorf("failed to get image %s: %w", ref, err)}
	}
	sopts := []oci.SpecOpts{oci.WithImageConfig(img)}
	if len(s.Args) > 0 {
		sopts = append(sopts, oci.WithProcessArgs(s.Args...))
	}
	if len(s.Annotations) > 0 {
		sopts = append(sopts, oci.WithAnnotations(s.Annotations))
	}
	sopts = append(sopts, s.SpecOpts...)
	rt := s.Runtime
	if rt.Name == "" {
		rt = Hardened("")
	}
	copts := []client.NewContainerOpts{
		client.WithImage(img),
		// Like `ctr run` and CRI: image config labels become container
		// labels.
		client.WithImageConfigLabels(img),
		client.WithSnapshotter(Snapshotter),
		client.WithNewSnapshot(s.ID+"-snapshot", img),
		client.WithRuntime(rt.Name, rt.Options),
		client.WithNewSpec(sopts...),
	}
	copts = append(copts, s.ContainerOpts...)
	c, err := d.Client.NewContainer(ctx, s.ID, copts...)
	if err != nil {
		return nil, &StageError{"create", err}
	}
	return &Container{d: d, NS: ns, ID: s.ID, C: c, stdout: &SyncBuffer{}, stderr: &SyncBuffer{}}, nil
}

func (d *Daemon) ioCreator(stdout, stderr *SyncBuffer) cio.Creator {
	return cio.NewCreator(cio.WithStreams(nil, stdout, stderr), cio.WithFIFODir(d.FIFODir))
}

// Start creates the task (the shim's Create, where the hardened shim
// rewrites and may refuse the spec) and starts it.
func (c *Container) Start(ctx context.Context) error {
	if err := c.newTask(ctx); err != nil {
		return err
	}
	return c.startTask(ctx)
}

func (c *Container) newTask(ctx context.Context) error {
	ctx = Context(ctx, c.NS)
	task, err := c.C.NewTask(ctx, c.d.ioCreator(c.stdout, c.stderr))
	if err != nil {
		return &StageError{"task", err}
	}
	c.Task = task
	ch, err := task.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return &StageError{"start", fmt.Errorf("failed to wait: %w", err)}
	}
	c.exitCh = ch
	return nil
}

func (c *Container) startTask(ctx context.Context) error {
	if err := c.Task.Start(Context(ctx, c.NS)); err != nil {
		return &StageError{"start", err}
	}
	return nil
}

// Pid is the init process's pid on the host (0 before Start).
func (c *Container) Pid() uint32 {
	if c.Task == nil {
		return 0
	}
	return c.Task.Pid()
}

// Output returns what the init process printed so far.
func (c *Container) Output() (stdout, stderr string) {
	return c.stdout.String(), c.stderr.String()
}

// WaitOutput waits until the init process's stdout contains s.
func (c *Container) WaitOutput(ctx context.Context, s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(c.stdout.String(), s) {
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in the output after %s; stdout:\n%s\nstderr:\n%s", s, timeout, c.stdout.String(), c.stderr.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// Wait waits for the init process to exit and for its output to be
// copied, then deletes the task and returns the result.
func (c *Container) Wait(ctx context.Context) (Result, error) {
	st, err := c.waitExit(ctx)
	if err != nil {
		return Result{Stdout: c.stdout.String(), Stderr: c.stderr.String()}, err
	}
	return c.finish(ctx, st)
}

func (c *Container) waitExit(ctx context.Context) (client.ExitStatus, error) {
	if c.exitCh == nil {
		return client.ExitStatus{}, errors.New("container was not started")
	}
	select {
	case st := <-c.exitCh:
		return st, nil
	case <-ctx.Done():
		return client.ExitStatus{}, fmt.Errorf("waiting for %s: %w", c.ID, ctx.Err())
	}
}

// finish waits for the exited task's output to be copied, deletes the
// task and returns the result.
func (c *Container) finish(ctx context.Context, st client.ExitStatus) (Result, error) {
	ctx = Context(ctx, c.NS)
	drainIO(c.Task.IO())
	if _, err := c.Task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return Result{}, fmt.Errorf("failed to delete the task: %w", err)
	}
	c.Task = nil
	code, _, err := st.Result()
	return Result{ExitCode: code, Stdout: c.stdout.String(), Stderr: c.stderr.String()}, err
}

// Delete kills the task if it runs, deletes it, the container and its
// snapshot. Safe to call more than once.
func (c *Container) Delete(ctx context.Context) error {
	ctx = Context(ctx, c.NS)
	var errs []error
	if c.Task != nil {
		// Kill and wait here, then delete without WithProcessKill: a
		// task that has exited is not killed again (TestDeleteAfterExit
		// covers the kill-on-delete path CRI uses).
		if st, err := c.Task.Status(ctx); err == nil && st.Status != client.Stopped {
			_ = c.Task.Kill(ctx, syscall.SIGKILL, client.WithKillAll)
			if c.exitCh != nil {
				select {
				case <-c.exitCh:
				case <-time.After(15 * time.Second):
					errs = append(errs, fmt.Errorf("%s did not exit within 15s of SIGKILL", c.ID))
				}
			}
		}
		if _, err := c.Task.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("failed to delete the task of %s: %w", c.ID, err))
		}
		c.Task = nil
	}
	if c.C != nil {
		if err := c.C.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("failed to delete container %s: %w", c.ID, err))
		}
		c.C = nil
	}
	return errors.Join(errs...)
}

// Run creates, starts and waits for a container, deletes it, and returns
// its result. An error carries the stage that failed (Stage).
func (d *Daemon) Run(ctx context.Context, ns string, s Spec) (res Result, err error) {
	var ph Phases
	t0 := time.Now()
	c, err := d.Create(ctx, ns, s)
	if err != nil {
		return Result{}, err
	}
	ph.Create = time.Since(t0)
	defer func() {
		t := time.Now()
		if derr := c.Delete(context.WithoutCancel(ctx)); derr != nil && err == nil {
			err = &StageError{"delete", derr}
		}
		ph.Delete += time.Since(t)
		res.Phases = ph
	}()
	if err := c.newTask(ctx); err != nil {
		return Result{}, err
	}
	ph.Task = time.Since(t0) - ph.Create
	t1 := time.Now()
	if err := c.startTask(ctx); err != nil {
		return Result{}, err
	}
	ph.Start = time.Since(t1)
	t2 := time.Now()
	st, err := c.waitExit(ctx)
	ph.Run = time.Since(t2)
	if err != nil {
		return Result{Stdout: c.stdout.String(), Stderr: c.stderr.String()}, err
	}
	t3 := time.Now()
	res, err = c.finish(ctx, st)
	ph.Delete = time.Since(t3)
	return res, err
}

// Exec describes a process exec'd into a running container.
type Exec struct {
	Args []string
	// Cwd, when set, replaces the process's working directory.
	Cwd string
	// Mutate may change the process spec further.
	Mutate func(*specs.Process)
}

// Exec runs a process in the running container the way containerd's
// clients do: the process spec is a copy of the container's STORED spec
// (unhardened: containerd never sees the shim's rewrite) with other args.
// It waits for the process and returns its result; an error at
// task.Exec/Start carries stage "exec".
func (c *Container) Exec(ctx context.Context, e Exec) (Result, error) {
	ctx = Context(ctx, c.NS)
	if c.Task == nil {
		return Result{}, errors.New("container is not running")
	}
	spec, err := c.C.Spec(ctx)
	if err != nil {
		return Result{}, err
	}
	p := *spec.Process
	p.Args = e.Args
	p.Terminal = false
	if e.Cwd != "" {
		p.Cwd = e.Cwd
	}
	if e.Mutate != nil {
		e.Mutate(&p)
	}
	execID := fmt.Sprintf("exec-%d", c.execN.Add(1))
	stdout, stderr := &SyncBuffer{}, &SyncBuffer{}
	proc, err := c.Task.Exec(ctx, execID, &p, c.d.ioCreator(stdout, stderr))
	if err != nil {
		return Result{}, &StageError{"exec", err}
	}
	ch, err := proc.Wait(ctx)
	if err != nil {
		_, _ = proc.Delete(ctx, client.WithProcessKill)
		return Result{}, &StageError{"exec", err}
	}
	if err := proc.Start(ctx); err != nil {
		_, _ = proc.Delete(ctx, client.WithProcessKill)
		return Result{}, &StageError{"exec", err}
	}
	var st client.ExitStatus
	select {
	case st = <-ch:
	case <-ctx.Done():
		_, _ = proc.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
		return Result{Stdout: stdout.String(), Stderr: stderr.String()}, ctx.Err()
	}
	drainIO(proc.IO())
	if _, err := proc.Delete(ctx); err != nil && !errdefs.IsNotFound(err) {
		return Result{}, err
	}
	code, _, err := st.Result()
	return Result{ExitCode: code, Stdout: stdout.String(), Stderr: stderr.String()}, err
}

// drainTimeout bounds drainIO: a process that left a child holding its
// stdout open never lets the copy end.
const drainTimeout = 10 * time.Second

// drainIO waits, at most drainTimeout, until the client side has copied
// all of an exited process's output, which ends when the shim closes the
// FIFOs' write ends. Call it before deleting the process or task:
// containerd's client cancels the copy when it deletes one (cio's Cancel
// closes the FIFOs' read ends, then it waits), so whatever output the
// client had not read yet is lost, and a quick exec's output can come back
// empty with exit code 0 (containerd/containerd#14120; ctr drains before
// deleting since #13931).
func drainIO(pio cio.IO) {
	if pio == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		pio.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(drainTimeout):
	}
}
