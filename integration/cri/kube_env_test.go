//go:build integration

// The kubelet tests' cluster: a single-node Kubernetes (hack/kube, built by
// hack/install-kube.sh into the tools dir as one binary, `kube`) on the CRI
// suite's containerd (Env), so that the hardened shim sees exactly what a
// real kubelet asks for.
//
//   - etcd, kube-apiserver, kube-controller-manager and kube-scheduler run
//     in the Env's network namespace (nothing listens on the host); their
//     data, certificates, keys, kubeconfigs and logs are under
//     <Env.Dir>/kube. The apiserver signs service account tokens with a key
//     generated here; the controller-manager's serviceaccount and
//     root-ca-cert-publisher controllers make the "default" ServiceAccount
//     and the kube-root-ca.crt ConfigMap of every namespace, so projected
//     tokens work as on a real cluster (and DaemonSets, Deployments, ...).
//   - The node's address is on a veth pair made inside the network
//     namespace (a kubelet refuses a loopback node IP).
//   - The kubelet runs in containerd's network namespace and in a child of
//     containerd's mount namespace (unshare --propagation unchanged). Its
//     root directory <Env.Dir>/kubelet is a shared bind mount in containerd's
//     namespace, so the tmpfs it mounts for secrets and projected volumes
//     propagates to where runc resolves mount sources. In its own namespace
//     only, regular files are bound over the /proc/sys entries its
//     setupKernelTunables checks (vm.overcommit_memory, kernel.panic, ...)
//     holding the values it wants, and protectKernelDefaults is on: it finds
//     nothing to change, and would fail rather than write the host's
//     sysctls if a bind were missing. Temp dirs are bound over /var/log
//     (its /var/log/containers links) and /var/lib (its device plugin
//     socket), both fixed paths; pod logs go to podLogsDir in the temp tree.
//     Teardown fails the run if a well-known Kubernetes path appeared on
//     the host (hostPathsKube) or one of those sysctls changed. Its PATH holds only the few host tools it
//     runs (mount, umount, ...), not iptables, and makeIPTablesUtilChains is
//     off. Image GC and eviction thresholds are off (they would react to the
//     host's disk); its cgroups live under <Env.CgroupParent>/kube
//     (cgroupfs, as containerd's runc shim).
//   - The RuntimeClasses are read from deploy/ (every YAML document there of
//     kind RuntimeClass) and applied; the node gets the labels their
//     scheduling.nodeSelector asks for, as the node installer would give it.
//
// Use it from package cri:
//
//	k := kubeCluster(t)      // the cluster, node Ready and labelled
//	ns := k.Namespace(t)     // a fresh namespace, deleted (its pods gone) when t ends
//	k.Apply(t, ns, manifest) // kubectl apply -f -
//	p := k.WaitPod(t, ns, "name", 2*time.Minute, "running", func(p *kubePod) bool { ... })
//	out, err := k.Kubectl(ctx, "-n", ns, "logs", "name")
//
// k.Kubeconfig is an admin kubeconfig (system:masters); kubectl must run in
// the network namespace (k.Kubectl does: nsenter --net). k.NodeName is the
// node. There is no kube-proxy and no cluster DNS: pods reach the apiserver
// at https://<k.NodeIP>:6443 (the kubernetes Endpoints say so; the service
// address is not routed), e.g. with KUBERNETES_SERVICE_HOST set to it. The cluster runs from the first kubeCluster(t) until the last test
// that called it ends (call it from the top-level test whose subtests use
// it): then every pod is gone, and the kubelet, the control plane, their
// cgroups, mounts and state are removed. A kubelet owns containerd's k8s.io
// namespace: it would kill any pod it does not know, so the other CRI tests
// (crictl, critest) must not run while it does. A later kubeCluster(t)
// starts a fresh cluster (about 20 s).
package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
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
)

const (
	// kubeBinary is hack/install-kube.sh's multi-call binary.
	kubeBinary = "kube"
	// Addresses inside the network namespace.
	kubeNodeIP      = "10.214.0.1"
	kubeServiceCIDR = "10.215.0.0/24"
	kubeServiceIP   = "10.215.0.1"
	kubeAPIPort     = "6443"
	kubeNodeLink    = "hdkube0"
)

