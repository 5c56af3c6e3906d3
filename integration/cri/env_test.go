//go:build integration

// Package cri tests the hardened shim through Kubernetes' Container Runtime
// Interface: a private containerd with its CRI plugin, driven by crictl and
// by cri-tools' critest, exactly as a kubelet would drive a node.
//
// The environment (one per test binary, started by the first test that
// needs it, torn down by TestMain):
//   - a network namespace hd-cri-XXXX (`ip netns add`) holding the CNI
//     bridge and every pod network; containerd, crictl and critest run in it
//     so that no pod traffic touches the host's network;
//   - a private mount namespace in which a directory of the temp tree is
//     bound on /run (runc/runsc state, shim sockets, pod netns files) and
//     another on /var/lib/cni (the CNI result cache; the empty mount point
//     is created on the host if missing, and left); crictl and critest
//     join it too (critest's mount propagation specs mount and look there);
//   - containerd v2.4.2 from .tools/bin with root, state, sockets, config
//     and log under one short temp dir /tmp/hdc-XXXX;
//   - runtimes: `runc` (the stock runc shim), and, installed by
//     deploy/installer/install.sh from deploy/base/node/ exactly as the
//     DaemonSet does it, `hardened` and `hardened-gvisor`; plus
//     `hardened-min`, a test policy whose minimum profile is "hardened"
//     and whose route sends pods labelled hardened.test/strict=true to
//     "strict".
//     The installer's paths are in the temp tree (ETC_DIR moved), so the
//     drop-in it writes also sets HARDENED_POLICY=<temp>/etc/hardened/policy.toml
//     for containerd's shims: the `hardened` runtime (no options table, as
//     on a node) reads that file, never the host's /etc/hardened;
//     `hardened-gvisor` and `hardened-min` name theirs with ConfigPath;
//   - images built locally (images_test.go) and imported into k8s.io;
//   - a read-only registry on 127.0.0.1 inside the network namespace
//     serving the images critest's Image specs pull (registry_test.go),
//     named by hosts.toml for gcr.io, registry.k8s.io and k8s.gcr.io.
//
// Teardown removes every pod, stops containerd, kills anything left in its
// mount namespace (and descendants), deletes the network namespace,
// unmounts and removes the temp dir, removes the pods' cgroups and the
// shared memory segments critest's HostIpc spec leaves behind. What it had
// to clean up that should have gone by itself is reported and fails the run.
//
// Environment: HARDENED_REQUIRE_INTEGRATION=1 turns skips (not root, tools
// missing) into failures; HARDENED_TOOLS_BIN or TOOLS_BIN names the tools
// dir (default .tools/bin); HARDENED_SHIM_BINARY uses a prebuilt shim;
// HARDENED_KEEP=1 keeps the temp dir (containerd.log, critest reports).
package cri

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hardened-dev/hardened/integration/harness"
	"github.com/hardened-dev/hardened/internal/reports"
)

const (
	// k8sNamespace is the containerd namespace of CRI.
	k8sNamespace = "k8s.io"
	// Handlers (CRI runtime names).
	handlerRunc     = "runc"
	handlerHardened = "hardened"
	handlerGVisor   = "hardened-gvisor"
	handlerMin      = "hardened-min"
	ownerFile       = "owner"
	tempPrefix      = "hdc-"
	netnsPrefix     = "hd-cri-"
)

// envTestbin names a prebuilt testdata/testbin (static) to use instead of
// building it (make test-vm's guest).
const envTestbin = "HARDENED_CRI_TESTBIN"

// criTools are the tools the CRI tests need beyond harness.RequiredTools.
var criTools = []string{"crictl", "critest", busyboxDynamic}

