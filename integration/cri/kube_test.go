//go:build integration

package cri

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestKube runs pods through a real kubelet, apiserver and scheduler
// (kube_env_test.go) on the CRI suite's containerd, every one with
// runtimeClassName: hardened, the RuntimeClass shipped in deploy/. One
// cluster for all subtests; it is gone when the test ends.
func TestKube(t *testing.T) {
	k := kubeCluster(t)
	t.Run("ControlPlane", func(t *testing.T) { testKubeControlPlane(t, k) })
	t.Run("Volumes", func(t *testing.T) { testKubeVolumes(t, k) })
	t.Run("RestartAfterCrash", func(t *testing.T) { testKubeRestart(t, k) })
	t.Run("HostPathRefused", func(t *testing.T) { testKubeHostPathRefused(t, k) })
	t.Run("UntrustedToGVisor", func(t *testing.T) { testKubeGVisor(t, k) })
}

// testKubeControlPlane: the apiserver serves the pinned release, the
// RuntimeClasses are deploy/'s, the node is Ready with the labels their
// nodeSelector asks for, and a new namespace gets its ServiceAccount and
// root CA ConfigMap from the controller-manager.
func testKubeControlPlane(t *testing.T, k *Kube) {
	out := k.MustKubectl(t, "version", "-o", "json")
	var v struct {
		Server struct {
			GitVersion string `json:"gitVersion"`
		} `json:"serverVersion"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver %s", v.Server.GitVersion)
	if !strings.HasPrefix(v.Server.GitVersion, "v1.") {
		t.Errorf("apiserver version %q, want a v1.x release", v.Server.GitVersion)
	}
	docs, err := runtimeClassDocs(k.Env.Repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		m := regexp.MustCompile(`(?m)^handler:\s*(\S+)`).FindStringSubmatch(doc)
		n := regexp.MustCompile(`(?m)^  name:\s*(\S+)`).FindStringSubmatch(doc)
		if m == nil || n == nil {
			t.Errorf("a RuntimeClass in deploy/ without name or handler:\n%s", doc)
			continue
		}
		got := k.MustKubectl(t, "get", "runtimeclass", n[1], "-o", "jsonpath={.handler}")
		if got != m[1] {
			t.Errorf("RuntimeClass %s: handler %q, want %q (deploy/)", n[1], got, m[1])
		}
	}
	labels, err := k.nodeLabels(ctx(t, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(labels) == 0 {
		t.Errorf("deploy/'s RuntimeClasses have no scheduling.nodeSelector")
	}
	out = k.MustKubectl(t, "get", "node", k.NodeName, "-o", "json")
	var node struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Status struct {
			NodeInfo struct {
				KubeletVersion          string `json:"kubeletVersion"`
				ContainerRuntimeVersion string `json:"containerRuntimeVersion"`
			} `json:"nodeInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &node); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %s: kubelet %s, runtime %s", k.NodeName, node.Status.NodeInfo.KubeletVersion, node.Status.NodeInfo.ContainerRuntimeVersion)
	for key, want := range labels {
		if got := node.Metadata.Labels[key]; got != want {
			t.Errorf("node label %s=%q, want %q (the RuntimeClasses' nodeSelector)", key, got, want)
		}
	}
	if !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://2.") {
		t.Errorf("node runtime %q, want the suite's containerd 2.x", node.Status.NodeInfo.ContainerRuntimeVersion)
	}
	ns := k.Namespace(t) // waits for the default ServiceAccount and kube-root-ca.crt
	ca := k.MustKubectl(t, "-n", ns, "get", "configmap", "kube-root-ca.crt", "-o", `jsonpath={.data.ca\.crt}`)
	want, err := os.ReadFile(k.pki.path("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(ca) != strings.TrimSpace(string(want)) {
		t.Errorf("kube-root-ca.crt holds another CA than the cluster's")
	}
}

// sandboxHandler returns the CRI runtime handler of the pod's sandbox (as
// containerd ran it) and the sandbox id.
func (k *Kube) sandboxHandler(t *testing.T, p *kubePod) (handler, id string) {
	t.Helper()
	out, _, err := k.Env.Crictl(ctx(t, time.Minute), "pods", "-q", "--label", "io.kubernetes.pod.uid="+p.Metadata.UID)
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		t.Fatalf("pod %s: no CRI sandbox", p.Metadata.Name)
	}
	h, _, err := k.Env.Crictl(ctx(t, time.Minute), "inspectp", "-o", "go-template", "--template", "{{.status.runtimeHandler}}", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(h), ids[0]
}

