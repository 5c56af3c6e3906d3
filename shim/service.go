package shim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/internal/hostprobe"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/internal/reports"
)

// Service is the shim's task service: containerd's runc task service with
// Create, Exec and Update intercepted. Every other call goes to the stock
// service unchanged, so IO, exits, OOM events and checkpoints behave
// exactly as they do in containerd-shim-runc-v2.
type Service struct {
	// TTRPCTaskService is the stock service; its methods are the ones not
	// overridden here.
	taskAPI.TTRPCTaskService

	labels   labelSource // nil: no containerd address (standalone)
	policies *policyCache
	gate     gateFunc
	// wrapper locates the runsc wrapper binary.
	wrapper func() (string, error)
	// events publishes the shim's events (events.go); nil: none.
	events eventPublisher
	// reportsDir keeps a copy of each container's report (package
	// reports); "" keeps none.
	reportsDir string
	// background counts the event and report writes a Create leaves
	// running after it returns.
	background sync.WaitGroup
	runDir     string
	// namespace is the shim's containerd namespace, for a call whose
	// context names none.
	namespace string
	appArmor  func() bool
	// apparmor loads the profiles hardened specs name (AppArmor hosts only).
	apparmor *appArmorLoader

	mu         sync.Mutex
	containers map[string]*ctrState
	// staged is the staging directory of each container whose pinned
	// mount sources are kept until its Start (pin.go).
	staged map[string]string

	release *memReleaser
	// speculation is the first Create's inputs, read at start (warm.go);
	// nil once taken.
	speculation *speculation
}

// ctrState is what Exec and Update need about a container.
type ctrState struct {
	mu     sync.Mutex // serialises Updates
	bundle string
	mode   policy.Mode
	cfg    hardening.Config
	// spec is the container's hardened spec (in audit mode: what enforce
	// would have run; the original when even that was refused).
	spec *specs.Spec
	// origPids is the pids limit of containerd's unhardened spec; curPids
	// the limit the container runs with (nil: none).
	origPids, curPids *int64
	// denials is the container's seccomp listener and the flushing of its
	// record (seccomp.go); nil without one.
	denials *denialWatch
	// written reads where the container wrote when it is deleted
	// (written.go); nil when its report does not ask.
	written *writtenWatch
}

// Config configures a Service.
type Config struct {
	// GRPCAddress is containerd's gRPC address; "" runs without label
	// lookups (annotations only).
	GRPCAddress string
	// RunDir is the node-wide runtime directory (hostfacts.RunDir() if "").
	RunDir string
	// Publisher publishes the shim's events on containerd's event bus
	// (events.go); nil publishes none.
	Publisher eventPublisher
	// RunCommand runs the binaries the shim probes (runc --version): in the
	// shim process, through its reaper (RunThroughReaper). nil runs them
	// directly.
	RunCommand hostprobe.RunFunc
	// Bundle is the bundle the shim was started in, and Namespace its
	// namespace: the first Create's inputs are read from them at start.
	// "" reads nothing ahead.
	Bundle, Namespace string
}

// NewService wraps the stock task service.
func NewService(inner taskAPI.TTRPCTaskService, cfg Config) *Service {
	s := &Service{
		TTRPCTaskService: inner,
		policies:         defaultPolicies,
		runDir:           cfg.RunDir,
		namespace:        cfg.Namespace,
		appArmor:         hostAppArmor,
		wrapper:          hostfacts.LocateRunscWrapper,
		events:           cfg.Publisher,
		reportsDir:       reports.Dir(),
		apparmor:         defaultAppArmor,
		containers:       make(map[string]*ctrState),
		staged:           make(map[string]string),
		release:          newMemReleaser(),
	}
	if s.runDir == "" {
		s.runDir = hostfacts.RunDir()
	}
	if cfg.GRPCAddress != "" {
		s.labels = newGRPCLabels(cfg.GRPCAddress)
	}
	pr := hostprobe.Prober{Run: cfg.RunCommand}
	s.gate = func(ctx context.Context, path string) error {
		return gateRunc(ctx, pr, path, filepath.Join(s.runDir, "runc-gate"))
	}
	var speculate func()
	if cfg.Bundle != "" && cfg.Namespace != "" {
		sp := s.startSpeculation(cfg.Namespace, cfg.Bundle)
		speculate = func() { s.speculate(sp) }
		s.release.started()
	}
	go warm(s.labels, s.policies, speculate)
	return s
}

// RegisterTTRPC serves the task API through the wrapper.
func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

// Delete forgets a deleted container, and removes whatever is left of its
// staged mount sources (a container created but never started).
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	var w *denialWatch
	var ww *writtenWatch
	if r.ExecID == "" {
		s.mu.Lock()
		if st := s.containers[r.ID]; st != nil {
			w, ww = st.denials, st.written
		}
		s.mu.Unlock()
	}
	// The last records go to the bundle's report too: before the bundle
	// and the snapshot are removed.
	if w != nil {
		s.endWatch(ctx, w, false)
	}
	if ww != nil {
		s.readWritten(ctx, ww)
	}
	resp, err := s.TTRPCTaskService.Delete(ctx, r)
	if r.ExecID == "" {
		s.releaseStaged(ctx, r.ID)
	}
	if err == nil && r.ExecID == "" {
		if w != nil {
			w.agent.Close()
		}
		s.mu.Lock()
		delete(s.containers, r.ID)
		s.mu.Unlock()
	}
	return resp, err
}

// state returns the container's record: from memory, or rebuilt from its
// bundle (config.json, hardening-state.json) when this process did not
// create it.
func (s *Service) state(id string) (*ctrState, error) {
	s.mu.Lock()
	st := s.containers[id]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	if !decide.IdentifierRE.MatchString(id) {
		return nil, fmt.Errorf("invalid container id %q", id)
	}
	// The shim's working directory is the bundle of the container that
	// started it; a namespace's bundles are siblings.
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	st, err = loadState(filepath.Join(filepath.Dir(cwd), id))
	if err != nil {
		return nil, fmt.Errorf("no hardening record for container %s: %w", id, err)
	}
	s.mu.Lock()
	if cur := s.containers[id]; cur != nil {
		st = cur
	} else {
		s.containers[id] = st
	}
	s.mu.Unlock()
	return st, nil
}

func loadState(bundle string) (*ctrState, error) {
	var saved decide.State
	if err := readJSON(filepath.Join(bundle, stateFile), &saved); err != nil {
		return nil, err
	}
	if saved.Profile == nil && saved.Mode != policy.ModeAudit {
		// Only audit mode runs a container without a profile.
		return nil, fmt.Errorf("%s names no profile", filepath.Join(bundle, stateFile))
	}
	var spec specs.Spec
	if err := readJSON(filepath.Join(bundle, configFile), &spec); err != nil {
		return nil, err
	}
	st := &ctrState{bundle: bundle, mode: saved.Mode, cfg: saved.Config(), spec: &spec, curPids: pidsLimit(&spec)}
	st.origPids = st.curPids
	if _, orig, err := readBundleSpec(bundle); err == nil {
		st.origPids = pidsLimit(orig)
	}
	return st, nil
}

func pidsLimit(s *specs.Spec) *int64 {
	if s == nil || s.Linux == nil || s.Linux.Resources == nil || s.Linux.Resources.Pids == nil || s.Linux.Resources.Pids.Limit == nil {
		return nil
	}
	v := *s.Linux.Resources.Pids.Limit
	return &v
}