// Env is the running environment.
type Env struct {
	Repo, Tools, Dir string
	NetNS            string // name, /var/run/netns/<name>
	Subnet           string // the pod network (inside NetNS only)
	Sock             string // containerd's gRPC socket
	Config           string // containerd's main config
	CrictlConfig     string
	Log              string // containerd's log
	// CgroupParent is the cgroup parent of the pods this package creates
	// with crictl (critest uses the CRI default).
	CgroupParent string
	// Shim is the hardened shim binary; when "" the hardened handlers are
	// not configured and ShimErr says why.
	Shim    string
	ShimErr error
	// CLI is hardenctl, built with the shim ("" when it was not).
	CLI string

	cmd    *exec.Cmd
	exited chan struct{}
	mntNS  string // containerd's mount namespace ("mnt:[N]")
	// mntNSRef holds that namespace until teardown is done (MountNS).
	mntNSRef *os.File
	events   *exec.Cmd
	// Registry serves critest's Image specs (registry_test.go).
	Registry *registry

	mu  sync.Mutex
	ids map[string]bool // every container/sandbox id containerd created
}

var (
	envOnce sync.Once
	theEnv  *Env
	envErr  error
)

// env returns the environment, starting it on first use. It skips the
// test when the machine cannot run it (fails under HARDENED_REQUIRE_INTEGRATION).
func env(t *testing.T) *Env {
	t.Helper()
	envOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		theEnv, envErr = setup(ctx)
	})
	if envErr != nil {
		if errors.Is(envErr, harness.ErrUnavailable) && !harness.Required() {
			t.Skip(envErr)
		}
		t.Fatal(envErr)
	}
	return theEnv
}

// needShim skips (or fails) a test that needs the hardened handlers.
func needShim(t *testing.T, e *Env) {
	t.Helper()
	if e.Shim == "" {
		if errors.Is(e.ShimErr, harness.ErrUnavailable) && !harness.Required() {
			t.Skip(e.ShimErr)
		}
		t.Fatal(e.ShimErr)
	}
}

func TestMain(m *testing.M) {
	// An interrupt still tears the environment down.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "cri: %v: tearing down\n", s)
		if theEnv != nil {
			theEnv.teardown()
		}
		os.Exit(2)
	}()
	code := m.Run()
	signal.Stop(sigs)
	if theEnv != nil {
		if problems := theEnv.teardown(); len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "cri: FAIL: teardown found leftovers:\n  %s\n", strings.Join(problems, "\n  "))
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// checkHost is harness.CheckHost and what CRI needs besides: crictl,
// critest, the CNI plugins, ip, nsenter, mount and ldd.
func checkHost(tools string) error {
	if err := harness.CheckHost(tools); err != nil {
		return err
	}
	var missing []string
	for _, t := range criTools {
		if _, err := os.Stat(filepath.Join(tools, t)); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s missing in %s (run hack/install-cri-tools.sh)",
			harness.ErrUnavailable, strings.Join(missing, ", "), tools)
	}
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/usr/lib/cni/portmap"} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w: %s missing (Debian package containernetworking-plugins)", harness.ErrUnavailable, p)
		}
	}
	// Not iptables: portmap calls it only for a pod with host ports
	// (critest's port mapping spec), and make test-vm's guest has none.
	for _, c := range []string{"ip", "nsenter", "mount", "ldd"} {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("%w: %s not in PATH", harness.ErrUnavailable, c)
		}
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// run runs a command; it returns stdout, and stderr in the error.
func run(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = env
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// criPlugins are the CRI plugin tables of the test's containerd (%[1]q the
// sandbox image, %[2]q the CNI config dir, %[3]q the stock runc, %[4]q the
// registry hosts dir: registry_test.go).
const criPlugins = `[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %[1]q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %[4]q

[plugins."io.containerd.cri.v1.runtime"]
  # Negative OOM scores are refused on this machine (and in user namespaces).
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = %[2]q
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = %[3]q

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`

// cniConfig is a bridge inside the test's network namespace, on a private
// range, with host-local IPAM keeping its state in the temp tree, and
// portmap for pods' host ports (its iptables rules and route_localnet are
// the namespace's own; critest's port mapping spec reaches 127.0.0.1:12000).
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": %[1]q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": "hdcri0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %[2]q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %[3]q
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true},
      "snat": true
    }
  ]
}
`

// A test-only runtime: the minimum profile is "hardened", so a pod
// asking for "baseline" must be refused.
const minDropIn = `version = 3
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.hardened-min]
  runtime_type = "io.containerd.hardened.v2"
  runtime_path = %[1]q
  pod_annotations = ["hardened.dev/*"]
  container_annotations = ["hardened.dev/*"]
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.hardened-min.options]
    ConfigPath = %[2]q