// Kube is the running cluster.
type Kube struct {
	Env *Env
	// Dir holds the control plane's state, keys and logs (<Env.Dir>/kube).
	Dir string
	// Bin is the kube binary; kubectl is `Bin kubectl`.
	Bin string
	// Kubeconfig is an admin kubeconfig (user admin in system:masters).
	Kubeconfig string
	// NodeName is the kubelet's node; NodeIP its address.
	NodeName, NodeIP string
	// RootDir is the kubelet's --root-dir (<Env.Dir>/kubelet, the path the
	// test policies consent to per pod); PodLogsDir its podLogsDir.
	RootDir, PodLogsDir string
	// CgroupRoot is the kubelet's cgroupRoot (under Env.CgroupParent).
	CgroupRoot string

	pki     *kubePKI
	control []*kubeProc // etcd, apiserver, controller-manager, scheduler
	kubelet *kubeProc

	hostBefore map[string]bool   // hostPathsKube that existed before the start
	sysctls    map[string]string // the host's kernelTunables before the start

	mu         sync.Mutex
	namespaces map[string]bool // made by Namespace, not yet deleted
	rootBound  bool            // RootDir is bound on itself in containerd's namespace
}

// hostPathsKube are the host paths where Kubernetes components keep state
// by default; the cluster must create none of them (checked at teardown
// against what existed before it started).
var hostPathsKube = []string{
	"/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/var/log/pods", "/var/log/containers",
	"/usr/libexec/kubernetes", "/var/run/kubernetes", "/run/kubernetes",
}

// kubeProc is one process of the cluster.
type kubeProc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

var (
	kubeMu    sync.Mutex
	theKube   *Kube
	kubeUsers int // tests between kubeCluster(t) and their end
)

// kubeCluster returns the running cluster, starting it (control plane and kubelet)
// when no test holds it. When the last test that holds it ends, the whole
// cluster is stopped and its state removed (see the file comment); a later
// kubeCluster(t) starts a fresh one.
func kubeCluster(t *testing.T) *Kube {
	t.Helper()
	e := env(t)
	needShim(t, e)
	kubeMu.Lock()
	defer kubeMu.Unlock()
	if theKube == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		start := time.Now()
		k, err := startKube(ctx, e)
		if err != nil {
			if k != nil {
				if problems := k.teardown(); len(problems) > 0 {
					t.Logf("tearing down the cluster that failed to start:\n  %s", strings.Join(problems, "\n  "))
				}
			}
			if errors.Is(err, harness.ErrUnavailable) && !harness.Required() {
				t.Skip(err)
			}
			t.Fatal(err)
		}
		t.Logf("cluster up in %v: node %s, kubeconfig %s", time.Since(start).Round(100*time.Millisecond), k.NodeName, k.Kubeconfig)
		theKube = k
	}
	kubeUsers++
	k := theKube
	t.Cleanup(func() {
		kubeMu.Lock()
		defer kubeMu.Unlock()
		kubeUsers--
		if kubeUsers > 0 {
			return
		}
		theKube = nil
		if problems := k.teardown(); len(problems) > 0 {
			t.Errorf("tearing down the cluster found leftovers:\n  %s", strings.Join(problems, "\n  "))
		}
	})
	return k
}

