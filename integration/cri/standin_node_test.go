//go:build integration

package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-dev/hardened/integration/harness"
)

// standinNode is a node for the installer to install onto: a containerd of
// its own, run the way a node runs it, in a mount namespace where the
// node's paths are the usual ones:
//
//   - /etc and /var/lib are overlays of the host's (upper dirs in the temp
//     tree: nothing is written to the host's), with /var/lib/containerd,
//     /var/lib/kubelet and /var/lib/cni bound from the temp tree (real
//     directories, as the overlayfs snapshotter needs); /run and /opt are
//     the temp tree's;
//   - containerd reads /etc/containerd/config.toml, which imports
//     /etc/containerd/conf.d/*.toml, serves /run/containerd/containerd.sock,
//     keeps its root in /var/lib/containerd: so the shipped node policy and
//     drop-in apply unchanged, and the DaemonSet's hostPath volumes are
//     what they are on a node;
//   - a supervisor shell stands for the node's init and service manager:
//     it restarts containerd whenever it exits (as systemd's
//     Restart=always), and the installer restarts containerd through it
//     (RESTART_COMMAND stops the running one and waits for it to go);
//     NODE_PID is the supervisor's pid.
//
// It shares the network namespace of the CRI suite's Env (the test
// cluster's API server is there), with a bridge and subnet of its own.
type standinNode struct {
	Name string
	Dir  string // the temp tree
	// Sock is containerd's socket as the host sees it.
	Sock string
	// CgroupParent is the parent of the installer pods' cgroups.
	CgroupParent string

	env    *Env
	sup    *exec.Cmd
	exited chan struct{}
	mntNS  string
	mntRef *os.File
	conn   *grpc.ClientConn
	RT     runtimeapi.RuntimeServiceClient
}

// nodePath maps a path as the node sees it to the host's view: through
// the supervisor's root, which is in the node's mount namespace.
func (n *standinNode) nodePath(p string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", n.sup.Process.Pid), p)
}

// Pid is the node's "init": the supervisor.
func (n *standinNode) Pid() int { return n.sup.Process.Pid }