`

const minPolicy = `default_profile = "hardened"
minimum_profile = "hardened"
mode = "enforce"
[runtimes.runc]
path = "runc"
[runtimes.gvisor]
path = %[1]q
[[routes]]
match = { labels = { "hardened.test/strict" = "true" } }
profile = "strict"
`

func setup(ctx context.Context) (_ *Env, err error) {
	repo, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	tools := harness.ToolsBin(repo)
	if err := checkHost(tools); err != nil {
		return nil, err
	}
	sweepStale()

	dir, err := os.MkdirTemp("/tmp", tempPrefix)
	if err != nil {
		return nil, err
	}
	// Like /var/lib/containerd: traversable by the uids of user-namespaced
	// pods (critest's UserNamespaces specs map root to uid 1000+).
	if err := os.Chmod(dir, 0o711); err != nil {
		return nil, err
	}
	suffix := strings.TrimPrefix(filepath.Base(dir), tempPrefix)
	e := &Env{
		Repo: repo, Tools: tools, Dir: dir,
		NetNS:        netnsPrefix + suffix,
		Subnet:       fmt.Sprintf("10.213.%d.0/24", 1+int(randHex(1)[0])%250),
		Sock:         filepath.Join(dir, "c.sock"),
		Config:       filepath.Join(dir, "etc/containerd/config.toml"),
		CrictlConfig: filepath.Join(dir, "crictl.yaml"),
		Log:          filepath.Join(dir, "containerd.log"),
		CgroupParent: "/" + netnsPrefix + suffix,
		exited:       make(chan struct{}),
		ids:          map[string]bool{},
	}
	theEnv = e // so that TestMain tears down whatever was made
	// The owner file lets a later run clean up after a run that died.
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintf("%d\n%s\n%s\n", os.Getpid(), e.NetNS, e.CgroupParent)), 0o644); err != nil {
		return nil, err
	}
	for _, d := range []string{"root", "state", "tmp", "run", "cni", "ipam", "opt", "verifiers", "net.d", "logs", "bin", "src-bin", "etc/containerd", registryHostsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}

	// Binaries: testbin (static, for the images; prebuilt in make test-vm's
	// guest, which has no Go toolchain), the shim.
	testbin := filepath.Join(dir, "bin", "testbin")
	if pre := os.Getenv(envTestbin); pre != "" {
		if _, err := run(ctx, "", nil, "cp", pre, testbin); err != nil {
			return nil, err
		}
	} else if _, err := run(ctx, filepath.Join(repo, "integration", "cri"), append(os.Environ(), "CGO_ENABLED=0"),
		goBin(), "build", "-trimpath", "-o", testbin, "./testdata/testbin"); err != nil {
		return nil, err
	}
	// The shim and its runsc wrapper side by side, as the installer
	// image holds them (harness.Build; hardenctl comes along).
	if bins, _, err := harness.Build(repo, tools, filepath.Join(dir, "src-bin")); err != nil {
		e.ShimErr = err
	} else {
		e.Shim, e.CLI = bins.Shim, bins.CLI
	}

	// containerd's config; install.sh adds the imports line and the drop-in.
	cfg := harness.ContainerdConfig{
		Root: filepath.Join(dir, "root"), State: filepath.Join(dir, "state"), Temp: filepath.Join(dir, "tmp"),
		Address: e.Sock, TTRPCAddress: e.Sock + ".ttrpc",
		Opt: filepath.Join(dir, "opt"), Verifiers: filepath.Join(dir, "verifiers"),
		Plugins: fmt.Sprintf(criPlugins, imagePause, filepath.Join(dir, "net.d"), filepath.Join(tools, "runc"),
			filepath.Join(dir, registryHostsDir)),
		NoImports: true, // install.sh adds it
	}.TOML()
	if err := os.WriteFile(e.Config, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if e.Shim != "" {
		if err := e.install(ctx); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "net.d", "10-hd-cri.conflist"),
		[]byte(fmt.Sprintf(cniConfig, e.NetNS, e.Subnet, filepath.Join(dir, "ipam"))), 0o644); err != nil {
		return nil, err
	}
	crictlCfg := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 120\ndebug: false\npull-image-on-create: false\n", e.Sock, e.Sock)
	if err := os.WriteFile(e.CrictlConfig, []byte(crictlCfg), 0o644); err != nil {
		return nil, err
	}

	// Images.
	tb, err := os.ReadFile(testbin)
	if err != nil {
		return nil, err
	}
	images, err := testImages(filepath.Join(tools, busyboxDynamic), tb)
	if err != nil {
		return nil, err
	}
	archive := filepath.Join(dir, "images.tar")
	if err := writeOCIArchive(archive, images); err != nil {
		return nil, err
	}

	if err := e.start(ctx); err != nil {
		return nil, err
	}
	if _, err := e.ctr(ctx, "images", "import", "--all-platforms", archive); err != nil {
		return nil, err
	}
	// A pinned sandbox image is never garbage collected.
	if _, err := e.ctr(ctx, "images", "label", imagePause, "io.cri-containerd.pinned=pinned"); err != nil {
		return nil, err
	}
	if err := e.startRegistry(images); err != nil {
		return nil, err
	}
	return e, nil
}

// install runs the node installer (deploy/installer/install.sh) the way
// the DaemonSet does, with the "host" paths in the temp tree: it installs
// the shim and runsc, the policies of deploy/base/node/, the drop-in, and adds
// the imports line to containerd's main config.
func (e *Env) install(ctx context.Context) error {
	runsc, err := os.ReadFile(filepath.Join(e.Tools, "runsc"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(e.Dir, "src-bin", "runsc"), runsc, 0o755); err != nil {
		return err
	}
	envv := append(os.Environ(),
		"HOST_ROOT=",
		"SRC_BIN_DIR="+filepath.Join(e.Dir, "src-bin"),
		"CONFIG_DIR="+filepath.Join(e.Repo, "deploy", "base", "node"),
		"BIN_DIR="+filepath.Join(e.Dir, "opt/hardened/bin"),
		"ETC_DIR="+filepath.Join(e.Dir, "etc/hardened"),
		"CONTAINERD_CONFIG="+e.Config,
		"DROPIN_DIR="+filepath.Join(e.Dir, "etc/containerd/conf.d"),
		"PATCH_CONTAINERD_CONFIG=true",
		"RESTART_CONTAINERD=false",
		// containerd starts after the install here.
		"VERIFY=false",
	)
	cmd := exec.CommandContext(ctx, "/bin/sh", filepath.Join(e.Repo, "deploy", "installer", "install.sh"), "install")
	cmd.Env = envv
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "installed ") {
		return fmt.Errorf("install.sh: %v\n%s", err, out)
	}
	shim := filepath.Join(e.Dir, "opt/hardened/bin", harness.ShimBinary)
	if err := os.WriteFile(filepath.Join(e.Dir, "etc/hardened/policy-min.toml"),
		[]byte(fmt.Sprintf(minPolicy, filepath.Join(e.Dir, "opt/hardened/bin/runsc"))), 0o644); err != nil {
		return err
	}
	for _, name := range []string{"policy.toml", "policy-gvisor.toml", "policy-min.toml"} {
		if err := e.consentPrivateRoot(filepath.Join(e.Dir, "etc/hardened", name)); err != nil {
			return err
		}
	}
	if err := appendFile(filepath.Join(e.Dir, "etc/hardened/policy.toml"), seccompRoute); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(e.Dir, "etc/containerd/conf.d/zz-hardened-min.toml"),
		[]byte(fmt.Sprintf(minDropIn, shim, filepath.Join(e.Dir, "etc/hardened/policy-min.toml"))), 0o644)
}

// seccompRoute, appended to the installed node policy, has the seccomp
// denials of pods labelled labelSeccompReport reported
// (TestCRISeccompDenialsReported).
const seccompRoute = `
[[routes]]
seccomp_notify = "report"
[routes.match.labels]
"` + labelSeccompReport + `" = "true"
`

const labelSeccompReport = "hardened-test/seccomp-report"

func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// hostRODir is the temp dir's directory under which the test policies
// consent to read-only host paths (TestCRIHostPathConsent).
const hostRODir = "host-ro"

// kubeletDir is the temp dir's stand-in for the kubelet's root directory.
const kubeletDir = "kubelet"

// consentPrivateRoot puts the operator's consent for this containerd's own
// per-pod CRI files at the top of the node policy at path. The profiles'
// own prefixes name containerd's default root and state
// (/var/lib/containerd, /run/containerd); this containerd keeps them under
// the temp dir, as a node with another root would, and its operator consents
// to the same per-pod paths there (docs/kubernetes.md). It also consents to
// read-only host paths under hostRODir.
func (e *Env) consentPrivateRoot(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("# the test's containerd: root and state in its temp dir\nallow_host_path_prefixes = [\n")
	for _, p := range []string{
		"root/io.containerd.grpc.v1.cri/sandboxes/{sandbox-id}/",
		"root/io.containerd.grpc.v1.cri/containers/{container-id}/",
		"state/io.containerd.grpc.v1.cri/sandboxes/{sandbox-id}/",
		"state/io.containerd.grpc.v1.cri/image-volumes/{sandbox-id}/",
	} {
		fmt.Fprintf(&b, "  { prefix = %q },\n", filepath.Join(e.Dir, p)+"/")
	}
	// The kubelet of TestCRIExplainPods keeps its pods' volumes here.
	fmt.Fprintf(&b, "  { prefix = %q },\n", filepath.Join(e.Dir, kubeletDir, "pods", "{pod-uid}")+"/")
	fmt.Fprintf(&b, "  { prefix = %q, read_only = true },\n", filepath.Join(e.Dir, hostRODir)+"/")
	b.WriteString("]\n")
	return os.WriteFile(path, append([]byte(b.String()), data...), 0o644)
}

// start runs containerd in the network namespace and a private mount
// namespace, and waits until it serves.
func (e *Env) start(ctx context.Context) error {
	if _, err := run(ctx, "", nil, "ip", "netns", "add", e.NetNS); err != nil {
		return err
	}
	if _, err := run(ctx, "", nil, "ip", "-n", e.NetNS, "link", "set", "lo", "up"); err != nil {
		return err
	}
	// libcni caches results in /var/lib/cni: bind a temp dir there. The
	// mount point is made on the host if missing and left in place: removing
	// it would detach the bind mount of a concurrent run (rmdir of a mount
	// point in another mount namespace succeeds and unmounts it there),
	// whose CNI results would then land on the host.
	if err := os.MkdirAll("/var/lib/cni", 0o700); err != nil {
		return err
	}
	logf, err := os.Create(e.Log)
	if err != nil {
		return err
	}
	defer logf.Close()
	script := `set -e