func startKube(ctx context.Context, e *Env) (_ *Kube, err error) {
	bin := filepath.Join(e.Tools, kubeBinary)
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %s missing (run hack/install-kube.sh)", harness.ErrUnavailable, bin)
	}
	k := &Kube{
		Env: e, Dir: filepath.Join(e.Dir, "kube"), Bin: bin,
		NodeName: e.NetNS, NodeIP: kubeNodeIP,
		RootDir:    filepath.Join(e.Dir, kubeletDir),
		PodLogsDir: filepath.Join(e.Dir, "kube", "pod-logs"),
		CgroupRoot: e.CgroupParent + "/kube",
		namespaces: map[string]bool{},
		hostBefore: map[string]bool{},
	}
	for _, p := range hostPathsKube {
		if _, err := os.Lstat(p); err == nil {
			k.hostBefore[p] = true
		}
	}
	k.sysctls = hostSysctls()
	for _, d := range []string{"etcd", "logs", "home", "varlog", "varlib", "sysctl", "path", "volume-plugins", "static-pods", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(k.Dir, d), 0o755); err != nil {
			return k, err
		}
	}
	if err := os.MkdirAll(k.RootDir, 0o750); err != nil {
		return k, err
	}
	// The node's address: a veth pair inside the network namespace.
	for _, args := range [][]string{
		{"-n", e.NetNS, "link", "add", kubeNodeLink, "type", "veth", "peer", "name", kubeNodeLink + "p"},
		{"-n", e.NetNS, "addr", "add", k.NodeIP + "/24", "dev", kubeNodeLink},
		{"-n", e.NetNS, "link", "set", kubeNodeLink, "up"},
		{"-n", e.NetNS, "link", "set", kubeNodeLink + "p", "up"},
	} {
		if _, err := run(ctx, "", nil, "ip", args...); err != nil {
			return k, err
		}
	}
	if err := k.writePKI(); err != nil {
		return k, fmt.Errorf("failed to write the cluster's keys: %w", err)
	}

	// etcd: plain HTTP on the namespace's loopback, no fsync (test data).
	etcd := []string{"etcd", "--name", "hd", "--data-dir", filepath.Join(k.Dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "hd=http://127.0.0.1:2380", "--listen-metrics-urls", "",
		"--unsafe-no-fsync", "--log-level", "warn"}
	if err := k.startControl("etcd", etcd); err != nil {
		return k, err
	}
	p := k.pki.path
	apiserver := []string{"kube-apiserver",
		"--etcd-servers", "http://127.0.0.1:2379",
		"--bind-address", "0.0.0.0", "--secure-port", kubeAPIPort, "--advertise-address", k.NodeIP,
		"--cert-dir", filepath.Join(k.Dir, "apiserver-certs"),
		"--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
		"--client-ca-file", p("ca.crt"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p("sa.pub"), "--service-account-signing-key-file", p("sa.key"),
		"--service-cluster-ip-range", kubeServiceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--kubelet-client-certificate", p("apiserver-kubelet.crt"), "--kubelet-client-key", p("apiserver-kubelet.key"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--allow-privileged=true", "--enable-priority-and-fairness=false", "--profiling=false",
	}
	if err := k.startControl("kube-apiserver", apiserver); err != nil {
		return k, err
	}
	if err := k.waitAPI(ctx); err != nil {
		return k, err
	}
	cm := []string{"kube-controller-manager",
		"--kubeconfig", filepath.Join(k.Dir, "controller-manager.conf"),
		"--leader-elect=false", "--secure-port=0", "--profiling=false",
		"--root-ca-file", p("ca.crt"), "--service-account-private-key-file", p("sa.key"),
		"--cluster-signing-cert-file", p("ca.crt"), "--cluster-signing-key-file", p("ca.key"),
		"--use-service-account-credentials=false",
		// It makes this directory (default under /usr/libexec).
		"--flex-volume-plugin-dir", filepath.Join(k.Dir, "volume-plugins"),
	}
	if err := k.startControl("kube-controller-manager", cm); err != nil {
		return k, err
	}
	sched := []string{"kube-scheduler",
		"--kubeconfig", filepath.Join(k.Dir, "scheduler.conf"),
		"--leader-elect=false", "--secure-port=0", "--profiling=false",
	}
	if err := k.startControl("kube-scheduler", sched); err != nil {
		return k, err
	}
	if err := k.applyRuntimeClasses(ctx); err != nil {
		return k, err
	}
	return k, k.startKubelet(ctx)
}

func (k *Kube) writePKI() error {
	pki, err := newKubePKI(filepath.Join(k.Dir, "pki"))
	if err != nil {
		return err
	}
	k.pki = pki
	if err := pki.writeCAKey(); err != nil {
		return err
	}
	if err := pki.serviceAccountKey(); err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(k.NodeIP), net.ParseIP(kubeServiceIP)}
	dns := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	for _, c := range []struct {
		name, cn string
		groups   []string
		ips      []net.IP
		dns      []string
	}{
		{"apiserver", "kube-apiserver", nil, ips, dns},
		{"apiserver-kubelet", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil},
		{"admin", "admin", []string{"system:masters"}, nil, nil},
		// A test cluster: the controller-manager and scheduler as masters.
		{"controller-manager", "system:kube-controller-manager", []string{"system:masters"}, nil, nil},
		{"scheduler", "system:kube-scheduler", []string{"system:masters"}, nil, nil},
		// The kubelet as a real one: the Node authorizer and NodeRestriction apply.
		{"kubelet", "system:node:" + k.NodeName, []string{"system:nodes"}, nil, nil},
	} {
		if err := pki.issue(c.name, c.cn, c.groups, c.ips, c.dns); err != nil {
			return err
		}
	}
	server := "https://127.0.0.1:" + kubeAPIPort
	k.Kubeconfig = filepath.Join(k.Dir, "admin.conf")
	for file, user := range map[string]string{
		k.Kubeconfig: "admin", filepath.Join(k.Dir, "controller-manager.conf"): "controller-manager",
		filepath.Join(k.Dir, "scheduler.conf"): "scheduler", filepath.Join(k.Dir, "kubelet.conf"): "kubelet",
	} {
		if err := pki.kubeconfig(file, server, user); err != nil {
			return err
		}
	}
	return nil
}

// procEnv is the environment of every process of the cluster: HOME and
// TMPDIR in the temp tree (kubectl caches discovery under $HOME/.kube).
func (k *Kube) procEnv(path string) []string {
	return []string{"PATH=" + path, "HOME=" + filepath.Join(k.Dir, "home"), "TMPDIR=" + filepath.Join(k.Env.Dir, "tmp")}
}