// hardenedCapEff is what the hardened profile leaves a root container:
// CAP_NET_BIND_SERVICE (bit 10) alone.
const hardenedCapEff = "0000000000000400"

func podRunningReady(p *kubePod) bool { return p.Status.Phase == "Running" && p.Ready() }

// volumesManifest: %[1]s the busybox image, %[2]s the consented read-only
// host directory.
const volumesManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  greeting: hello from a configMap
---
apiVersion: v1
kind: Secret
metadata:
  name: app-secret
stringData:
  password: s3cret-value
---
apiVersion: v1
kind: Pod
metadata:
  name: volumes
spec:
  runtimeClassName: hardened
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: init
    image: %[1]s
    imagePullPolicy: Never
    command: ["sh", "-c", "echo init-ran > /work/from-init && mkdir /work/www && echo ok > /work/www/healthz && echo 'init: wrote /work/from-init'"]
    volumeMounts:
    - {name: work, mountPath: /work}
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: Never
    command: ["sh", "-c", "echo 'app: serving /work/www on :8080'; exec httpd -f -p 8080 -h /work/www"]
    volumeMounts:
    - {name: config, mountPath: /etc/app-config, readOnly: true}
    - {name: secret, mountPath: /etc/app-secret, readOnly: true}
    - {name: work, mountPath: /work}
    - {name: host, mountPath: /host, readOnly: true}
    # Timeouts above the default 1s: a loaded 2-core CI machine.
    readinessProbe:
      exec:
        command: ["cat", "/work/www/healthz"]
      periodSeconds: 2
      timeoutSeconds: 10
    livenessProbe:
      httpGet:
        path: /healthz
        port: 8080
      periodSeconds: 2
      timeoutSeconds: 10
      failureThreshold: 2
  volumes:
  - name: config
    configMap:
      name: app-config
  - name: secret
    secret:
      secretName: app-secret
  - name: work
    emptyDir: {}
  - name: host
    hostPath:
      path: %[2]s
      type: Directory
