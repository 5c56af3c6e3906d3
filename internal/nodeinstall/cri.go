// Package nodeinstall holds what the node installer (deploy/installer)
// asks of the node and of the cluster, so that the installer can prove an
// install before it lets pods onto the node, and can refuse an uninstall
// that would strand running containers:
//
//   - Preflight: containerd's CRI answers and its version is one the shim
//     speaks (2.3 or later);
//   - Verify: the CRI lists the hardened handlers, and one container runs
//     to a clean exit under each of them;
//   - Shims: the containers still running on the hardened shim;
//   - the Kubernetes API calls that label the node ready (or take the label
//     away) and report a failed install as an event on the node (kube.go).
//
// hardenctl's `node` commands run them; install.sh calls those.
package nodeinstall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// MinContainerd is the oldest containerd the shim works with: the shim
// speaks the shim protocol of containerd 2.3.
var MinContainerd = [2]int{2, 3}

// ErrPreflight is a node that cannot take the shim; ErrVerify an install
// that did not prove itself.
var (
	ErrPreflight = errors.New("preflight failed")
	ErrVerify    = errors.New("verification failed")
)

// CRI is a connection to a CRI runtime (containerd's CRI plugin).
type CRI struct {
	conn *grpc.ClientConn
	rt   runtime.RuntimeServiceClient
	img  runtime.ImageServiceClient
}