// startControl starts a control plane process in the network namespace.
func (k *Kube) startControl(name string, args []string) error {
	cmd := exec.Command("nsenter", append([]string{"--net=/var/run/netns/" + k.Env.NetNS, "--", k.Bin}, args...)...)
	cmd.Env = k.procEnv("/usr/bin:/bin")
	p, err := k.spawn(name, cmd)
	if err != nil {
		return err
	}
	k.control = append(k.control, p)
	return nil
}

func (k *Kube) spawn(name string, cmd *exec.Cmd) (*kubeProc, error) {
	p := &kubeProc{name: name, cmd: cmd, log: filepath.Join(k.Dir, "logs", name+".log"), exited: make(chan struct{})}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd.Dir = k.Dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *kubeProc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// tail returns the last n lines of the process's log.
func (p *kubeProc) tail(n int) string {
	data, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM and waits, then SIGKILL; it says whether the process
// had to be killed.
func (p *kubeProc) stop(grace time.Duration) (killed bool) {
	if !p.running() {
		return false
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return false
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return true
	}
}

// exitedEarly reports a control plane process that is not running.
func (k *Kube) exitedEarly() error {
	for _, p := range k.control {
		if !p.running() {
			return fmt.Errorf("%s exited:\n%s", p.name, p.tail(30))
		}
	}
	return nil
}

func (k *Kube) waitAPI(ctx context.Context) error {
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if err := k.exitedEarly(); err != nil {
			return err
		}
		out, err := k.Kubectl(ctx, "get", "--raw", "/readyz")
		if err == nil && strings.TrimSpace(out) == "ok" {
			return nil
		}
		last = err
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("the apiserver was not ready within 90s: %v\n%s", last, k.control[1].tail(30))
}

// Kubectl runs kubectl as admin in the network namespace; it returns stdout,
// and stderr in the error.
func (k *Kube) Kubectl(ctx context.Context, args ...string) (string, error) {
	return k.kubectlIn(ctx, nil, args...)
}

func (k *Kube) kubectlIn(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=/var/run/netns/" + k.Env.NetNS, "--",
		k.Bin, "kubectl", "--kubeconfig", k.Kubeconfig}, args...)...)
	cmd.Env = k.procEnv("/usr/bin:/bin")
	cmd.Dir = k.Dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// MustKubectl is Kubectl that fails the test on error.
