package kube

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testOptions are node facts with a non-default layout, so that paths show
// they come from Options.
var testOptions = Options{KubeletRoot: "/data/kubelet", PodLogsRoot: "/data/logs", CgroupParent: "/kubepods/burstable/pod1"}

func TestDecode(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		input string
		check func(t *testing.T, pods []Pod)
	}{
		{
			name: "hostPath, privileged container and sysctls",
			opts: testOptions,
			input: `
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  uid: 0b7c1c3e-1111-2222-3333-444455556666
  labels: {app: web}
  annotations: {team: payments}
spec:
  securityContext:
    sysctls:
    - {name: net.ipv4.ip_unprivileged_port_start, value: "0"}
    - {name: kernel/shm_rmid_forced, value: "1"}
  volumes:
  - name: host-logs
    hostPath: {path: /var/log, type: Directory}
  - name: run
    hostPath: {path: /run/containerd}
  containers:
  - name: app
    image: nginx:1.27
    ports:
    - {containerPort: 8080, hostPort: 80, name: http}
    - {containerPort: 9090, protocol: UDP}
    securityContext:
      privileged: true
    volumeMounts:
    - {name: host-logs, mountPath: /host/log, readOnly: true, mountPropagation: HostToContainer}
    - {name: run, mountPath: /run/containerd, mountPropagation: Bidirectional}
`,
			check: func(t *testing.T, pods []Pod) {
				p := onePod(t, pods)
				const uid = "0b7c1c3e-1111-2222-3333-444455556666"
				equal(t, "Source", p.Source, "Pod/web")
				equal(t, "Name", p.Name, "web")
				equal(t, "Namespace", p.Namespace, "shop")
				equal(t, "UID", p.UID, uid)
				sb := p.Sandbox
				equal(t, "sandbox name", sb.Metadata.Name, "web")
				equal(t, "sandbox namespace", sb.Metadata.Namespace, "shop")
				equal(t, "sandbox uid", sb.Metadata.Uid, uid)
				equal(t, "hostname", sb.Hostname, "web")
				equal(t, "log directory", sb.LogDirectory, "/data/logs/shop_web_"+uid)
				equal(t, "sandbox label app", sb.Labels["app"], "web")
				equal(t, "sandbox label pod uid", sb.Labels["io.kubernetes.pod.uid"], uid)
				equal(t, "sandbox label pod namespace", sb.Labels["io.kubernetes.pod.namespace"], "shop")
				equal(t, "sandbox annotation", sb.Annotations["team"], "payments")
				equal(t, "cgroup parent", sb.Linux.CgroupParent, "/kubepods/burstable/pod1")
				equal(t, "sandbox privileged", sb.Linux.SecurityContext.Privileged, true)
				equal(t, "sandbox seccomp", sb.Linux.SecurityContext.Seccomp.ProfileType, runtimeapi.SecurityProfile_RuntimeDefault)
				equal(t, "sysctl", sb.Linux.Sysctls["net.ipv4.ip_unprivileged_port_start"], "0")
				equal(t, "slash sysctl", sb.Linux.Sysctls["kernel.shm_rmid_forced"], "1")
				equal(t, "port mappings", len(sb.PortMappings), 2)
				equal(t, "host port", sb.PortMappings[0].HostPort, int32(80))
				equal(t, "container port", sb.PortMappings[0].ContainerPort, int32(8080))
				equal(t, "udp", sb.PortMappings[1].Protocol, runtimeapi.Protocol_UDP)

				c := container(t, p, "app")
				sc := c.Config.Linux.SecurityContext
				equal(t, "privileged", sc.Privileged, true)
				equal(t, "no_new_privs", sc.NoNewPrivs, false)
				// The kubelet sends the default masks even for a privileged
				// container; containerd drops them.
				equal(t, "masked /proc/kcore", slices.Contains(sc.MaskedPaths, "/proc/kcore"), true)
				equal(t, "seccomp", sc.Seccomp.ProfileType, runtimeapi.SecurityProfile_Unconfined)
				logs := mount(t, c, "/host/log")
				equal(t, "hostPath source", logs.HostPath, "/var/log")
				equal(t, "hostPath readonly", logs.Readonly, true)
				equal(t, "hostPath propagation", logs.Propagation, runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER)
				equal(t, "hostPath not relabelled", logs.SelinuxRelabel, false)
				run := mount(t, c, "/run/containerd")
				equal(t, "bidirectional", run.Propagation, runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL)
				equal(t, "writable hostPath", run.Readonly, false)
				hosts := mount(t, c, "/etc/hosts")
				equal(t, "etc-hosts", hosts.HostPath, "/data/kubelet/pods/"+uid+"/etc-hosts")
				term := mount(t, c, "/dev/termination-log")
				if !strings.HasPrefix(term.HostPath, "/data/kubelet/pods/"+uid+"/containers/app/") {
					t.Errorf("termination log at %q", term.HostPath)
				}
				equal(t, "restart count", c.Config.Annotations["io.kubernetes.container.restartCount"], "0")
				equal(t, "termination path annotation", c.Config.Annotations["io.kubernetes.container.terminationMessagePath"], "/dev/termination-log")
				equal(t, "ports annotation", c.Config.Annotations["io.kubernetes.container.ports"],
					`[{"name":"http","hostPort":80,"containerPort":8080,"protocol":"TCP"},{"containerPort":9090,"protocol":"UDP"}]`)
				equal(t, "container label", c.Config.Labels["io.kubernetes.container.name"], "app")
				equal(t, "container label pod", c.Config.Labels["io.kubernetes.pod.name"], "web")
				equal(t, "log path", c.Config.LogPath, "app/0.log")
				equal(t, "image", c.Config.Image.Image, "nginx:1.27")
			},
		},
		{
			name: "non-root security context",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: api}
spec:
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    runAsNonRoot: true
    fsGroup: 2000
    supplementalGroups: [4000]
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: api
    image: registry.example/api:v2
    command: ["/bin/api", "--port=$(PORT)", "--token=$(TOKEN)", "$$(PORT)"]
    args: ["--name=$(POD_NAME)"]
    env:
    - {name: PORT, value: "8443"}
    - {name: URL, value: "https://0.0.0.0:$(PORT)/"}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities:
        drop: [ALL]
        add: [NET_BIND_SERVICE]
  - name: sidecar
    image: busybox
    securityContext:
      runAsUser: 0
      seccompProfile: {type: Localhost, localhostProfile: profiles/audit.json}
      procMount: Unmasked
      appArmorProfile: {type: Localhost, localhostProfile: k8s-sidecar}
`,
			check: func(t *testing.T, pods []Pod) {
				p := onePod(t, pods)
				equal(t, "namespace default", p.Namespace, "default")
				equal(t, "derived uid", p.UID, derivedUID("default", "api"))
				sb := p.Sandbox.Linux.SecurityContext
				equal(t, "sandbox user", sb.RunAsUser.GetValue(), int64(1000))
				equal(t, "sandbox group", sb.RunAsGroup.GetValue(), int64(3000))
				equal(t, "sandbox groups", sb.SupplementalGroups, []int64{2000, 4000})
				equal(t, "sandbox privileged", sb.Privileged, false)

				c := container(t, p, "api")
				sc := c.Config.Linux.SecurityContext
				equal(t, "user", sc.RunAsUser.GetValue(), int64(1000))
				equal(t, "group", sc.RunAsGroup.GetValue(), int64(3000))
				equal(t, "username", sc.RunAsUsername, "")
				equal(t, "groups", sc.SupplementalGroups, []int64{2000, 4000})
				equal(t, "no_new_privs", sc.NoNewPrivs, true)
				equal(t, "readonly rootfs", sc.ReadonlyRootfs, true)
				equal(t, "privileged", sc.Privileged, false)
				equal(t, "drop", sc.Capabilities.DropCapabilities, []string{"ALL"})
				equal(t, "add", sc.Capabilities.AddCapabilities, []string{"NET_BIND_SERVICE"})
				equal(t, "seccomp", sc.Seccomp.ProfileType, runtimeapi.SecurityProfile_RuntimeDefault)
				equal(t, "apparmor", sc.Apparmor == nil, true)
				equal(t, "masked", sc.MaskedPaths[:len(staticMaskedPaths)], staticMaskedPaths)
				equal(t, "readonly paths", sc.ReadonlyPaths, defaultReadonlyPaths)
				equal(t, "command", c.Config.Command, []string{"/bin/api", "--port=8443", "--token=$(TOKEN)", "$(PORT)"})
				equal(t, "args", c.Config.Args, []string{"--name=$(POD_NAME)"})
				equal(t, "envs", envs(c), []string{"PORT=8443", "URL=https://0.0.0.0:8443/", "POD_NAME="})
				equal(t, "pid namespace", sc.NamespaceOptions.Pid, runtimeapi.NamespaceMode_CONTAINER)
				equal(t, "network namespace", sc.NamespaceOptions.Network, runtimeapi.NamespaceMode_POD)
				equal(t, "user namespace", sc.NamespaceOptions.UsernsOptions.Mode, runtimeapi.NamespaceMode_NODE)

				side := container(t, p, "sidecar").Config.Linux.SecurityContext
				equal(t, "sidecar user", side.RunAsUser.GetValue(), int64(0))
				equal(t, "sidecar group from pod", side.RunAsGroup.GetValue(), int64(3000))
				equal(t, "sidecar no_new_privs", side.NoNewPrivs, false)
				equal(t, "sidecar seccomp", side.Seccomp.ProfileType, runtimeapi.SecurityProfile_Localhost)
				equal(t, "sidecar seccomp ref", side.Seccomp.LocalhostRef, "/var/lib/kubelet/seccomp/profiles/audit.json")
				equal(t, "sidecar unmasked", side.MaskedPaths, []string{})
				equal(t, "sidecar not readonly", side.ReadonlyPaths, []string{})
				equal(t, "sidecar apparmor", side.Apparmor.GetLocalhostRef(), "k8s-sidecar")
				//lint:ignore SA1019 the kubelet sends both
				equal(t, "sidecar apparmor (deprecated)", side.ApparmorProfile, "localhost/k8s-sidecar")
				equal(t, "sidecar caps", side.Capabilities == nil, true)
			},
		},
		{
			name: "runtimeClassName with a RuntimeClass in the input, and without",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: sandboxed}
spec:
  runtimeClassName: gvisor
  containers: [{name: c, image: alpine}]
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
---
apiVersion: v1
kind: Pod
metadata: {name: kata}
spec:
  runtimeClassName: kata-qemu
  containers: [{name: c, image: alpine}]
---
apiVersion: v1
kind: Pod
metadata: {name: plain}
spec:
  containers: [{name: c, image: alpine}]
`,
			check: func(t *testing.T, pods []Pod) {
				if len(pods) != 3 {
					t.Fatalf("got %d pods, want 3", len(pods))
				}
				equal(t, "class", pods[0].RuntimeClassName, "gvisor")
				equal(t, "handler from RuntimeClass", pods[0].Handler, "runsc")
				equal(t, "class without RuntimeClass", pods[1].RuntimeClassName, "kata-qemu")
				equal(t, "handler is the class", pods[1].Handler, "kata-qemu")
				equal(t, "no class", pods[2].RuntimeClassName, "")
				equal(t, "no handler", pods[2].Handler, "")
			},
		},
		{
			name: "Deployment and CronJob templates",
			input: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend, namespace: prod}