mount --bind "$1" /run
mount --bind "$2" /var/lib/cni
exec "$3" --config "$4"`
	e.cmd = exec.Command("nsenter", "--net=/var/run/netns/"+e.NetNS, "--",
		"/bin/sh", "-c", script, "hd-cri-containerd",
		filepath.Join(e.Dir, "run"), filepath.Join(e.Dir, "cni"), filepath.Join(e.Tools, "containerd"), e.Config)
	e.cmd.Dir = e.Dir
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.Env = []string{
		"PATH=" + e.Tools + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "TMPDIR=" + filepath.Join(e.Dir, "tmp"),
		// Kept reports in the temp tree, not the node's.
		reports.DirEnv + "=" + filepath.Join(e.Dir, "reports"),
	}
	// Go makes / rprivate in the new mount namespace before exec.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("failed to start containerd: %w", err)
	}
	go func() {
		_ = e.cmd.Wait()
		close(e.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.ctr(ctx, "version"); err == nil {
			break
		}
		select {
		case <-e.exited:
			return fmt.Errorf("containerd exited:\n%s", e.LogTail(40))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not serve within 30s:\n%s", e.LogTail(40))
		}
	}
	e.mntNS, e.mntNSRef, _ = harness.MountNS(e.cmd.Process.Pid)
	// Record every container and sandbox id (for the cgroup leak check).
	e.events = exec.Command(filepath.Join(e.Tools, "ctr"), "--address", e.Sock, "events")
	stdout, err := e.events.StdoutPipe()
	if err != nil {
		return err
	}
	if err := e.events.Start(); err != nil {
		return err
	}
	go func() {
		re := regexp.MustCompile(`"(?:id|container_id)":"([0-9a-f]{64})"`)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			for _, m := range re.FindAllStringSubmatch(sc.Text(), -1) {
				e.mu.Lock()
				e.ids[m[1]] = true
				e.mu.Unlock()
			}
		}
	}()
	return nil
}

// PID is containerd's pid.
func (e *Env) PID() int { return e.cmd.Process.Pid }

// LogTail returns the last n lines of containerd's log.
func (e *Env) LogTail(n int) string {
	data, _ := os.ReadFile(e.Log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LogSize is the current size of containerd's log: pass it to LogSince.
func (e *Env) LogSize() int64 {
	fi, err := os.Stat(e.Log)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// LogSince returns containerd's log from offset off.
func (e *Env) LogSince(off int64) string {
	data, _ := os.ReadFile(e.Log)
	if off > int64(len(data)) {
		return ""
	}
	return string(data[off:])
}

func (e *Env) ctr(ctx context.Context, args ...string) (string, error) {
	return run(ctx, e.Dir, nil, filepath.Join(e.Tools, "ctr"), append([]string{"--address", e.Sock, "--namespace", k8sNamespace}, args...)...)
}

// inNS returns a command running name in containerd's mount and network
// namespaces (crictl, critest: streaming and the pod network live there).
func (e *Env) inNS(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{
		"--target", strconv.Itoa(e.PID()), "--mount", "--net", "--", name}, args...)...)
	cmd.Dir = e.Dir
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(e.Dir, "tmp"))
	return cmd
}

// Crictl runs crictl; stdout and stderr separately.
func (e *Env) Crictl(ctx context.Context, args ...string) (string, string, error) {
	cmd := e.inNS(ctx, filepath.Join(e.Tools, "crictl"), append([]string{"--config", e.CrictlConfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), stderr.String(), err
}

// teardown undoes setup; it returns what it had to clean up by force.
func (e *Env) teardown() (problems []string) {
	// Every step gets its own deadline: one hung step must not stop the
	// others from cleaning up.
	step := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(context.Background(), d)
		_ = cancel // released when the deadline passes
		return c
	}
	running := e.cmd != nil && e.cmd.Process != nil
	if running {
		select {
		case <-e.exited:
			running = false
			problems = append(problems, "containerd had exited before teardown:\n"+e.LogTail(30))
		default:
		}
	}
	if running {
		// Pods left by a failed test are cleaned up, not reported: the
		// failing test already says what went wrong.
		if out, _, _ := e.Crictl(step(30*time.Second), "pods", "-q"); strings.TrimSpace(out) != "" {
			for _, id := range strings.Fields(out) {
				if _, _, err := e.Crictl(step(45*time.Second), "rmp", "-f", id); err != nil {
					problems = append(problems, err.Error())
				}
			}
		}
		if out, err := e.ctr(step(30*time.Second), "tasks", "ls", "-q"); err == nil && strings.TrimSpace(out) != "" {
			problems = append(problems, "tasks left after every pod was removed: "+strings.Join(strings.Fields(out), " "))
		}
		if e.events != nil && e.events.Process != nil {
			_ = e.events.Process.Kill()
			_ = e.events.Wait()
		}
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.exited:
		case <-time.After(15 * time.Second):
			problems = append(problems, "containerd ignored SIGTERM for 15s")
			_ = e.cmd.Process.Kill()
			<-e.exited
		}
	}
	_ = e.Registry.Close()
	if killed := harness.KillLeftovers(e.Dir, e.mntNS, nil); len(killed) > 0 {
		problems = append(problems, "processes left running (killed): "+strings.Join(killed, "; "))
	}
	if e.mntNSRef != nil {
		e.mntNSRef.Close()
	}
	if e.NetNS != "" {
		if _, err := os.Stat("/var/run/netns/" + e.NetNS); err == nil {
			if _, err := run(step(30*time.Second), "", nil, "ip", "netns", "delete", e.NetNS); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	if m := harness.MountsUnder(e.Dir, "/proc/self/mountinfo"); len(m) > 0 {
		problems = append(problems, "mounts left on the host: "+strings.Join(m, " "))
		if err := harness.UnmountUnder(e.Dir); err != nil {
			problems = append(problems, err.Error())
		}
	}
	e.mu.Lock()
	ids := e.ids
	e.mu.Unlock()
	if left := removeCgroups(e.CgroupParent, ids); len(left) > 0 {
		problems = append(problems, "cgroups left (removed): "+strings.Join(left, " "))
	}
	e.removeCritestShm()
	if v := os.Getenv(harness.EnvKeep); v == "1" || v == "true" {
		fmt.Fprintf(os.Stderr, "cri: %s=1: keeping %s\n", harness.EnvKeep, e.Dir)
	} else if err := os.RemoveAll(e.Dir); err != nil {
		problems = append(problems, err.Error())
	}
	return problems
}

// removeCgroups removes, in every hierarchy, what is left under the
// crictl pods' cgroup parent and any cgroup named after a container or
// sandbox of this containerd (critest's pods use the CRI default parent,
// where runc resolves the relative path against its own cgroup), then the
// parent itself. Anything but the parent is a leak: it is returned.
func removeCgroups(parent string, ids map[string]bool) []string {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	var left []string
	for _, root := range roots {
		if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
			continue
		}
		var leaks []string
		p := filepath.Join(root, parent)
		if parent != "" && parent != "/" {
			_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() && path != p {
					leaks = append(leaks, path)
				}
				return nil
			})
		}
		for _, pattern := range []string{"*", "*/*"} {
			matches, _ := filepath.Glob(filepath.Join(root, pattern))
			for _, m := range matches {
				if ids[filepath.Base(m)] {
					leaks = append(leaks, m)
				}
			}
		}
		sort.Slice(leaks, func(i, j int) bool { return len(leaks[i]) > len(leaks[j]) })
		for _, d := range leaks {
			left = append(left, d)
			_ = os.Remove(d)
		}
		if parent != "" && parent != "/" {
			_ = os.Remove(p)
		}
	}
	return left
}

// sweepStale tears down what a killed earlier run left: its network
// namespace, processes, mounts, cgroup parent and temp dir.
func sweepStale() {
	dirs, _ := filepath.Glob("/tmp/" + tempPrefix + "*")
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		f := strings.Fields(string(data))
		if len(f) < 3 {
			continue
		}
		if pid, err := strconv.Atoi(f[0]); err == nil && (pid == os.Getpid() || syscall.Kill(pid, 0) == nil) {
			continue
		}
		harness.KillLeftovers(dir, "", nil)
		_ = exec.Command("ip", "netns", "delete", f[1]).Run()
		_ = harness.UnmountUnder(dir)
		removeCgroups(f[2], nil)
		if len(harness.MountsUnder(dir, "/proc/self/mountinfo")) == 0 {
			_ = os.RemoveAll(dir)
		}
	}
}