func (k *Kube) MustKubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := k.Kubectl(ctx(t, 2*time.Minute), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Apply applies a manifest (YAML or JSON, several documents) in namespace
// ns ("" for the manifest's own or cluster-scoped objects).
func (k *Kube) Apply(t *testing.T, ns, manifest string) {
	t.Helper()
	args := []string{"apply", "-f", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	if _, err := k.kubectlIn(ctx(t, 2*time.Minute), []byte(manifest), args...); err != nil {
		t.Fatal(err)
	}
}

// runtimeClassDocs returns every YAML document under deploy/ whose kind is
// RuntimeClass (deploy/ is laid out by the installer's own tests; the
// RuntimeClasses are whatever it ships).
func runtimeClassDocs(repo string) ([]string, error) {
	var docs []string
	kind := regexp.MustCompile(`(?m)^kind:\s*RuntimeClass\s*$`)
	err := filepath.WalkDir(filepath.Join(repo, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			if kind.MatchString(doc) {
				docs = append(docs, doc)
			}
		}
		return nil
	})
	return docs, err
}

// applyRuntimeClasses applies deploy/'s RuntimeClasses.
func (k *Kube) applyRuntimeClasses(ctx context.Context) error {
	docs, err := runtimeClassDocs(k.Env.Repo)
	if err != nil {
		return err
	}
	if len(docs) == 0 {
		return fmt.Errorf("no RuntimeClass in %s", filepath.Join(k.Env.Repo, "deploy"))
	}
	_, err = k.kubectlIn(ctx, []byte(strings.Join(docs, "\n---\n")), "apply", "-f", "-")
	return err
}

// nodeLabels returns the labels the RuntimeClasses' scheduling.nodeSelector
// ask for (what the node installer would put on the node).
func (k *Kube) nodeLabels(ctx context.Context) (map[string]string, error) {
	out, err := k.Kubectl(ctx, "get", "runtimeclasses", "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Scheduling *struct {
				NodeSelector map[string]string `json:"nodeSelector"`
			} `json:"scheduling"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, err
	}
	labels := map[string]string{}
	for _, rc := range list.Items {
		if rc.Scheduling != nil {
			for key, v := range rc.Scheduling.NodeSelector {
				labels[key] = v
			}
		}
	}
	return labels, nil
}

// kubeletConfig is the KubeletConfiguration (see the file comment for why
// each host-facing setting is what it is).
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1, which the kubelet refuses since 1.35 unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %[1]q
cgroupsPerQOS: true
containerRuntimeEndpoint: unix://%[2]s
podLogsDir: %[3]q
staticPodPath: %[4]q
volumePluginDir: %[5]q
resolvConf: %[6]q
address: %[7]q
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: false
  x509:
    clientCAFile: %[8]q
authorization:
  mode: AlwaysAllow
protectKernelDefaults: true
makeIPTablesUtilChains: false
oomScoreAdj: 0
failSwapOn: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {}
mergeDefaultEvictionSettings: false
localStorageCapacityIsolation: false
serializeImagePulls: false
maxPods: 30
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
`

// kernelTunables are the sysctls the kubelet's setupKernelTunables checks
// (k8s.io/component-helpers/node/util/sysctl) and the values it wants.
var kernelTunables = map[string]string{
	"vm.overcommit_memory":      "1",
	"vm.panic_on_oom":           "0",
	"kernel.panic":              "10",
	"kernel.panic_on_oops":      "1",
	"kernel.keys.root_maxkeys":  "1000000",
	"kernel.keys.root_maxbytes": "25000000",
}

// hostSysctls reads the host's values of kernelTunables (this process is
// in the host's mount namespace, where nothing is bound over them).
func hostSysctls() map[string]string {
	m := map[string]string{}
	for name := range kernelTunables {
		data, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		if err == nil {
			m[name] = strings.TrimSpace(string(data))
		}
	}
	return m
}

// kubeletTools are the host programs the kubelet runs (mount-utils, ...):
// its PATH holds links to these only (no iptables).
var kubeletTools = []string{"mount", "umount", "findmnt", "nsenter", "losetup", "blkid", "du", "find", "nice", "ionice"}

// kubeletScript runs in the kubelet's own mount namespace: binds the
// sysctl stand-ins ($1), a dir over /var/log ($2: /var/log/containers is a
// fixed path) and one over /var/lib ($3: the device manager's socket is
// /var/lib/kubelet/device-plugins/kubelet.sock whatever --root-dir says),
// then execs the kubelet with PATH $4.
const kubeletScript = `set -e
for f in "$1"/*; do
  mount --bind "$f" "/proc/sys/$(basename "$f" | tr . /)"
done
mount --bind "$2" /var/log
mount --bind "$3" /var/lib
export PATH="$4"
shift 4
exec "$@"`

// prepareNode makes the kubelet's cgroup root (cgroupfs: in every v1
// hierarchy, cpuset initialised from its parent), its PATH and sysctl
// stand-ins, and binds its root dir on itself, shared, in containerd's
// mount namespace.
func (k *Kube) prepareNode(ctx context.Context) error {
	if err := makeCgroup(k.CgroupRoot); err != nil {
		return err
	}
	for name, v := range kernelTunables {
		if err := os.WriteFile(filepath.Join(k.Dir, "sysctl", name), []byte(v+"\n"), 0o444); err != nil {
			return err
		}
	}
	for _, tool := range kubeletTools {
		if p, err := exec.LookPath(tool); err == nil {
			link := filepath.Join(k.Dir, "path", tool)
			_ = os.Remove(link)
			if err := os.Symlink(p, link); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(k.Dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(kubeletConfig, k.CgroupRoot, k.Env.Sock, k.PodLogsDir,
		filepath.Join(k.Dir, "static-pods"), filepath.Join(k.Dir, "volume-plugins"),
		filepath.Join(k.Dir, "resolv.conf"), k.NodeIP, k.pki.path("ca.crt"))
	if err := os.WriteFile(filepath.Join(k.Dir, "kubelet.yaml"), []byte(cfg), 0o644); err != nil {
		return err
	}
	if !k.rootBound {
		cmd := k.Env.inNS(ctx, "/bin/sh", "-c", `mount --bind "$0" "$0" && mount --make-rshared "$0"`, k.RootDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("failed to bind the kubelet's root dir in containerd's mount namespace: %w: %s", err, out)
		}
		k.rootBound = true
	}
	return nil
}

// makeCgroup makes path in every cgroup v1 hierarchy (and v2 when that is
// the unified one), parents first.
func makeCgroup(path string) error {
	for _, root := range cgroupHierarchies() {
		dir := root
		for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			// A new v1 cpuset has no cpus and mems: copy its parent's.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if cur, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.TrimSpace(string(cur)) == "" {
					if v, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
						_ = os.WriteFile(filepath.Join(dir, f), v, 0o644)
					}
				}
			}
		}
	}
	return nil
}

// cgroupHierarchies are the mounted hierarchies (/sys/fs/cgroup/<name> on
// v1, with the hybrid layout's unified one, where the kubelet makes its
// cgroups too; /sys/fs/cgroup itself on v2).
func cgroupHierarchies() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	var roots []string
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, d := range entries {
		p := filepath.Join("/sys/fs/cgroup", d.Name())
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			continue
		}
		roots = append(roots, p)
	}
	return roots
}