// DialCRI connects to the CRI socket at address (a path, or unix://path).
// gRPC connects lazily: the first call reports an unreachable socket.
func DialCRI(address string) (*CRI, error) {
	target := address
	if !strings.Contains(target, "://") {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return nil, err
	}
	return &CRI{conn: conn, rt: runtime.NewRuntimeServiceClient(conn), img: runtime.NewImageServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *CRI) Close() error { return c.conn.Close() }

// Version is the runtime's name and version as the CRI reports them.
type Version struct {
	Name    string // "containerd"
	Version string // "v2.4.2"
}

// Preflight asks the runtime for its version and refuses one that is not
// containerd, or older than MinContainerd.
func (c *CRI) Preflight(ctx context.Context) (Version, error) {
	r, err := c.rt.Version(ctx, &runtime.VersionRequest{})
	if err != nil {
		return Version{}, fmt.Errorf("%w: the CRI does not answer: %v", ErrPreflight, err)
	}
	v := Version{Name: r.GetRuntimeName(), Version: r.GetRuntimeVersion()}
	if v.Name != "containerd" {
		return v, fmt.Errorf("%w: the CRI runtime is %q %s, not containerd", ErrPreflight, v.Name, v.Version)
	}
	major, minor, ok := parseVersion(v.Version)
	if !ok {
		return v, fmt.Errorf("%w: cannot read containerd's version %q", ErrPreflight, v.Version)
	}
	if major < MinContainerd[0] || (major == MinContainerd[0] && minor < MinContainerd[1]) {
		return v, fmt.Errorf("%w: containerd %s is older than %d.%d: the shim speaks the shim protocol of containerd %d.%d and later",
			ErrPreflight, v.Version, MinContainerd[0], MinContainerd[1], MinContainerd[0], MinContainerd[1])
	}
	return v, nil
}

// parseVersion reads major and minor from "v2.4.2", "2.3.0-rc.1" or
// "v2.4.2-12-gabcdef".
func parseVersion(s string) (major, minor int, ok bool) {
	s = strings.TrimPrefix(s, "v")
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	var err1, err2 error
	major, err1 = strconv.Atoi(parts[0])
	minor, err2 = strconv.Atoi(strings.SplitN(parts[1], "-", 2)[0])
	return major, minor, err1 == nil && err2 == nil
}

// Handlers lists the runtime handlers the CRI reports (StatusResponse's
// runtime_handlers; "" is the default handler).
func (c *CRI) Handlers(ctx context.Context) ([]string, error) {
	r, err := c.rt.Status(ctx, &runtime.StatusRequest{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range r.GetRuntimeHandlers() {
		out = append(out, h.GetName())
	}
	return out, nil
}

// ImageOf returns the image of the container named container in the pod
// whose UID is podUID (the kubelet's io.kubernetes.pod.uid and
// io.kubernetes.container.name labels): the installer finds its own image
// this way, whatever an overlay renamed it to.
func (c *CRI) ImageOf(ctx context.Context, podUID, container string) (string, error) {
	r, err := c.rt.ListContainers(ctx, &runtime.ListContainersRequest{Filter: &runtime.ContainerFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.uid": podUID, "io.kubernetes.container.name": container},
	}})
	if err != nil {
		return "", err
	}
	for _, ctr := range r.GetContainers() {
		if img := ctr.GetImage().GetImage(); img != "" {
			return img, nil
		}
		if ref := ctr.GetImageRef(); ref != "" {
			return ref, nil
		}
	}
	return "", fmt.Errorf("no container %q of pod %s in the CRI", container, podUID)
}

// Check is one container Verify runs.
type Check struct {
	Handler string
	// Image runs the check; it must be in the runtime's image store (the
	// installer's own image is: the kubelet pulled it).
	Image string
	// Command runs in it and must exit 0.
	Command []string
	// LogDir is where the runtime writes the container's log, as the node
	// sees it; HostRoot is where that node path is reachable from here
	// ("" when this process sees the node's paths as they are).
	LogDir, HostRoot string
	// Namespace and Name name the test pod (its metadata for the CRI).
	Namespace, Name string
	Timeout         time.Duration
}

// Result is what one check found.
type Result struct {
	Handler  string
	ExitCode int32
	Log      string // the container's output (trimmed)
	Took     time.Duration
}

// Run starts a pod sandbox and one container in it under the check's
// handler, waits for the container to exit and removes both. It fails
// unless the container exits 0. The sandbox runs with the CRI's defaults
// (its own network, pid and IPC namespaces), as a pod that asks for
// nothing would.
func (c *CRI) Run(ctx context.Context, ch Check) (res Result, err error) {
	res.Handler = ch.Handler
	start := time.Now()
	defer func() { res.Took = time.Since(start) }()
	if ch.Timeout == 0 {
		ch.Timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, ch.Timeout)
	defer cancel()

	uid := fmt.Sprintf("hardened-verify-%s-%d", ch.Handler, time.Now().UnixNano())
	logDir := filepath.Join(ch.LogDir, uid)
	if err := os.MkdirAll(filepath.Join(ch.HostRoot, logDir), 0o755); err != nil {
		return res, err
	}
	defer os.RemoveAll(filepath.Join(ch.HostRoot, logDir))
	sbCfg := &runtime.PodSandboxConfig{
		Metadata:     &runtime.PodSandboxMetadata{Name: ch.Name + "-" + ch.Handler, Namespace: ch.Namespace, Uid: uid},
		Hostname:     "hardened-verify",
		LogDirectory: logDir,
		Labels:       map[string]string{"app.kubernetes.io/name": "hardened", "app.kubernetes.io/component": "install-verify"},
		Linux:        &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{}},
	}
	sb, err := c.rt.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: sbCfg, RuntimeHandler: ch.Handler})
	if err != nil {
		return res, fmt.Errorf("handler %s: RunPodSandbox: %w", ch.Handler, err)
	}
	id := sb.GetPodSandboxId()
	defer func() {
		// Clean up with a context of its own: the check's may be spent.
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_, stopErr := c.rt.StopPodSandbox(cctx, &runtime.StopPodSandboxRequest{PodSandboxId: id})
		_, rmErr := c.rt.RemovePodSandbox(cctx, &runtime.RemovePodSandboxRequest{PodSandboxId: id})
		if cerr := errors.Join(stopErr, rmErr); cerr != nil {
			err = errors.Join(err, fmt.Errorf("handler %s: removing the verification pod %s: %w", ch.Handler, id, cerr))
		}
	}()
	ctrCfg := &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: "verify"},
		Image:    &runtime.ImageSpec{Image: ch.Image},
		Command:  ch.Command,
		LogPath:  "verify.log",
		Linux:    &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{}},
	}
	cr, err := c.rt.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: id, Config: ctrCfg, SandboxConfig: sbCfg})
	if err != nil {
		return res, fmt.Errorf("handler %s: CreateContainer: %w", ch.Handler, err)
	}
	cid := cr.GetContainerId()
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if _, rmErr := c.rt.RemoveContainer(cctx, &runtime.RemoveContainerRequest{ContainerId: cid}); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("handler %s: removing the verification container: %w", ch.Handler, rmErr))
		}
	}()
	if _, err := c.rt.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: cid}); err != nil {
		return res, fmt.Errorf("handler %s: StartContainer: %w", ch.Handler, err)
	}
	for {
		st, err := c.rt.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: cid})
		if err != nil {
			return res, fmt.Errorf("handler %s: ContainerStatus: %w", ch.Handler, err)
		}
		if s := st.GetStatus(); s.GetState() == runtime.ContainerState_CONTAINER_EXITED {
			res.ExitCode = s.GetExitCode()
			res.Log = readLog(filepath.Join(ch.HostRoot, logDir, "verify.log"))
			if res.ExitCode != 0 {
				return res, fmt.Errorf("handler %s: the verification container exited %d (%s): %s", ch.Handler, res.ExitCode, s.GetReason(), res.Log)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("handler %s: the verification container did not exit within %s", ch.Handler, ch.Timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readLog returns the messages of a CRI log file ("TIME STREAM TAG MSG"
// lines), trimmed to a few KiB.
func readLog(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	data, _ := io.ReadAll(io.LimitReader(f, 8<<10))
	var msgs []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if f := strings.SplitN(l, " ", 4); len(f) == 4 {
			msgs = append(msgs, f[3])
		}
	}
	return strings.TrimSpace(strings.Join(msgs, "\n"))
}