// ContainerdPid is the running containerd's pid.
func (n *standinNode) ContainerdPid() int {
	data, err := os.ReadFile(filepath.Join(n.Dir, "run", "containerd.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// restartCommand is the node's "systemctl restart containerd": stop the
// running containerd and wait until it is gone; the supervisor starts the
// next one.
const restartCommand = `pid=$(cat /run/containerd.pid); kill "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done`

// standinScript runs in the node's new mount namespace (private: Go makes
// / rprivate there): $1 the temp tree, $2 containerd.
const standinScript = `set -eu
T=$1
for d in etc var-lib; do mkdir -p "$T/ov/$d.up" "$T/ov/$d.work"; done
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/ov/etc.up,workdir=$T/ov/etc.work" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$T/ov/var-lib.up,workdir=$T/ov/var-lib.work" /var/lib
mkdir -p /var/lib/containerd /var/lib/kubelet /var/lib/cni
mount --bind "$T/root" /var/lib/containerd
mount --bind "$T/kubelet" /var/lib/kubelet
mount --bind "$T/cni" /var/lib/cni
mount --bind "$T/run" /run
mount --bind "$T/opt" /opt
echo ready >"$T/ready"
while [ ! -e "$T/stop" ]; do
	"$2" --config /etc/containerd/config.toml >>"$T/containerd.log" 2>&1 &
	echo $! >/run/containerd.pid
	wait $! || true
	[ -e "$T/stop" ] || echo "supervisor: containerd exited; starting it again" >>"$T/containerd.log"
	sleep 0.2
done
`

// standinBridge is the node's CNI bridge: the suite's cniConfig on a bridge
// of its own (the same network namespace holds the suite's).
const standinBridge = "hdnode0"

// startStandinNode starts the node; t.Cleanup stops it and checks that
// nothing is left.
func startStandinNode(t *testing.T, e *Env) *standinNode {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "hdn-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	suffix := strings.TrimPrefix(filepath.Base(dir), "hdn-")
	n := &standinNode{
		Name: "hd-standin-" + suffix, Dir: dir,
		Sock:         filepath.Join(dir, "run", "containerd", "containerd.sock"),
		CgroupParent: "/hd-standin-" + suffix,
		env:          e, exited: make(chan struct{}),
	}
	t.Cleanup(func() {
		for _, p := range n.stop() {
			t.Errorf("stand-in node: %s", p)
		}
	})
	for _, d := range []string{"root", "kubelet", "cni", "run/containerd", "opt", "tmp", "net.d", "ipam", "registry-hosts", "ov/etc.up/containerd/conf.d"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := harness.ContainerdConfig{
		Root: "/var/lib/containerd", State: "/run/containerd", Temp: filepath.Join(dir, "tmp"),
		Address: "/run/containerd/containerd.sock", TTRPCAddress: "/run/containerd/containerd.sock.ttrpc",
		Opt: "/opt/containerd", Verifiers: "/opt/containerd/image-verifier/bin",
		// The suite's CRI tables; no registry mirrors (an empty hosts dir).
		Plugins: fmt.Sprintf(criPlugins, imagePause, filepath.Join(dir, "net.d"), filepath.Join(e.Tools, "runc"),
			filepath.Join(dir, "registry-hosts")),
		NoImports: true,
	}.TOML()
	// A node whose containerd imports its drop-in directory, as the
	// installer expects (PATCH_CONTAINERD_CONFIG covers the others).
	cfg = strings.Replace(cfg, "version = 3\n", "version = 3\nimports = [\"/etc/containerd/conf.d/*.toml\"]\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "ov/etc.up/containerd/config.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	subnet := fmt.Sprintf("10.218.%d.0/24", 1+int(randHex(1)[0])%250)
	cni := strings.Replace(fmt.Sprintf(cniConfig, "hd-node-"+suffix, subnet, filepath.Join(dir, "ipam")),
		`"bridge": "hdcri0"`, `"bridge": "`+standinBridge+`"`, 1)
	if !strings.Contains(cni, standinBridge) {
		t.Fatal("cniConfig names no bridge hdcri0 to replace")
	}
	if err := os.WriteFile(filepath.Join(dir, "net.d/10-hd-node.conflist"), []byte(cni), 0o644); err != nil {
		t.Fatal(err)
	}

	n.sup = exec.Command("nsenter", "--net=/var/run/netns/"+e.NetNS, "--", "/bin/sh", "-c", standinScript, "hd-standin", dir, filepath.Join(e.Tools, "containerd"))
	n.sup.Env = []string{
		"PATH=" + e.Tools + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "TMPDIR=" + filepath.Join(dir, "tmp"),
	}
	n.sup.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Setpgid: true}
	out, err := os.Create(filepath.Join(dir, "supervisor.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	n.sup.Stdout, n.sup.Stderr = out, out
	if err := n.sup.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.sup.Wait(); close(n.exited) }()
	if err := n.waitServing(context.Background(), 30*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	n.mntNS, n.mntRef, _ = harness.MountNS(n.sup.Process.Pid)
	n.conn, err = grpc.NewClient("unix://"+n.Sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	n.RT = runtimeapi.NewRuntimeServiceClient(n.conn)
	return n
}

// waitServing waits until a containerd other than notPid answers on the
// socket.
func (n *standinNode) waitServing(ctx context.Context, timeout time.Duration, notPid int) error {
	deadline := time.Now().Add(timeout)
	for {
		if pid := n.ContainerdPid(); pid != 0 && pid != notPid {
			if _, err := n.ctr(ctx, "version"); err == nil {
				return nil
			}
		}
		select {
		case <-n.exited:
			return fmt.Errorf("the stand-in node's supervisor exited:\n%s\n%s", n.logTail("supervisor.log", 20), n.logTail("containerd.log", 40))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the stand-in node's containerd did not serve within %s:\n%s", timeout, n.logTail("containerd.log", 40))
		}
	}
}

func (n *standinNode) logTail(name string, lines int) string {
	data, _ := os.ReadFile(filepath.Join(n.Dir, name))
	l := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// ctr runs ctr against the node's containerd (namespace k8s.io).
func (n *standinNode) ctr(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "", nil, filepath.Join(n.env.Tools, "ctr"), append([]string{"--address", n.Sock, "--namespace", k8sNamespace}, args...)...)
}

// crictl runs crictl against the node's containerd, in the node's network
// namespace.
func (n *standinNode) crictl(ctx context.Context, args ...string) (string, error) {
	return run(ctx, "", nil, "nsenter", append([]string{"--net=/var/run/netns/" + n.env.NetNS, "--",
		filepath.Join(n.env.Tools, "crictl"), "--runtime-endpoint", "unix://" + n.Sock, "--image-endpoint", "unix://" + n.Sock, "--timeout", "60s"}, args...)...)
}

// stop removes every pod, stops containerd and the supervisor, kills
// what is left in the node's mount namespace and removes the temp tree and
// the pods' cgroup parent. It returns what should have gone by itself.
func (n *standinNode) stop() (problems []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if n.sup != nil && n.sup.Process != nil {
		select {
		case <-n.exited:
		default:
			if out, err := n.crictl(ctx, "pods", "-q"); err == nil {
				for _, id := range strings.Fields(out) {
					_, _ = n.crictl(ctx, "stopp", id)
					if _, err := n.crictl(ctx, "rmp", id); err != nil {
						problems = append(problems, fmt.Sprintf("pod %s: %v", id, err))
					}
				}
			}
			_ = os.WriteFile(filepath.Join(n.Dir, "stop"), nil, 0o644)
			if pid := n.ContainerdPid(); pid != 0 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
			select {
			case <-n.exited:
			case <-time.After(30 * time.Second):
				_ = syscall.Kill(-n.sup.Process.Pid, syscall.SIGKILL)
				<-n.exited
				problems = append(problems, "the supervisor did not stop within 30s")
			}
		}
	}
	if n.conn != nil {
		_ = n.conn.Close()
	}
	if killed := harness.KillLeftovers(n.Dir, n.mntNS, nil); len(killed) > 0 {
		problems = append(problems, "processes left running (killed): "+strings.Join(killed, "; "))
	}
	if n.mntRef != nil {
		_ = n.mntRef.Close()
	}
	if left := removeCgroups(n.CgroupParent, nil); len(left) > 0 {
		problems = append(problems, "cgroups left: "+strings.Join(left, " "))
	}
	if os.Getenv("HARDENED_KEEP") != "" {
		return problems
	}
	if err := harness.UnmountUnder(n.Dir); err != nil {
		problems = append(problems, err.Error())
	}
	if err := os.RemoveAll(n.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		problems = append(problems, err.Error())
	}
	return problems
}
