package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2/manager"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/hostfacts"
)

// NewManager returns the shim manager: containerd's runc manager (binary
// lifecycle, pod grouping by io.kubernetes.cri.sandbox-id, shim cgroup,
// `delete`), with the runtime options translated before it reads them.
func NewManager(name string) shim.Shim {
	return &Manager{inner: manager.NewShimManager(name)}
}

// Manager wraps the stock runc shim manager.
type Manager struct {
	inner shim.Shim
}

// Name is the runtime name.
func (m *Manager) Name() string { return m.inner.Name() }

// Start runs the `start` binary call: the stock manager groups the pod's
// containers in one shim and starts it. Only the first container of a pod
// passes here, so nothing is hardened here: Create does it for every
// container.
func (m *Manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (*bootapi.BootstrapResult, error) {
	if err := checkGrouping(configFile); err != nil {
		return nil, err
	}
	if err := translateBootstrap(params); err != nil {
		return nil, fmt.Errorf("failed to translate runtime options: %w", err)
	}
	return m.inner.Start(ctx, params)
}

// Stop runs the `delete` binary call (cwd: the bundle). The stock code runs
// `<binary> delete --force` with the binary and root the task service
// recorded in the bundle (files "runtime" and options.json, written from
// the runc options Create passed on): runc, or the runsc wrapper for a
// gVisor container, so delete reaches the runtime that ran it. Then the
// container's staged mount sources are removed, in case its shim died
// while it held them (pin.go), and so is its seccomp listener's socket
// (seccomp.go).
func (m *Manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	ss, err := m.inner.Stop(ctx, id)
	if ns, ok := namespaces.Namespace(ctx); ok {
		if dir, derr := decide.StagingDir(hostfacts.RunDir(), ns, id); derr == nil {
			if rerr := removeStaging(dir); rerr != nil {
				log.G(ctx).WithError(rerr).WithField("id", id).Warn("hardened: failed to remove the staged mount sources")
			}
		}
		if sock, serr := decide.SeccompSocket(hostfacts.RunDir(), ns, id); serr == nil {
			if rerr := os.Remove(sock); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
				log.G(ctx).WithError(rerr).WithField("id", id).Warn("hardened: failed to remove the seccomp listener's socket")
			}
		}
	}
	return ss, err
}

// Info answers `-info` (options on stdin): the stock code reads runc
// options only and runs `<binary> features`. runtimeoptions are turned
// into runc options naming the policy's runc binary.
func (m *Manager) Info(ctx context.Context, optionsR io.Reader) (*types.RuntimeInfo, error) {
	data, err := io.ReadAll(optionsR)
	if err != nil {
		return nil, fmt.Errorf("failed to read runtime options: %w", err)
	}
	out, err := translateInfoOptions(ctx, data, defaultPolicies)
	if err != nil {
		return nil, err
	}
	return m.inner.Info(ctx, bytes.NewReader(out))
}

// translateInfoOptions turns the options message Info reads into runc
// options with the policy's runc binary and root.
func translateInfoOptions(ctx context.Context, data []byte, policies *policyCache) ([]byte, error) {
	var in *anypb.Any
	if len(data) > 0 {
		in = &anypb.Any{}
		if err := proto.Unmarshal(data, in); err != nil {
			return nil, fmt.Errorf("failed to decode runtime options: %w", err)
		}
	}
	caller, err := splitOptions(in)
	if err != nil {
		return nil, err
	}
	// The same source Create would use: the options' policy, else the
	// node's policy file, else the built-in default.
	src := nodePolicySource()
	if caller.Policy != nil {
		src = *caller.Policy
	}
	np, err := policies.get(src)
	if err != nil {
		return nil, err
	}
	binary, root, err := runcBinary(np)
	if err != nil {
		return nil, err
	}
	opts, _ := decide.RuncOptions(caller.Runc, binary, root)
	a, err := typeurl.MarshalAnyToProto(opts)
	if err != nil {
		return nil, err
	}
	return proto.Marshal(a)
}

// groupAnnotation makes containerd's runc manager put a container into the
// shim of whichever container it names, ahead of the pod's sandbox id. The
// engine strips it at Create, but grouping happens here, before Create:
// honouring it would let a workload place itself in another pod's shim.
const groupAnnotation = "io.containerd.runc.v2.group"

// checkGrouping refuses a bundle whose spec (path: the bundle's
// config.json, relative to the bundle, which is start's cwd) carries the
// group annotation. Nothing exists yet when it refuses.
func checkGrouping(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", path, err)
	}
	// Only the annotations: the spec is read in full by Create.
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("malformed %s: %w", path, err)
	}
	if v, ok := s.Annotations[groupAnnotation]; ok {
		return fmt.Errorf("hardened: annotation %s=%q refused: containers are grouped by pod (io.kubernetes.cri.sandbox-id) only: %w", groupAnnotation, v, errdefs.ErrInvalidArgument)
	}
	return nil
}