`

// testKubeVolumes: a pod with configMap, secret, projected service account
// token (the automounted kube-api-access volume; the apiserver takes the
// token for the pod's ServiceAccount), emptyDir and read-only
// hostPath volumes, an init container, an exec readiness and an HTTP
// liveness probe, on the hardened handler. Inside, the container runs with
// no capabilities and no_new_privs on a read-only root; every volume holds
// what the kubelet put there; kubectl logs and exec work through the
// apiserver, the kubelet and containerd's streaming server.
func testKubeVolumes(t *testing.T, k *Kube) {
	ns := k.Namespace(t)
	hostDir := filepath.Join(k.Env.Dir, hostRODir, "kube-volumes")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hostDir, "host-file"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k.Apply(t, ns, fmt.Sprintf(volumesManifest, imageBusybox, hostDir))
	p := k.WaitPod(t, ns, "volumes", 3*time.Minute, "running and ready", podRunningReady)
	if h, id := k.sandboxHandler(t, p); h != handlerHardened {
		t.Errorf("sandbox %s runs on handler %q, want %q", id, h, handlerHardened)
	}
	if init := p.Container("init"); init == nil || init.State.Terminated == nil || init.State.Terminated.ExitCode != 0 {
		t.Errorf("init container did not complete: %+v", init)
	}
	app := p.Container("app")
	if app == nil || !app.Ready || app.State.Running == nil {
		t.Fatalf("app container not running and ready: %+v", app)
	}

	exec := func(cmd ...string) string { return k.MustExec(t, ns, "volumes", "app", cmd...) }
	if rel := strings.TrimSpace(exec("uname", "-r")); rel != hostKernel(t) {
		t.Errorf("uname -r %s: not on runc (host %s)", rel, hostKernel(t))
	}
	status := exec("cat", "/proc/self/status")
	if got := statusField(status, "CapEff"); got != hardenedCapEff {
		t.Errorf("CapEff = %s, want %s (hardened: CAP_NET_BIND_SERVICE at most)", got, hardenedCapEff)
	}
	if got := statusField(status, "NoNewPrivs"); got != "1" {
		t.Errorf("NoNewPrivs = %s, want 1", got)
	}
	if out, err := k.Exec(t, ns, "volumes", "app", "touch", "/written"); err == nil || !strings.Contains(out+err.Error(), "Read-only file system") {
		t.Errorf("a write to / did not fail with EROFS: %v %q", err, out)
	}
	if got := exec("cat", "/etc/app-config/greeting"); got != "hello from a configMap" {
		t.Errorf("configMap greeting = %q", got)
	}
	if got := exec("cat", "/etc/app-secret/password"); got != "s3cret-value" {
		t.Errorf("secret password = %q", got)
	}
	// The projected service account token: a JWT the apiserver signed for
	// this pod's ServiceAccount, with the CA and the namespace beside it.
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	tok := exec("cat", sa+"/token")
	claims := jwtClaims(t, tok)
	if claims.Sub != "system:serviceaccount:"+ns+":default" {
		t.Errorf("token subject %q, want the pod's default ServiceAccount", claims.Sub)
	}
	if claims.K8s.Pod.Name != "volumes" {
		t.Errorf("token bound to pod %q, want volumes", claims.K8s.Pod.Name)
	}
	// The token authenticates: the apiserver takes the token the kubelet
	// projected into the pod for the pod's ServiceAccount.
	who, err := k.Kubectl(ctx(t, time.Minute), "--kubeconfig", "/dev/null",
		"--server", "https://127.0.0.1:"+kubeAPIPort, "--certificate-authority", k.pki.path("ca.crt"),
		"--token", strings.TrimSpace(tok), "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil || who != claims.Sub {
		t.Errorf("kubectl auth whoami with the pod's token: %q %v, want %q", who, err, claims.Sub)
	}
	if got := exec("cat", sa+"/namespace"); got != ns {
		t.Errorf("%s/namespace = %q, want %q", sa, got, ns)
	}
	if got := exec("cat", sa+"/ca.crt"); !strings.Contains(got, "BEGIN CERTIFICATE") {
		t.Errorf("%s/ca.crt holds no certificate: %q", sa, got)
	}
	// emptyDir: the init container's file, and writable.
	if got := exec("cat", "/work/from-init"); strings.TrimSpace(got) != "init-ran" {
		t.Errorf("emptyDir /work/from-init = %q, want the init container's", got)
	}
	exec("sh", "-c", "echo app > /work/from-app")
	if got := exec("cat", "/work/from-app"); strings.TrimSpace(got) != "app" {
		t.Errorf("emptyDir write read back %q", got)
	}
	// hostPath under the node policy's read-only consent.
	if got := exec("cat", "/host/host-file"); strings.TrimSpace(got) != "from the host" {
		t.Errorf("hostPath /host/host-file = %q", got)
	}
	if out, err := k.Exec(t, ns, "volumes", "app", "touch", "/host/written"); err == nil || !strings.Contains(out+err.Error(), "Read-only file system") {
		t.Errorf("the read-only hostPath took a write: %v %q", err, out)
	}
	// The volumes are where the kubelet keeps them, the per-pod paths the
	// node policy consents to: the CRI mounts containerd was asked for.
	mounts := k.criMounts(t, app.ContainerID)
	for _, mp := range []string{"/etc/app-config", "/etc/app-secret", "/work", sa} {
		want := filepath.Join(k.RootDir, "pods", p.Metadata.UID, "volumes") + "/"
		if !strings.HasPrefix(mounts[mp], want) {
			t.Errorf("%s is mounted from %q, want the kubelet's volume dir %s...", mp, mounts[mp], want)
		}
	}
	if mounts["/host"] != hostDir {
		t.Errorf("/host is mounted from %q, want %s", mounts["/host"], hostDir)
	}
	// kubectl exec with stdin, through the whole streaming path.
	out, err := k.kubectlIn(ctx(t, time.Minute), []byte("through stdin\n"), "-n", ns, "exec", "-i", "volumes", "-c", "app", "--", "cat")
	if err != nil || out != "through stdin\n" {
		t.Errorf("kubectl exec -i cat: %q %v", out, err)
	}
	// kubectl logs: each container's own output.
	for c, want := range map[string]string{"init": "init: wrote /work/from-init", "app": "app: serving /work/www on :8080"} {
		if got := k.MustKubectl(t, "-n", ns, "logs", "volumes", "-c", c); !strings.Contains(got, want) {
			t.Errorf("kubectl logs -c %s = %q, want %q", c, got, want)
		}
	}
	// The liveness probe (HTTP) kept it alive: no restart, no failure event.
	time.Sleep(5 * time.Second)
	p, err = k.GetPod(t, ns, "volumes")
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Container("app"); c.RestartCount != 0 {
		t.Errorf("app restarted %d times (liveness probe failing?):\n%s", c.RestartCount, k.Events(t, ns, "volumes"))
	}
	if ev := k.Events(t, ns, "volumes"); strings.Contains(ev, "Unhealthy") {
		t.Errorf("probe failures:\n%s", ev)
	}
	// The probes reach the container: without the file both serve, the
	// exec readiness probe fails (not Ready) and the HTTP liveness probe
	// gets a 404 (the kubelet restarts the container).
	exec("rm", "/work/www/healthz")
	p = k.WaitPod(t, ns, "volumes", 2*time.Minute, "restarted by its liveness probe", func(p *kubePod) bool {
		c := p.Container("app")
		return c != nil && c.RestartCount >= 1
	})
	ev := k.Events(t, ns, "volumes")
	t.Logf("after removing healthz: restartCount %d, events:\n%s", p.Container("app").RestartCount, ev)
	for _, want := range []string{"Readiness probe failed", "Liveness probe failed: HTTP probe failed with statuscode: 404"} {
		if !strings.Contains(ev, want) {
			t.Errorf("no event says %q", want)
		}
	}
}

// criMounts returns the CRI mounts of a container (containerID as the
// kubelet reports it, containerd://ID): container path to host path.
func (k *Kube) criMounts(t *testing.T, containerID string) map[string]string {
	t.Helper()
	id := strings.TrimPrefix(containerID, "containerd://")
	out, _, err := k.Env.Crictl(ctx(t, time.Minute), "inspect", "-o", "json", id)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Status struct {
			Mounts []struct {
				ContainerPath string `json:"containerPath"`
				HostPath      string `json:"hostPath"`
			} `json:"mounts"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, mt := range c.Status.Mounts {
		m[mt.ContainerPath] = mt.HostPath
	}
	return m
}

