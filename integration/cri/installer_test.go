//go:build integration

package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/hardened-dev/hardened/integration/harness"
	"github.com/hardened-dev/hardened/internal/kube"
)

// installerRepo is the installer image's name in deploy/base.
const installerRepo = "ghcr.io/hardened-dev/hardened-installer"

// Two builds of this tree, stamped as two releases: the upgrade goes from
// the first to the second.
const (
	installerV1 = "v0.0.1-test"
	installerV2 = "v0.0.2-test"
)

// TestInstallerImage builds the node installer image (hack/installer-image,
// from static binaries, without Docker), imports it into a stand-in node's
// containerd (standinNode: a containerd run as a node runs it, restartable
// through its "service manager") and runs the DaemonSet of deploy/ on it:
// the pod the kubelet would start from the kustomize-rendered DaemonSet
// (internal/kube's CRI requests, with its configMap, hostPath and service
// account token volumes provided as the kubelet would), against the test
// cluster's API server with the installer's own service account, RBAC and
// admission policy. In order:
//
//   - an install whose check fails (the node policy names a runc that is not
//     there) exits 1, leaves the node unlabelled and records a Warning
//     InstallFailed event saying why;
//   - install: preflight, files, verify (check-host, the CRI's handlers,
//     one container under each), then the labels hardened.dev/ready=true
//     and hardened.dev/version, and a Normal Installed event;
//   - re-install: idempotent (containerd is not restarted);
//   - upgrade to the next release with a hardened container running: the
//     container keeps running on the old shim binary (unlinked, not
//     overwritten), new containers get the new one, the version label moves;
//   - uninstall while that container runs: the labels go first, then it
//     refuses after UNINSTALL_TIMEOUT, naming the container (event
//     UninstallBlocked), and removes nothing;
//   - uninstall once it is gone: drop-in, binaries and policies removed,
//     containerd restarted without the hardened handlers;
//   - re-install after the uninstall;
//   - the installer's account can change nothing but its own node's
//     hardened.dev/ labels.
func TestInstallerImage(t *testing.T) {
	e := env(t)
	needShim(t, e)
	k := kubeCluster(t)
	n := startStandinNode(t, e)
	in := newInstallerRun(t, e, k, n)

	var running *nodeContainer // a hardened container kept running across the upgrade

	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"a failing check leaves the node unlabelled", func(t *testing.T) {
			bad := in.nodeFiles(t)
			bad["policy.toml"] = strings.Replace(bad["policy.toml"], `path = "runc"`, `path = "/nonexistent/runc"`, 1)
			if bad["policy.toml"] == in.nodeFiles(t)["policy.toml"] {
				t.Fatal("deploy/base/node/policy.toml has no runc path to break")
			}
			code, log := in.run(t, "install", installerV1, bad, nil)
			if code == 0 {
				t.Fatalf("install exited 0 with a node policy whose runc is missing:\n%s", log)
			}
			if !strings.Contains(log, "check-host") || !strings.Contains(log, "runc: failed to probe runtime") {
				t.Errorf("the log does not say check-host failed on the missing runc:\n%s", log)
			}
			in.wantLabels(t, nil)
			in.wantEvent(t, "Warning", "InstallFailed", "runc: failed to probe runtime")
		}},
		{"install", func(t *testing.T) {
			code, log := in.run(t, "install", installerV1, nil, nil)
			if code != 0 {
				t.Fatalf("install exited %d:\n%s", code, log)
			}
			for _, h := range []string{handlerHardened, handlerGVisor} {
				if !strings.Contains(log, "verify: ok: handler "+h+" ran a container to exit 0") {
					t.Errorf("the log does not show a verified container under %s:\n%s", h, log)
				}
			}
			in.wantLabels(t, map[string]string{"hardened.dev/ready": "true", "hardened.dev/version": installerV1})
			in.wantEvent(t, "Normal", "Installed", installerV1)
		}},
		{"re-install is idempotent", func(t *testing.T) {
			before := n.ContainerdPid()
			code, log := in.run(t, "install", installerV1, nil, nil)
			if code != 0 {
				t.Fatalf("re-install exited %d:\n%s", code, log)
			}
			if !strings.Contains(log, "containerd's config is unchanged: no restart") || n.ContainerdPid() != before {
				t.Errorf("re-install restarted containerd (pid %d -> %d):\n%s", before, n.ContainerdPid(), log)
			}
			in.wantLabels(t, map[string]string{"hardened.dev/ready": "true", "hardened.dev/version": installerV1})
		}},
		{"upgrade with a container running", func(t *testing.T) {
			running = in.startContainer(t, "keep", installerV1)
			oldShim := running.shimExe(t)
			code, log := in.run(t, "install", installerV2, nil, nil)
			if code != 0 {
				t.Fatalf("upgrade exited %d:\n%s", code, log)
			}
			in.wantLabels(t, map[string]string{"hardened.dev/ready": "true", "hardened.dev/version": installerV2})
			if st := running.state(t); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
				t.Fatalf("the container started before the upgrade is %s", st)
			}
			// The old shim keeps running its binary, now unlinked: the
			// installer renamed the new one over the name.
			if exe := running.shimExe(t); !strings.HasSuffix(exe, " (deleted)") || !strings.HasPrefix(exe, strings.TrimSuffix(oldShim, " (deleted)")) {
				t.Errorf("the running container's shim runs %q, want the old binary, unlinked (%q)", exe, oldShim+" (deleted)")
			}
			fresh := in.startContainer(t, "fresh", installerV2)
			if exe := fresh.shimExe(t); strings.HasSuffix(exe, " (deleted)") {
				t.Errorf("a container started after the upgrade runs on %q", exe)
			}
			out, err := exec.Command(n.nodePath("/opt/hardened/bin/hardenctl"), "version").CombinedOutput()
			if err != nil || !strings.Contains(string(out), installerV2) {
				t.Errorf("the node's hardenctl is not %s: %v %s", installerV2, err, out)
			}
			fresh.remove(t)
		}},
		{"uninstall refuses while a hardened container runs", func(t *testing.T) {
			code, log := in.run(t, "uninstall", installerV2, nil, map[string]string{"UNINSTALL_TIMEOUT": "4"})
			if code == 0 {
				t.Fatalf("uninstall exited 0 with a container on the hardened shim:\n%s", log)
			}
			if !strings.Contains(log, "refusing to uninstall") || !strings.Contains(log, running.podName) {
				t.Errorf("the refusal does not name the running container's pod %s:\n%s", running.podName, log)
			}
			// No new hardened pods: the labels went first.
			in.wantLabels(t, nil)
			in.wantEvent(t, "Warning", "UninstallBlocked", running.podName)
			for _, p := range []string{"/etc/containerd/conf.d/hardened.toml", "/opt/hardened/bin/containerd-shim-hardened-v2", "/etc/hardened/policy.toml"} {
				if _, err := os.Stat(n.nodePath(p)); err != nil {
					t.Errorf("a refused uninstall removed %s: %v", p, err)
				}
			}
		}},
		{"uninstall", func(t *testing.T) {
			running.remove(t)
			before := n.ContainerdPid()
			code, log := in.run(t, "uninstall", installerV2, nil, nil)
			if code != 0 {
				t.Fatalf("uninstall exited %d:\n%s", code, log)
			}
			for _, p := range []string{"/etc/containerd/conf.d/hardened.toml", "/opt/hardened/bin"} {
				if _, err := os.Stat(n.nodePath(p)); !os.IsNotExist(err) {
					t.Errorf("%s is still on the node after uninstall (%v)", p, err)
				}
			}
			// /etc/hardened was the DaemonSet's hostPath mount: the
			// installer empties it (it cannot remove a mount point).
			if left, err := os.ReadDir(n.nodePath("/etc/hardened")); err != nil && !os.IsNotExist(err) || len(left) > 0 {
				t.Errorf("/etc/hardened holds %v after uninstall (%v)", left, err)
			}
			if n.ContainerdPid() == before {
				t.Error("uninstall did not restart containerd")
			}
			handlers := in.criHandlers(t)
			for _, h := range []string{handlerHardened, handlerGVisor} {
				if strings.Contains(handlers, `"`+h+`"`) {
					t.Errorf("containerd still lists handler %s after uninstall: %s", h, handlers)
				}
			}
			in.wantLabels(t, nil)
			in.wantEvent(t, "Normal", "Uninstalled", "uninstalled")
		}},
		{"re-install after uninstall", func(t *testing.T) {
			code, log := in.run(t, "install", installerV2, nil, nil)
			if code != 0 {
				t.Fatalf("install after uninstall exited %d:\n%s", code, log)
			}
			in.wantLabels(t, map[string]string{"hardened.dev/ready": "true", "hardened.dev/version": installerV2})
		}},
		{"the installer's account changes only its node's hardened.dev labels", func(t *testing.T) {
			for _, c := range []struct {
				args []string
				want string
			}{
				// A change (the same value would be no request at all).
				{[]string{"label", "node", k.NodeName, "hardened.dev/version=forged", "--overwrite"}, "only the node its pod runs on"},
				{[]string{"label", "node", n.Name, "team=x"}, "only hardened.dev/ labels"},
				{[]string{"annotate", "node", n.Name, "x=y"}, "may not change a node's spec or annotations"},
				{[]string{"get", "secrets", "-A"}, "forbidden"},
				{[]string{"delete", "node", n.Name, "--wait=false"}, "forbidden"},
			} {
				out, err := in.asInstaller(t, c.args...)
				if err == nil {
					t.Errorf("kubectl %s as the installer succeeded: %s", strings.Join(c.args, " "), out)
					continue
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("kubectl %s as the installer: %v; want %q", strings.Join(c.args, " "), err, c.want)
				}
			}
			// What it may do, it can.
			if out, err := in.asInstaller(t, "label", "node", n.Name, "hardened.dev/version="+installerV2, "--overwrite"); err != nil {
				t.Errorf("the installer cannot set its own node's hardened.dev/version: %v %s", err, out)
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			return // each step builds on the one before
		}
	}
}