spec:
  selector: {matchLabels: {app: frontend}}
  template:
    metadata:
      labels: {app: frontend}
      annotations: {container.apparmor.security.beta.kubernetes.io/web: runtime/default}
    spec:
      containers:
      - name: web
        image: nginx
        resources:
          limits: {cpu: 500m, memory: 256Mi}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: backup}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: dump
            image: postgres:16
            resources:
              requests: {cpu: 250m, memory: 64Mi}
`,
			check: func(t *testing.T, pods []Pod) {
				if len(pods) != 2 {
					t.Fatalf("got %d pods, want 2", len(pods))
				}
				d := pods[0]
				equal(t, "deployment source", d.Source, "Deployment/frontend")
				equal(t, "deployment pod name", d.Name, "frontend-explain")
				equal(t, "deployment namespace", d.Namespace, "prod")
				equal(t, "template label", d.Sandbox.Labels["app"], "frontend")
				equal(t, "hostname", d.Sandbox.Hostname, "frontend-explain")
				web := container(t, d, "web")
				apparmor := web.Config.Linux.SecurityContext.Apparmor
				equal(t, "apparmor from annotation", apparmor.GetProfileType(), runtimeapi.SecurityProfile_RuntimeDefault)
				//lint:ignore SA1019 the kubelet sends both
				equal(t, "apparmor (deprecated)", web.Config.Linux.SecurityContext.ApparmorProfile, "runtime/default")
				r := web.Config.Linux.Resources
				// Limits only: the request defaults to the limit, so the pod
				// is Guaranteed.
				equal(t, "cpu shares", r.CpuShares, int64(512))
				equal(t, "cpu quota", r.CpuQuota, int64(50000))
				equal(t, "cpu period", r.CpuPeriod, int64(100000))
				equal(t, "memory", r.MemoryLimitInBytes, int64(256<<20))
				equal(t, "guaranteed oom", r.OomScoreAdj, int64(-997))

				cj := pods[1]
				equal(t, "cronjob source", cj.Source, "CronJob/backup")
				equal(t, "cronjob pod name", cj.Name, "backup-explain")
				equal(t, "cronjob namespace", cj.Namespace, "default")
				dump := container(t, cj, "dump")
				r = dump.Config.Linux.Resources
				equal(t, "burstable shares", r.CpuShares, int64(256))
				equal(t, "no quota without limit", r.CpuQuota, int64(0))
				equal(t, "no memory limit", r.MemoryLimitInBytes, int64(0))
				if r.OomScoreAdj < 3 || r.OomScoreAdj > 999 {
					t.Errorf("burstable oom_score_adj %d, want within 3..999", r.OomScoreAdj)
				}
				equal(t, "unset apparmor", dump.Config.Linux.SecurityContext.Apparmor == nil, true)
			},
		},
		{
			name: "hostNetwork, hostPID and hostIPC",
			input: `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      hostPID: true
      hostIPC: true
      containers:
      - name: agent
        image: agent:1
        ports: [{containerPort: 9100}]