type jwtClaimSet struct {
	Sub string `json:"sub"`
	Iss string `json:"iss"`
	K8s struct {
		Pod struct {
			Name string `json:"name"`
		} `json:"pod"`
	} `json:"kubernetes.io"`
}

// jwtClaims checks that tok is a signed JWT and returns its claims.
func jwtClaims(t *testing.T, tok string) jwtClaimSet {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 || parts[2] == "" {
		t.Fatalf("the token is not a signed JWT (header.payload.signature): %q", tok)
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var claims jwtClaimSet
	for i, v := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, v); err != nil {
			t.Fatalf("JWT part %d: %v: %s", i, err, raw)
		}
	}
	if header.Alg != "RS256" {
		t.Errorf("token alg %q, want RS256 (the apiserver's service account key)", header.Alg)
	}
	t.Logf("token: alg %s, iss %s, sub %s, pod %s", header.Alg, claims.Iss, claims.Sub, claims.K8s.Pod.Name)
	return claims
}

const crashManifest = `apiVersion: v1
kind: Pod
metadata:
  name: crasher
spec:
  runtimeClassName: hardened
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: Never
    command: ["sh", "-c", "echo \"crasher: up $(cat /proc/sys/kernel/random/uuid)\"; sleep 1; exit 3"]
`

// testKubeRestart: a container that exits 3 is restarted by the kubelet
// (restartCount goes up, the last state says exit code 3) and kubectl logs
// --previous shows the crashed run's output.
func testKubeRestart(t *testing.T, k *Kube) {
	ns := k.Namespace(t)
	k.Apply(t, ns, fmt.Sprintf(crashManifest, imageBusybox))
	p := k.WaitPod(t, ns, "crasher", 2*time.Minute, "restarted after a crash", func(p *kubePod) bool {
		c := p.Container("app")
		return c != nil && c.RestartCount >= 1 && c.LastState.Terminated != nil
	})
	c := p.Container("app")
	t.Logf("restartCount %d, last state %+v", c.RestartCount, *c.LastState.Terminated)
	if c.LastState.Terminated.ExitCode != 3 {
		t.Errorf("last exit code %d, want 3", c.LastState.Terminated.ExitCode)
	}
	if h, id := k.sandboxHandler(t, p); h != handlerHardened {
		t.Errorf("sandbox %s runs on handler %q, want %q", id, h, handlerHardened)
	}
	prev := k.MustKubectl(t, "-n", ns, "logs", "crasher", "--previous")
	if !strings.Contains(prev, "crasher: up ") {
		t.Errorf("kubectl logs --previous = %q, want the crashed run's line", prev)
	}
}