// installerRun runs the installer's DaemonSet pod on a stand-in node.
type installerRun struct {
	// top is the top-level test: what outlives a step is cleaned up
	// when it ends.
	top   *testing.T
	e     *Env
	k     *Kube
	n     *standinNode
	dir   string
	token string // the installer's service account token, bound to a pod on the node
	ca    string
	// images are the installer image references by version.
	images map[string]string
	seq    int
}

func newInstallerRun(t *testing.T, e *Env, k *Kube, n *standinNode) *installerRun {
	t.Helper()
	in := &installerRun{top: t, e: e, k: k, n: n, dir: filepath.Join(n.Dir, "installer"), images: map[string]string{}}
	if err := os.MkdirAll(in.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in.ca = filepath.Join(k.Dir, "pki", "ca.crt")
	if _, err := os.Stat(in.ca); err != nil {
		t.Fatalf("the cluster's CA: %v", err)
	}
	ctx := ctx(t, 10*time.Minute)

	// The images: this tree built static, twice (two release stamps),
	// packed by hack/installer-image, imported into the node's containerd
	// with the sandbox image, as a registry pull would leave them.
	tool := filepath.Join(in.dir, "installer-image")
	if _, err := run(ctx, e.Repo, nil, goBin(), "build", "-o", tool, "./hack/installer-image"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{installerV1, installerV2} {
		bin := filepath.Join(in.dir, "bin-"+v)
		ldflags := fmt.Sprintf("-X github.com/hardened-dev/hardened/internal/version.Version=%s -linkmode external -extldflags -static", v)
		envv := append(os.Environ(), "CGO_ENABLED=1")
		if _, err := run(ctx, e.Repo, envv, goBin(), "build", "-trimpath", "-tags", "netgo osusergo", "-ldflags", ldflags, "-o", bin+"/", "./cmd/..."); err != nil {
			t.Fatal(err)
		}
		ref := installerRepo + ":" + v
		archive := filepath.Join(in.dir, v+".oci.tar")
		if _, err := run(ctx, e.Repo, nil, tool, "-bin", bin, "-runsc", filepath.Join(e.Tools, "runsc"), "-busybox", harness.BusyboxPath,
			"-install-sh", filepath.Join(e.Repo, "deploy/installer/install.sh"), "-name", ref, "-o", archive); err != nil {
			t.Fatal(err)
		}
		if _, err := n.ctr(ctx, "images", "import", archive); err != nil {
			t.Fatal(err)
		}
		in.images[v] = ref
	}
	pause := filepath.Join(in.dir, "pause.tar")
	tb, err := os.ReadFile(filepath.Join(e.Dir, "bin", "testbin"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := testImages(filepath.Join(e.Tools, busyboxDynamic), tb)
	if err != nil {
		t.Fatal(err)
	}
	var defs []imageDef
	for _, d := range all {
		if d.Name == imagePause {
			defs = append(defs, d)
		}
	}
	if err := writeOCIArchive(pause, defs); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ctr(ctx, "images", "import", pause); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ctr(ctx, "images", "label", imagePause, "io.cri-containerd.pinned=pinned"); err != nil {
		t.Fatal(err)
	}

	// The cluster side: deploy/base as rendered (namespace, account, RBAC,
	// admission policy, RuntimeClasses; the DaemonSet too: no node of the
	// cluster carries hardened.dev/enabled, so it starts nothing), a Node
	// object for the stand-in node, and a pod object bound to it whose
	// token the installer runs with (the kubelet would mount that token).
	rendered := in.render(t, "base", installerV1, nil)
	if _, err := k.kubectlIn(ctx, []byte(rendered), "apply", "--server-side", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	node := fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,"labels":{"kubernetes.io/os":"linux","kubernetes.io/hostname":%q}}}`, n.Name, n.Name)
	if _, err := k.kubectlIn(ctx, []byte(node), "create", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	podName := "hardened-node-installer-" + strings.TrimPrefix(n.Name, "hd-standin-")
	pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":"hardened-system"},
"spec":{"nodeName":%q,"serviceAccountName":"hardened-node-installer",
"tolerations":[{"operator":"Exists"}],
"containers":[{"name":"install","image":%q}]}}`, podName, n.Name, in.images[installerV1])
	if _, err := k.kubectlIn(ctx, []byte(pod), "create", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, args := range [][]string{
			{"-n", "hardened-system", "delete", "pod", podName, "--grace-period=0", "--force", "--wait=false"},
			{"delete", "node", n.Name, "--wait=false"},
		} {
			if _, err := k.Kubectl(c, args...); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	tok, err := k.Kubectl(ctx, "-n", "hardened-system", "create", "token", "hardened-node-installer",
		"--bound-object-kind", "Pod", "--bound-object-name", podName, "--duration", "2h")
	if err != nil {
		t.Fatal(err)
	}
	in.token = strings.TrimSpace(tok)
	return in
}

// nodeFiles are the ConfigMap's files: deploy/base/node/.
func (in *installerRun) nodeFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, f := range []string{"policy.toml", "policy-gvisor.toml", "containerd-hardened.toml"} {
		data, err := os.ReadFile(filepath.Join(in.e.Repo, "deploy", "base", "node", f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(data)
	}
	return files
}

// render renders deploy/<which> with an overlay made the way an operator
// makes one: the image of the version, and the env this node needs (its
// service manager's restart command, its init's pid, its PATH: containerd's
// runc is the pinned one from the tools dir; the API server's address, as
// the kubelet's service environment would give it).
func (in *installerRun) render(t *testing.T, which, version string, env map[string]string) string {
	t.Helper()
	in.seq++
	dir := filepath.Join(in.dir, fmt.Sprintf("overlay-%d", in.seq))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"RESTART_COMMAND":         restartCommand,
		"NODE_PID":                strconv.Itoa(in.n.Pid()),
		"NODE_PATH":               in.e.Tools + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"KUBERNETES_SERVICE_HOST": kubeNodeIP,
		"KUBERNETES_SERVICE_PORT": kubeAPIPort,
	}
	for k, v := range env {
		vars[k] = v
	}
	var envs []map[string]string
	for k, v := range vars {
		envs = append(envs, map[string]string{"name": k, "value": v})
	}
	patch := map[string]any{
		"apiVersion": "apps/v1", "kind": "DaemonSet",
		"metadata": map[string]any{"name": "hardened-node-installer", "namespace": "hardened-system"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{
			"initContainers": []any{map[string]any{"name": "install", "env": envs}},
		}}},
	}
	pj, err := json.Marshal(patch)
	if err != nil {
		t.Fatal(err)
	}
	// kustomize takes resources by relative path only.
	base, err := filepath.Rel(dir, filepath.Join(in.e.Repo, "deploy", which))
	if err != nil {
		t.Fatal(err)
	}
	kz := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - %s
images:
  - name: %s
    newTag: %s
patches:
  - patch: '%s'
`, base, installerRepo, version, string(pj))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kz), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := in.k.Kubectl(ctx(t, time.Minute), "kustomize", dir)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run starts the DaemonSet's pod for mode (install or uninstall) and
// version on the node, as the kubelet would, waits for the install
// container to exit and returns its exit code and log; after a clean exit
// it starts the pod's main container and checks that it runs. The pod is
// removed before run returns (a DaemonSet rollout replaces the pod).
// files replaces the ConfigMap's files (nil: deploy/base/node/ as it is).
func (in *installerRun) run(t *testing.T, mode, version string, files map[string]string, env map[string]string) (int32, string) {
	t.Helper()
	code, log := in.runOnce(t, mode, version, files, env)
	// A container that ends while containerd restarts may come back with
	// its status lost: containerd reports 255 (seen once in a few runs
	// after the uninstaller's restart, its log ending at the restart). The
	// kubelet restarts a failed init container; so does this: the second
	// run finds the drop-in as the first left it, restarts nothing, and
	// must end as the step expects.
	if code == 255 && strings.Contains(log, "hardened-install: restarting containerd") {
		t.Logf("the %s container's status was lost across containerd's restart (255); running it again, as the kubelet would", mode)
		code, log = in.runOnce(t, mode, version, files, env)
	}
	return code, log
}

func (in *installerRun) runOnce(t *testing.T, mode, version string, files map[string]string, env map[string]string) (int32, string) {
	t.Helper()
	which := map[string]string{"install": "base", "uninstall": "uninstall"}[mode]
	pods, err := kube.Decode([]byte(in.render(t, which, version, env)), kube.Options{
		KubeletRoot: "/var/lib/kubelet", PodLogsRoot: "/var/lib/kubelet/pod-logs", CgroupParent: in.n.CgroupParent,
	})
	if err != nil {
		t.Fatal(err)
	}
	var pod *kube.Pod
	for i := range pods {
		if pods[i].Source == "DaemonSet/hardened-node-installer" {
			pod = &pods[i]
		}
	}
	if pod == nil {
		t.Fatalf("no DaemonSet/hardened-node-installer in the rendered manifests")
	}
	if files == nil {
		files = in.nodeFiles(t)
	}
	uid := pod.Sandbox.GetMetadata().GetUid()
	volumes := "/var/lib/kubelet/pods/" + uid + "/volumes/"
	// What the kubelet provides: the ConfigMap's files, the hostPath
	// directories (DirectoryOrCreate), the service account token, the
	// values of fieldRef env and the service environment.
	tokenDir := volumes + "kubernetes.io~projected/kube-api-access"
	for _, c := range pod.Containers {
		for _, m := range c.Config.GetMounts() {
			hp := m.GetHostPath()
			switch {
			case strings.Contains(hp, "/kubernetes.io~configmap/"):
				for name, data := range files {
					in.writeNode(t, filepath.Join(hp, name), data)
				}
			case !strings.HasPrefix(hp, "/var/lib/kubelet/"):
				if err := os.MkdirAll(in.n.nodePath(hp), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	in.writeNode(t, tokenDir+"/token", in.token)
	ca, err := os.ReadFile(in.ca)
	if err != nil {
		t.Fatal(err)
	}
	in.writeNode(t, tokenDir+"/ca.crt", string(ca))
	in.writeNode(t, tokenDir+"/namespace", "hardened-system")
	for _, c := range pod.Containers {
		if !c.Init {
			continue
		}
		c.Config.Mounts = append(c.Config.Mounts, &runtimeapi.Mount{
			ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", HostPath: tokenDir, Readonly: true,
		})
		for _, kv := range c.Config.Envs {
			switch kv.Key {
			case "NODE_NAME":
				kv.Value = []byte(in.n.Name)
			case "POD_UID":
				kv.Value = []byte(uid)
			}
		}
	}
	// Every run is a new pod to the kubelet (a DaemonSet replaces its
	// pod): no log of an earlier run.
	if err := os.RemoveAll(in.n.nodePath(pod.Sandbox.GetLogDirectory())); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(in.n.nodePath(pod.Sandbox.GetLogDirectory()), 0o755); err != nil {
		t.Fatal(err)
	}

	c := ctx(t, 8*time.Minute)
	rt := in.n.RT
	sb, err := rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: pod.Sandbox, RuntimeHandler: pod.Handler})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	defer func() {
		cc, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := in.n.waitServing(cc, time.Minute, 0); err != nil {
			t.Error(err)
		}
		if _, err := rt.StopPodSandbox(cc, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := rt.RemovePodSandbox(cc, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	}()
	var code int32 = -1
	var log string
	for _, ctr := range pod.Containers {
		cr, err := rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, Config: ctr.Config, SandboxConfig: pod.Sandbox})
		if err != nil {
			t.Fatalf("CreateContainer %s: %v", ctr.Name, err)
		}
		if _, err := rt.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
			t.Fatalf("StartContainer %s: %v", ctr.Name, err)
		}
		logPath := in.n.nodePath(filepath.Join(pod.Sandbox.GetLogDirectory(), ctr.Config.GetLogPath()))
		if !ctr.Init {
			// The main container: it must run (non-root, read-only root,
			// no capabilities) from the same image.
			time.Sleep(time.Second)
			st, err := rt.ContainerStatus(c, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId})
			if err != nil {
				t.Fatal(err)
			}
			if s := st.GetStatus().GetState(); s != runtimeapi.ContainerState_CONTAINER_RUNNING {
				data, _ := os.ReadFile(logPath)
				t.Errorf("the DaemonSet's main container %s is %s (exit %d): %s", ctr.Name, s, st.GetStatus().GetExitCode(), data)
			}
			continue
		}
		for {
			st, err := rt.ContainerStatus(c, &runtimeapi.ContainerStatusRequest{ContainerId: cr.ContainerId})
			if status.Code(err) == codes.Unavailable {
				// The installer restarts containerd.
				time.Sleep(250 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatalf("ContainerStatus: %v", err)
			}
			if st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
				code = st.GetStatus().GetExitCode()
				break
			}
			select {
			case <-c.Done():
				data, _ := os.ReadFile(logPath)
				t.Fatalf("the installer did not finish within 8 minutes:\n%s", data)
			case <-time.After(250 * time.Millisecond):
			}
		}
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		log = criLogMessages(string(data))
		t.Logf("%s %s (exit %d):\n%s", mode, version, code, log)
		if code != 0 {
			break // as the kubelet: the main container waits for a clean init
		}
	}
	return code, log
}

// criLogMessages strips the CRI log format ("TIME STREAM TAG MSG").
func criLogMessages(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if f := strings.SplitN(l, " ", 4); len(f) == 4 {
			b.WriteString(f[3] + "\n")
		}
	}
	return b.String()
}

func (in *installerRun) writeNode(t *testing.T, nodePath, data string) {
	t.Helper()
	p := in.n.nodePath(nodePath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantLabels checks the node's hardened.dev/ labels (nil: none).
func (in *installerRun) wantLabels(t *testing.T, want map[string]string) {
	t.Helper()
	out, err := in.k.Kubectl(ctx(t, time.Minute), "get", "node", in.n.Name, "-o", "jsonpath={.metadata.labels}")
	if err != nil {
		t.Fatal(err)
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(out), &labels); err != nil {
		t.Fatalf("node labels %q: %v", out, err)
	}
	got := map[string]string{}
	for k, v := range labels {
		if strings.HasPrefix(k, "hardened.dev/") {
			got[k] = v
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(map[string]string(want)) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("node %s has hardened.dev labels %v, want %v", in.n.Name, got, want)
	}
}

// wantEvent checks for an event on the node with type, reason and a
// message containing text.
func (in *installerRun) wantEvent(t *testing.T, typ, reason, text string) {
	t.Helper()
	out, err := in.k.Kubectl(ctx(t, time.Minute), "-n", "default", "get", "events",
		"--field-selector", "involvedObject.kind=Node,involvedObject.name="+in.n.Name, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []struct {
			Type, Reason, Message string
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, ev := range list.Items {
		if ev.Type == typ && ev.Reason == reason && strings.Contains(ev.Message, text) {
			return
		}
	}
	t.Errorf("no %s event %s mentioning %q on node %s; events: %+v", typ, reason, text, in.n.Name, list.Items)
}

// criHandlers is the node's `crictl info` runtime handlers.
func (in *installerRun) criHandlers(t *testing.T) string {
	t.Helper()
	st, err := in.n.RT.Status(ctx(t, time.Minute), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range st.GetRuntimeHandlers() {
		names = append(names, fmt.Sprintf("%q", h.GetName()))
	}
	return strings.Join(names, " ")
}

// asInstaller runs kubectl with the installer's token.
func (in *installerRun) asInstaller(t *testing.T, args ...string) (string, error) {
	t.Helper()
	tokenFile := filepath.Join(in.dir, "token")
	if err := os.WriteFile(tokenFile, []byte(in.token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(in.dir, "installer.kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://%s:%s", certificate-authority: %q}}]
users: [{name: installer, user: {tokenFile: %q}}]
contexts: [{name: c, context: {cluster: c, user: installer}}]
current-context: c
`, kubeNodeIP, kubeAPIPort, in.ca, tokenFile)
	if err := os.WriteFile(cfg, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx(t, time.Minute), "nsenter", append([]string{"--net=/var/run/netns/" + in.e.NetNS, "--",
		in.k.Bin, "kubectl", "--kubeconfig", cfg}, args...)...)
	cmd.Env = in.k.procEnv("/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, out)
	}
	return string(out), nil
}

// nodeContainer is a pod with one container under the hardened handler on
// the stand-in node.
type nodeContainer struct {
	in          *installerRun
	podName     string
	sandbox, id string
}

// startContainer runs a sleeping container from the installer image under
// the hardened handler on the node.
func (in *installerRun) startContainer(t *testing.T, name, version string) *nodeContainer {
	t.Helper()
	c := ctx(t, 2*time.Minute)
	nc := &nodeContainer{in: in, podName: "hardened-test-" + name}
	logDir := "/var/lib/kubelet/pod-logs/" + nc.podName
	if err := os.MkdirAll(in.n.nodePath(logDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// The labels the kubelet gives every pod and container.
	podLabels := map[string]string{
		"io.kubernetes.pod.name": nc.podName, "io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": nc.podName + "-uid",
	}
	ctrLabels := map[string]string{"io.kubernetes.container.name": name}
	for k, v := range podLabels {
		ctrLabels[k] = v
	}
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: nc.podName, Namespace: "default", Uid: nc.podName + "-uid"},
		Labels:       podLabels,
		LogDirectory: logDir,
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: in.n.CgroupParent},
	}
	sb, err := in.n.RT.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: sbCfg, RuntimeHandler: handlerHardened})
	if err != nil {
		t.Fatalf("RunPodSandbox under %s: %v", handlerHardened, err)
	}
	nc.sandbox = sb.PodSandboxId
	// It may outlive the step that started it (the upgrade's).
	in.top.Cleanup(func() { nc.remove(in.top) })
	cr, err := in.n.RT.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg, Config: &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Labels:   ctrLabels,
		Image:    &runtimeapi.ImageSpec{Image: in.images[version]},
		Command:  []string{"/bin/sleep", "3600"},
		LogPath:  name + ".log",
	}})
	if err != nil {
		t.Fatalf("CreateContainer under %s: %v", handlerHardened, err)
	}
	nc.id = cr.ContainerId
	if _, err := in.n.RT.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: nc.id}); err != nil {
		t.Fatalf("StartContainer under %s: %v", handlerHardened, err)
	}
	if st := nc.state(t); st != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container %s is %s", name, st)
	}
	return nc
}

func (nc *nodeContainer) state(t *testing.T) runtimeapi.ContainerState {
	t.Helper()
	st, err := nc.in.n.RT.ContainerStatus(ctx(t, time.Minute), &runtimeapi.ContainerStatusRequest{ContainerId: nc.id})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetStatus().GetState()
}

// shimExe is /proc/<shim>/exe of the container's shim (the parent of its
// init process), " (deleted)" when the binary was unlinked.
func (nc *nodeContainer) shimExe(t *testing.T) string {
	t.Helper()
	out, err := nc.in.n.ctr(ctx(t, time.Minute), "tasks", "ls")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + nc.id + `\s+(\d+)\s`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no task %s in:\n%s", nc.id, out)
	}
	pid, _ := strconv.Atoi(m[1])
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", harness.ParentPid(pid)))
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func (nc *nodeContainer) remove(t *testing.T) {
	if nc.sandbox == "" {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := nc.in.n.RT.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: nc.sandbox}); err != nil {
		t.Errorf("StopPodSandbox: %v", err)
	}
	if _, err := nc.in.n.RT.RemovePodSandbox(c, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: nc.sandbox}); err != nil {
		t.Errorf("RemovePodSandbox: %v", err)
	}
	nc.sandbox = ""
}