// startKubelet starts the kubelet unless it runs, waits for the node to be
// Ready and labels it for the RuntimeClasses.
func (k *Kube) startKubelet(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kubelet != nil && k.kubelet.running() {
		return nil
	}
	if err := k.exitedEarly(); err != nil {
		return err
	}
	if err := k.prepareNode(ctx); err != nil {
		return err
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return fmt.Errorf("%w: unshare not in PATH", harness.ErrUnavailable)
	}
	args := []string{"--target", strconv.Itoa(k.Env.PID()), "--mount", "--net", "--",
		unshare, "--mount", "--propagation", "unchanged", "--",
		"/bin/sh", "-c", kubeletScript, "hd-kubelet", filepath.Join(k.Dir, "sysctl"), filepath.Join(k.Dir, "varlog"), filepath.Join(k.Dir, "varlib"), filepath.Join(k.Dir, "path"),
		k.Bin, "kubelet",
		"--config", filepath.Join(k.Dir, "kubelet.yaml"),
		"--kubeconfig", filepath.Join(k.Dir, "kubelet.conf"),
		"--root-dir", k.RootDir, "--cert-dir", filepath.Join(k.Dir, "kubelet-pki"),
		"--hostname-override", k.NodeName, "--node-ip", k.NodeIP,
	}
	cmd := exec.Command("nsenter", args...)
	cmd.Env = k.procEnv("/usr/bin:/bin")
	p, err := k.spawn("kubelet", cmd)
	if err != nil {
		return err
	}
	k.kubelet = p
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if !p.running() {
			return fmt.Errorf("the kubelet exited:\n%s", p.tail(40))
		}
		out, _ := k.Kubectl(ctx, "get", "node", k.NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if strings.TrimSpace(out) == "True" {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not Ready within 2m:\n%s", k.NodeName, p.tail(40))
		}
		time.Sleep(time.Second)
	}
	labels, err := k.nodeLabels(ctx)
	if err != nil {
		return err
	}
	args = []string{"label", "node", k.NodeName, "--overwrite"}
	for key, v := range labels {
		args = append(args, key+"="+v)
	}
	if len(labels) > 0 {
		if _, err := k.Kubectl(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// kubeletPods returns the CRI pod sandboxes the kubelet made (label
// io.kubernetes.pod.namespace), as "id namespace/name".
func (k *Kube) kubeletPods(ctx context.Context) []string {
	out, _, err := k.Env.Crictl(ctx, "pods", "-o", "json")
	if err != nil {
		return nil
	}
	var list struct {
		Items []struct {
			ID     string            `json:"id"`
			Labels map[string]string `json:"labels"`
		} `json:"items"`
	}
	if json.Unmarshal([]byte(out), &list) != nil {
		return nil
	}
	var pods []string
	for _, p := range list.Items {
		if ns := p.Labels["io.kubernetes.pod.namespace"]; ns != "" {
			pods = append(pods, p.ID+" "+ns+"/"+p.Labels["io.kubernetes.pod.name"])
		}
	}
	return pods
}

// stopKubelet deletes what is left in the namespaces made by Namespace,
// waits for the node's pods and their cgroups to go, stops the kubelet and
// removes the sandboxes it left to its garbage collector. It returns what
// it had to clean up by force.
func (k *Kube) stopKubelet() (problems []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kubelet == nil || !k.kubelet.running() {
		if k.kubelet != nil {
			problems = append(problems, "the kubelet had exited:\n"+k.kubelet.tail(30))
		}
		return problems
	}
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for ns := range k.namespaces {
		if _, err := k.Kubectl(c, "delete", "namespace", ns, "--wait=false", "--ignore-not-found"); err != nil {
			problems = append(problems, err.Error())
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := k.Kubectl(c, "get", "pods", "-A", "--field-selector", "spec.nodeName="+k.NodeName, "-o", "name")
		left := strings.Fields(out)
		if err == nil && len(left) == 0 && len(k.podCgroups()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			problems = append(problems, fmt.Sprintf("pods or pod cgroups left on the node after 2m: %v %v", left, k.podCgroups()))
			break
		}
		time.Sleep(time.Second)
	}
	if k.kubelet.stop(30 * time.Second) {
		problems = append(problems, "the kubelet ignored SIGTERM for 30s")
	}
	// Stopped sandboxes wait for the kubelet's garbage collector; removing
	// them is the normal end of a node, not a leak. A running one is.
	for _, p := range k.kubeletPods(c) {
		f := strings.Fields(p)
		st, _, _ := k.Env.Crictl(c, "inspectp", "-o", "go-template", "--template", "{{.status.state}}", f[0])
		if strings.TrimSpace(st) == "SANDBOX_READY" {
			problems = append(problems, "pod sandbox still running after its pod was deleted: "+p)
		}
		if _, _, err := k.Env.Crictl(c, "rmp", "-f", f[0]); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// podCgroups returns the pod cgroups under the kubelet's cgroup root.
func (k *Kube) podCgroups() []string {
	var pods []string
	for _, root := range cgroupHierarchies() {
		base := filepath.Join(root, k.CgroupRoot)
		_ = filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "pod") {
				pods = append(pods, path)
				return filepath.SkipDir
			}
			return nil
		})
	}
	return pods
}

// teardown runs before the Env's: it stops the kubelet (if a test left it
// running) and the control plane, removes the kubelet's cgroup root (its
// QoS cgroups are expected; a pod's is a leak) and the bind of its root dir,
// and checks that no mount is left under the root dir in containerd's
// mount namespace.
func (k *Kube) teardown() (problems []string) {
	if k.kubelet != nil && k.kubelet.running() {
		problems = append(problems, k.stopKubelet()...)
	}
	for i := len(k.control) - 1; i >= 0; i-- {
		if k.control[i].stop(20 * time.Second) {
			problems = append(problems, k.control[i].name+" ignored SIGTERM for 20s")
		}
	}
	if left := k.podCgroups(); len(left) > 0 {
		problems = append(problems, "pod cgroups left by the kubelet: "+strings.Join(left, " "))
	}
	var dirs []string
	for _, root := range cgroupHierarchies() {
		base := filepath.Join(root, k.CgroupRoot)
		_ = filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			problems = append(problems, fmt.Sprintf("cgroup %s: %v", d, err))
		}
	}
	if k.rootBound && k.Env.cmd != nil && k.Env.cmd.Process != nil {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var left []string
		for _, m := range harness.MountsUnder(k.RootDir, fmt.Sprintf("/proc/%d/mountinfo", k.Env.PID())) {
			if m != k.RootDir {
				left = append(left, m)
			}
		}
		if len(left) > 0 {
			problems = append(problems, "mounts left under the kubelet's root dir (in containerd's mount namespace): "+strings.Join(left, " "))
		}
		if out, err := k.Env.inNS(c, "umount", "-R", k.RootDir).CombinedOutput(); err != nil {
			problems = append(problems, fmt.Sprintf("umount -R %s: %v: %s", k.RootDir, err, out))
		}
		k.rootBound = false
	}
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := run(c, "", nil, "ip", "-n", k.Env.NetNS, "link", "del", kubeNodeLink); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		problems = append(problems, err.Error())
	}
	for _, p := range hostPathsKube {
		if _, err := os.Lstat(p); err == nil && !k.hostBefore[p] {
			problems = append(problems, "the cluster created "+p+" on the host (removed)")
			_ = os.RemoveAll(p)
		}
	}
	for name, v := range hostSysctls() {
		if before := k.sysctls[name]; v != before {
			problems = append(problems, fmt.Sprintf("the host's %s changed from %s to %s", name, before, v))
		}
	}
	// The next cluster starts fresh: etcd's data, keys, the kubelet's state.
	if v := os.Getenv(harness.EnvKeep); v != "1" && v != "true" {
		for _, d := range []string{k.Dir, k.RootDir} {
			if m := harness.MountsUnder(d, "/proc/self/mountinfo"); len(m) > 0 {
				problems = append(problems, "mounts left on the host: "+strings.Join(m, " "))
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	return problems
}

// Namespace makes a namespace for t (named after it) and waits for its
// "default" ServiceAccount and kube-root-ca.crt ConfigMap (the
// controller-manager's); it is deleted, and its pods waited for, when t
// ends.
func (k *Kube) Namespace(t *testing.T) string {
	t.Helper()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	name = strings.Trim(name, "-") + "-" + randHex(3)
	k.MustKubectl(t, "create", "namespace", name)
	k.mu.Lock()
	k.namespaces[name] = true
	k.mu.Unlock()
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if _, err := k.Kubectl(c, "delete", "namespace", name, "--timeout=150s"); err != nil {
			t.Errorf("deleting namespace %s: %v", name, err)
			return
		}
		k.mu.Lock()
		delete(k.namespaces, name)
		k.mu.Unlock()
	})
	deadline := time.Now().Add(time.Minute)
	for {
		_, e1 := k.Kubectl(ctx(t, 30*time.Second), "-n", name, "get", "serviceaccount", "default")
		_, e2 := k.Kubectl(ctx(t, 30*time.Second), "-n", name, "get", "configmap", "kube-root-ca.crt")
		if e1 == nil && e2 == nil {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatalf("namespace %s: no default ServiceAccount or kube-root-ca.crt within 1m: %v; %v", name, e1, e2)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// kubePod is what the tests read of a Pod.
type kubePod struct {
	Metadata struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"metadata"`
	Spec struct {
		NodeName         string `json:"nodeName"`
		RuntimeClassName string `json:"runtimeClassName"`
	} `json:"spec"`
	Status struct {
		Phase                 string          `json:"phase"`
		Conditions            []kubeCondition `json:"conditions"`
		InitContainerStatuses []kubeCtrStatus `json:"initContainerStatuses"`
		ContainerStatuses     []kubeCtrStatus `json:"containerStatuses"`
	} `json:"status"`
}

type kubeCondition struct {
	Type   string `json:"type"`
	Status string `json:"status"`
}

type kubeCtrStatus struct {
	Name         string       `json:"name"`
	Ready        bool         `json:"ready"`
	RestartCount int          `json:"restartCount"`
	ContainerID  string       `json:"containerID"`
	State        kubeCtrState `json:"state"`
	LastState    kubeCtrState `json:"lastState"`
}

type kubeCtrState struct {
	Waiting *struct {
		Reason  string `json:"reason"`
		Message string `json:"message"`
	} `json:"waiting"`
	Running *struct {
		StartedAt string `json:"startedAt"`
	} `json:"running"`
	Terminated *struct {
		ExitCode int    `json:"exitCode"`
		Reason   string `json:"reason"`
		Message  string `json:"message"`
	} `json:"terminated"`
}

// Container returns the status of container name (init containers too).
func (p *kubePod) Container(name string) *kubeCtrStatus {
	for _, list := range [][]kubeCtrStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// Ready reports the pod's Ready condition.
func (p *kubePod) Ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// GetPod reads a pod.
func (k *Kube) GetPod(t *testing.T, ns, name string) (*kubePod, error) {
	t.Helper()
	out, err := k.Kubectl(ctx(t, time.Minute), "-n", ns, "get", "pod", name, "-o", "json")
	if err != nil {
		return nil, err
	}
	var p kubePod
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// WaitPod polls the pod until done returns true; on timeout it fails the
// test with the pod's status, events and the kubelet's log tail.
func (k *Kube) WaitPod(t *testing.T, ns, name string, timeout time.Duration, what string, done func(*kubePod) bool) *kubePod {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *kubePod
	for time.Now().Before(deadline) {
		p, err := k.GetPod(t, ns, name)
		if err == nil {
			last = p
			if done(p) {
				return p
			}
		}
		if k.kubelet == nil || !k.kubelet.running() {
			break
		}
		time.Sleep(time.Second)
	}
	status, _ := json.MarshalIndent(last, "", "  ")
	t.Fatalf("pod %s/%s: not %s within %v:\n%s\nevents:\n%s\nkubelet:\n%s", ns, name, what, timeout, status,
		k.Events(t, ns, name), k.kubelet.tail(20))
	return nil
}

// Events returns the events of object name in ns, one "reason: message" a
// line.
func (k *Kube) Events(t *testing.T, ns, name string) string {
	t.Helper()
	out, err := k.Kubectl(ctx(t, time.Minute), "-n", ns, "get", "events",
		"--field-selector", "involvedObject.name="+name, "-o", "json")
	if err != nil {
		return err.Error()
	}
	var list struct {
		Items []struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, e := range list.Items {
		fmt.Fprintf(&b, "%s: %s\n", e.Reason, e.Message)
	}
	return b.String()
}

// Exec runs kubectl exec in a container; stdout and the error (stderr in it).
func (k *Kube) Exec(t *testing.T, ns, pod, container string, cmd ...string) (string, error) {
	t.Helper()
	return k.Kubectl(ctx(t, time.Minute), append([]string{"-n", ns, "exec", pod, "-c", container, "--"}, cmd...)...)
}

// MustExec is Exec that fails the test on error.
func (k *Kube) MustExec(t *testing.T, ns, pod, container string, cmd ...string) string {
	t.Helper()
	out, err := k.Exec(t, ns, pod, container, cmd...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