const refusedManifest = `apiVersion: v1
kind: Pod
metadata:
  name: refused
spec:
  runtimeClassName: hardened
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: Never
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: host, mountPath: /host, readOnly: true}
  volumes:
  - name: host
    hostPath:
      path: %[2]s
      type: Directory
`

// testKubeHostPathRefused: a hostPath outside every consent of the node
// policy is refused by the shim when the kubelet creates the container;
// the pod's container status and events carry the shim's reason.
func testKubeHostPathRefused(t *testing.T, k *Kube) {
	ns := k.Namespace(t)
	dir := filepath.Join(k.Env.Dir, "host-none", "kube")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	k.Apply(t, ns, fmt.Sprintf(refusedManifest, imageBusybox, dir))
	// The shim refuses when containerd creates the task (the kubelet's
	// StartContainer): RunContainerError, then CrashLoopBackOff with the
	// refusal as the last state's message.
	reason := func(p *kubePod) string {
		c := p.Container("app")
		if c == nil {
			return ""
		}
		if w := c.State.Waiting; w != nil && (w.Reason == "RunContainerError" || w.Reason == "CreateContainerError") {
			return w.Reason + ": " + w.Message
		}
		if l := c.LastState.Terminated; l != nil && l.Reason == "StartError" {
			return l.Reason + ": " + l.Message
		}
		return ""
	}
	p := k.WaitPod(t, ns, "refused", 2*time.Minute, "refused", func(p *kubePod) bool { return reason(p) != "" })
	msg := reason(p)
	t.Logf("container status: %s", msg)
	for _, want := range []string{"hardened", dir, "allow_host_path_prefixes"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the status message does not name %q: %s", want, msg)
		}
	}
	// (The pod's phase says Running: to the kubelet a container that failed
	// to start is restarting.)
	if c := p.Container("app"); c.State.Running != nil || c.Ready {
		t.Errorf("the refused container runs: %+v", c)
	}
	if ev := k.Events(t, ns, "refused"); !strings.Contains(ev, "allow_host_path_prefixes") {
		t.Errorf("no event carries the shim's reason:\n%s", ev)
	}
}

const untrustedManifest = `apiVersion: v1
kind: Pod
metadata:
  name: untrusted
  labels:
    hardened.dev/untrusted: "true"
spec:
  runtimeClassName: hardened
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %[1]s
    imagePullPolicy: Never
    command: ["sleep", "3600"]
`

// testKubeGVisor: a pod labelled hardened.dev/untrusted=true on the
// hardened RuntimeClass is routed to gVisor by the node policy: inside, the
// kernel is gVisor's Sentry (its own release), and runsc lists the
// container.
func testKubeGVisor(t *testing.T, k *Kube) {
	ns := k.Namespace(t)
	k.Apply(t, ns, fmt.Sprintf(untrustedManifest, imageBusybox))
	p := k.WaitPod(t, ns, "untrusted", 2*time.Minute, "running", func(p *kubePod) bool { return p.Status.Phase == "Running" })
	if h, id := k.sandboxHandler(t, p); h != handlerHardened {
		t.Errorf("sandbox %s runs on handler %q, want %q", id, h, handlerHardened)
	}
	rel := strings.TrimSpace(k.MustExec(t, ns, "untrusted", "app", "uname", "-r"))
	version := k.MustExec(t, ns, "untrusted", "app", "cat", "/proc/version")
	t.Logf("uname -r %s (host %s); /proc/version: %s", rel, hostKernel(t), strings.TrimSpace(version))
	if rel == hostKernel(t) {
		t.Errorf("uname -r is the host's %s: not in gVisor", rel)
	}
	// runsc's own view: the container is one of its sandbox's.
	id := strings.TrimPrefix(p.Container("app").ContainerID, "containerd://")
	list, err := k.Env.runscList(t)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range list {
		if c.ID == id {
			found = true
			t.Logf("runsc: container %s status %s sandbox %s", c.ID[:12], c.Status, c.sandbox()[:12])
		}
	}
	if !found {
		t.Errorf("runsc does not list container %s", id)
	}
	status := k.MustExec(t, ns, "untrusted", "app", "cat", "/proc/self/status")
	if got := statusField(status, "CapEff"); got != hardenedCapEff {
		t.Errorf("CapEff = %s in gVisor, want %s (hardened)", got, hardenedCapEff)
	}
	// The plain pod of the same RuntimeClass runs on runc (testKubeVolumes
	// checks its kernel is the host's).
}