`,
			check: func(t *testing.T, pods []Pod) {
				p := onePod(t, pods)
				sb := p.Sandbox
				equal(t, "no hostname on hostNetwork", sb.Hostname, "")
				ns := sb.Linux.SecurityContext.NamespaceOptions
				equal(t, "network", ns.Network, runtimeapi.NamespaceMode_NODE)
				equal(t, "pid", ns.Pid, runtimeapi.NamespaceMode_NODE)
				equal(t, "ipc", ns.Ipc, runtimeapi.NamespaceMode_NODE)
				equal(t, "hostPort defaults to containerPort", sb.PortMappings[0].HostPort, int32(9100))
				c := container(t, p, "agent")
				cns := c.Config.Linux.SecurityContext.NamespaceOptions
				equal(t, "container network", cns.Network, runtimeapi.NamespaceMode_NODE)
				equal(t, "container pid", cns.Pid, runtimeapi.NamespaceMode_NODE)
				equal(t, "container ipc", cns.Ipc, runtimeapi.NamespaceMode_NODE)
				// The kubelet manages /etc/hosts for hostNetwork pods too.
				equal(t, "etc-hosts", mount(t, c, "/etc/hosts").HostPath, "/var/lib/kubelet/pods/"+p.UID+"/etc-hosts")
			},
		},
		{
			name: "volume paths",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: vols, uid: u1}
spec:
  shareProcessNamespace: true
  hostUsers: false
  volumes:
  - {name: scratch, emptyDir: {}}
  - {name: shm, emptyDir: {medium: Memory}}
  - {name: config, configMap: {name: app-config}}
  - {name: creds, secret: {secretName: app-creds}}
  - name: token
    projected:
      sources: [{serviceAccountToken: {path: token}}]
  - {name: data, persistentVolumeClaim: {claimName: data-pvc}}
  - name: nosource
  containers:
  - name: app
    image: app
    env: [{name: SUB, value: tenant-a}]
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    - {name: shm, mountPath: /dev/shm}
    - {name: config, mountPath: /etc/app}
    - {name: creds, mountPath: /etc/creds, readOnly: true, recursiveReadOnly: Enabled}
    - {name: token, mountPath: /var/run/secrets/tokens}
    - {name: data, mountPath: /data}
    - {name: config, mountPath: /etc/app.conf, subPath: app.conf}
    - {name: scratch, mountPath: /tenant, subPathExpr: "$(SUB)"}
    - {name: nosource, mountPath: /etc/hosts}
`,
			check: func(t *testing.T, pods []Pod) {
				p := onePod(t, pods)
				c := container(t, p, "app")
				const vols = "/var/lib/kubelet/pods/u1/volumes/"
				for path, want := range map[string]struct {
					host     string
					readOnly bool
				}{
					"/scratch":                {vols + "kubernetes.io~empty-dir/scratch", false},
					"/dev/shm":                {vols + "kubernetes.io~empty-dir/shm", false},
					"/etc/app":                {vols + "kubernetes.io~configmap/config", true},
					"/etc/creds":              {vols + "kubernetes.io~secret/creds", true},
					"/var/run/secrets/tokens": {vols + "kubernetes.io~projected/token", true},
					"/data":                   {vols + "kubernetes.io~csi/data-pvc/mount", false},
					"/etc/app.conf":           {"/var/lib/kubelet/pods/u1/volume-subpaths/config/app/6", true},
					"/tenant":                 {"/var/lib/kubelet/pods/u1/volume-subpaths/scratch/app/7", false},
					"/etc/hosts":              {vols + "kubernetes.io~empty-dir/nosource", false},
				} {
					m := mount(t, c, path)
					equal(t, path+" host path", m.HostPath, want.host)
					equal(t, path+" readonly", m.Readonly, want.readOnly)
					equal(t, path+" relabel", m.SelinuxRelabel, true)
					equal(t, path+" uid mapping", m.UidMappings[0].GetHostId(), uint32(65536))
				}
				equal(t, "recursive read-only", mount(t, c, "/etc/creds").RecursiveReadOnly, true)
				equal(t, "one /etc/hosts, the pod's own", countMounts(c, "/etc/hosts"), 1)
				ns := c.Config.Linux.SecurityContext.NamespaceOptions
				equal(t, "shared pid", ns.Pid, runtimeapi.NamespaceMode_POD)
				equal(t, "pod user namespace", ns.UsernsOptions.Mode, runtimeapi.NamespaceMode_POD)
				equal(t, "uid map", ns.UsernsOptions.Uids[0].GetLength(), uint32(65536))
			},
		},
		{
			name: "init containers first, in order",
			input: `
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - {name: wait-db, image: busybox}
      - {name: schema, image: migrate:1}
      containers:
      - {name: main, image: app:1}
      - {name: metrics, image: exporter:1}
`,
			check: func(t *testing.T, pods []Pod) {
				p := onePod(t, pods)
				var got []string
				for _, c := range p.Containers {
					got = append(got, c.Name)
					equal(t, c.Name+" config name", c.Config.Metadata.Name, c.Name)
					equal(t, c.Name+" image", c.Image, c.Config.Image.Image)
				}
				equal(t, "order", got, []string{"wait-db", "schema", "main", "metrics"})
				equal(t, "init", []bool{p.Containers[0].Init, p.Containers[1].Init, p.Containers[2].Init, p.Containers[3].Init},
					[]bool{true, true, false, false})
				equal(t, "besteffort oom", p.Containers[2].Config.Linux.Resources.OomScoreAdj, int64(1000))
				equal(t, "minimum shares", p.Containers[2].Config.Linux.Resources.CpuShares, int64(2))
			},
		},
		{
			name: "several documents with a Service and a ConfigMap skipped",
			input: `# the app
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80}]
---
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data: {key: value}
---
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "json-pod"}, "spec": {"containers": [{"name": "c", "image": "alpine"}]}}
---
apiVersion: example.com/v1
kind: Deployment
metadata: {name: custom}
spec: {anything: goes}
`,
			check: func(t *testing.T, pods []Pod) {
				p := onePod(t, pods)
				equal(t, "source", p.Source, "Pod/json-pod")
				equal(t, "containers", len(p.Containers), 1)
			},
		},
		{
			name: "a List of pods",
			input: `
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {generateName: worker-}
  spec:
    containers: [{name: c, image: alpine}]
`,
			check: func(t *testing.T, pods []Pod) {
				p := onePod(t, pods)
				equal(t, "source", p.Source, "Pod (document 1 item 1)")
				equal(t, "name", p.Name, "worker-explain")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, err := Decode([]byte(tt.input), tt.opts)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			tt.check(t, pods)
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string // in the error
	}{
		{
			name: "unknown field in a pod spec",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: typo}
spec:
  hostNetwrok: true
  containers: [{name: c, image: alpine}]
`,
			want: `unknown field "hostNetwrok"`,
		},
		{
			name: "unknown field in a container of a template",
			input: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: typo}
spec:
  selector: {}
  template:
    spec:
      containers: [{name: c, image: alpine, securityContext: {privilged: true}}]
`,
			want: `privilged`,
		},
		{
			name: "duplicated field",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: twice}
spec:
  containers:
  - name: c
    image: alpine
    image: evil
`,
			want: `"image"`,
		},
		{
			name: "no pod",
			input: `
apiVersion: v1
kind: Service
metadata: {name: web}
---
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
`,
			want: "no pod",
		},
		{
			name:  "empty input",
			input: "# nothing\n",
			want:  "no pod",
		},
		{
			name: "retired apiVersion",
			input: `
apiVersion: extensions/v1beta1
kind: Deployment
metadata: {name: old}
`,
			want: "not served",
		},
		{
			name: "no_new_privs with privileged",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: alpine
    securityContext: {privileged: true, allowPrivilegeEscalation: false}
`,
			want: "allowPrivilegeEscalation",
		},
		{
			name: "unsupported volume type",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes: [{name: share, nfs: {server: nfs.example, path: /export}}]
  containers: [{name: c, image: alpine, volumeMounts: [{name: share, mountPath: /mnt}]}]
`,
			want: "type nfs is not supported",
		},
		{
			name: "subPath escaping the volume",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes: [{name: v, emptyDir: {}}]
  containers: [{name: c, image: alpine, volumeMounts: [{name: v, mountPath: /mnt, subPath: ../../etc}]}]
`,
			want: "'..'",
		},
		{
			name: "mount of a missing volume",
			input: `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: alpine, volumeMounts: [{name: v, mountPath: /mnt}]}]
`,
			want: `cannot find volume "v"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pods, err := Decode([]byte(tt.input), Options{})
			if err == nil {
				t.Fatalf("Decode gave %d pods and no error, want an error with %q", len(pods), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "EMPTY": ""}
	for in, want := range map[string]string{
		"$(A)-$(B)":  "1-$(B)",
		"$$(A)":      "$(A)",
		"$(EMPTY)x":  "x",
		"cost: $5":   "cost: $5",
		"$(A":        "$(A",
		"tail $":     "tail $",
		"$$$(A)$$":   "$1$",
		"no vars":    "no vars",
		"$(A)$(A)$A": "11$A",
	} {
		equal(t, in, expand(in, vars), want)
	}
}

func onePod(t *testing.T, pods []Pod) Pod {
	t.Helper()
	if len(pods) != 1 {
		t.Fatalf("got %d pods, want 1", len(pods))
	}
	return pods[0]
}

func container(t *testing.T, p Pod, name string) Container {
	t.Helper()
	for _, c := range p.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("pod %s has no container %q", p.Name, name)
	return Container{}
}

func mount(t *testing.T, c Container, containerPath string) *runtimeapi.Mount {
	t.Helper()
	for _, m := range c.Config.Mounts {
		if m.ContainerPath == containerPath {
			return m
		}
	}
	t.Fatalf("container %s has no mount at %s", c.Name, containerPath)
	return nil
}

func countMounts(c Container, containerPath string) int {
	n := 0
	for _, m := range c.Config.Mounts {
		if m.ContainerPath == containerPath {
			n++
		}
	}
	return n
}

func envs(c Container) []string {
	var out []string
	for _, kv := range c.Config.Envs {
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return out
}

// equal fails the test when got and want differ.
func equal[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}
