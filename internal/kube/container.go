package kube

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet's CPU conversions (pkg/kubelet/cm) and OOM score adjustments
// (pkg/kubelet/qos).
const (
	minShares             = 2
	maxShares             = 262144
	sharesPerCPU          = 1024
	milliCPUToCPU         = 1000
	quotaPeriod           = 100000 // µs, the kubelet's default cpuCFSQuotaPeriod
	minQuotaPeriod        = 1000
	guaranteedOOMScoreAdj = -997
	besteffortOOMScoreAdj = 1000
	nodeCriticalClass     = "system-node-critical"
)

// containerConfig is the kubelet's generateContainerConfig for a container
// started for the first time (attempt and restart count 0). The image is
// the one the manifest names: the kubelet sends the image's resolved
// reference (its ID) in image and the name as written in
// user_specified_image. Devices and CDI devices come from device plugins
// and DRA, which a manifest does not show, and are left empty; so is the
// io.kubernetes.container.hash annotation.
func (p *podContext) containerConfig(c *corev1.Container) (*runtimeapi.ContainerConfig, error) {
	envs, vars := containerEnv(c)
	sc, err := p.containerSecurityContext(c)
	if err != nil {
		return nil, err
	}
	mounts, err := p.mounts(c, vars, sc.NamespaceOptions.UsernsOptions)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerConfig{
		Metadata:    &runtimeapi.ContainerMetadata{Name: c.Name},
		Image:       &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image},
		Command:     expandAll(c.Command, vars),
		Args:        expandAll(c.Args, vars),
		WorkingDir:  c.WorkingDir,
		Envs:        envs,
		Mounts:      mounts,
		Labels:      p.containerLabels(c),
		Annotations: p.containerAnnotations(c),
		LogPath:     filepath.Join(c.Name, "0.log"),
		Stdin:       c.Stdin,
		StdinOnce:   c.StdinOnce,
		Tty:         c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       p.linuxResources(c),
			SecurityContext: sc,
		},
	}, nil
}

// containerEnv is the environment the kubelet's makeEnvironmentVariables
// gives the container, as far as the manifest tells it:
//   - an env entry with a value has that value, its $(NAME) references to
//     variables defined before it expanded;
//   - an env entry with valueFrom (fieldRef, resourceFieldRef,
//     configMapKeyRef, secretKeyRef) has its name and an empty value: the
//     kubelet resolves it from the API server and the node when it starts
//     the container;
//   - envFrom sources and the service link variables (enableServiceLinks)
//     are not listed: the kubelet reads them from the API server.
//
// A name defined again keeps its first place and takes the last value; the
// kubelet builds the list from a map, so its own order means nothing.
// vars are the values known for $(NAME) expansion: names from valueFrom
// are not in it, so references to them stay as written.
func containerEnv(c *corev1.Container) (envs []*runtimeapi.KeyValue, vars map[string]string) {
	vars = map[string]string{}
	index := map[string]int{}
	for _, e := range c.Env {
		value := ""
		if e.ValueFrom == nil {
			value = expand(e.Value, vars)
			vars[e.Name] = value
		} else {
			delete(vars, e.Name)
		}
		if i, ok := index[e.Name]; ok {
			envs[i].Value = []byte(value)
			continue
		}
		index[e.Name] = len(envs)
		envs = append(envs, &runtimeapi.KeyValue{Key: e.Name, Value: []byte(value)})
	}
	return envs, vars
}

func expandAll(in []string, vars map[string]string) []string {
	if len(in) == 0 {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, vars)
	}
	return out
}

// expand is the kubelet's $(NAME) expansion (third_party/forked/golang/expansion):
// $(NAME) becomes the value of NAME when vars has it and stays as written
// otherwise, $$ is a literal $, and any other $ is kept.
func expand(s string, vars map[string]string) string {
	out, _ := expandKnown(s, vars)
	return out
}

// expandKnown is expand, also telling whether every reference was known.
func expandKnown(s string, vars map[string]string) (out string, complete bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	complete = true
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 { // an unclosed reference is kept
				b.WriteString("$(")
				i++
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + name + ")")
				complete = false
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), complete
}

// containerLabels are the kubelet's newContainerLabels.
func (p *podContext) containerLabels(c *corev1.Container) map[string]string {
	return map[string]string{
		"io.kubernetes.container.name": c.Name,
		"io.kubernetes.pod.name":       p.name,
		"io.kubernetes.pod.namespace":  p.namespace,
		"io.kubernetes.pod.uid":        p.uid,
	}
}

// containerAnnotations are the kubelet's newContainerAnnotations for a
// first start, without the container hash: restart count, termination
// message path and policy, the pod's grace periods, and the container's
// preStop handler and ports as JSON.
func (p *podContext) containerAnnotations(c *corev1.Container) map[string]string {
	a := map[string]string{
		"io.kubernetes.container.restartCount":             "0",
		"io.kubernetes.container.terminationMessagePath":   c.TerminationMessagePath,
		"io.kubernetes.container.terminationMessagePolicy": string(c.TerminationMessagePolicy),
		"io.kubernetes.pod.terminationGracePeriod":         strconv.FormatInt(*p.spec.TerminationGracePeriodSeconds, 10),
	}
	if g := p.meta.DeletionGracePeriodSeconds; g != nil {
		a["io.kubernetes.pod.deletionGracePeriod"] = strconv.FormatInt(*g, 10)
	}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if raw, err := json.Marshal(c.Lifecycle.PreStop); err == nil {
			a["io.kubernetes.container.preStopHandler"] = string(raw)
		}
	}
	if len(c.Ports) > 0 {
		if raw, err := json.Marshal(c.Ports); err == nil {
			a["io.kubernetes.container.ports"] = string(raw)
		}
	}
	return a
}

// linuxResources is the kubelet's generateLinuxContainerResources with its
// default configuration (CFS quota on, 100ms period): cpu_shares from the
// CPU request (from the limit when there is no request, 2 when neither),
// cpu_quota from the CPU limit (the pod-level limit when the container has
// none), memory_limit_in_bytes from the memory limit (likewise), and the
// OOM score adjustment of the pod's QoS class. Not modelled, because they
// depend on the node: hugepage limits (an entry per page size of the node),
// swap, the unified memory.oom.group / memory.min / memory.high of cgroup
// v2 nodes, and the CPU manager's quota exemption for exclusive CPUs.
func (p *podContext) linuxResources(c *corev1.Container) *runtimeapi.LinuxContainerResources {
	cpuLimit := c.Resources.Limits.Cpu()
	memLimit := c.Resources.Limits.Memory()
	if podLevelResourcesSet(p.spec) {
		if cpuLimit.IsZero() {
			cpuLimit = p.spec.Resources.Limits.Cpu()
		}
		if memLimit.IsZero() {
			memLimit = p.spec.Resources.Limits.Memory()
		}
	}
	shareBasis := cpuLimit.MilliValue()
	if req, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		shareBasis = req.MilliValue()
	}
	return &runtimeapi.LinuxContainerResources{
		CpuShares:          milliCPUToShares(shareBasis),
		CpuPeriod:          quotaPeriod,
		CpuQuota:           milliCPUToQuota(cpuLimit.MilliValue()),
		MemoryLimitInBytes: memLimit.Value(),
		OomScoreAdj:        oomScoreAdj(p.spec, c),
	}
}

// podLevelResourcesSet is the kubelet's IsPodLevelResourcesSet: the pod
// has a CPU or memory request or limit of its own.
func podLevelResourcesSet(spec *corev1.PodSpec) bool {
	if spec.Resources == nil {
		return false
	}
	for _, list := range []corev1.ResourceList{spec.Resources.Requests, spec.Resources.Limits} {
		for name := range list {
			if name == corev1.ResourceCPU || name == corev1.ResourceMemory {
				return true
			}
		}
	}
	return false
}

func milliCPUToShares(milliCPU int64) int64 {
	if milliCPU == 0 {
		return minShares
	}
	shares := milliCPU * sharesPerCPU / milliCPUToCPU
	return min(max(shares, minShares), maxShares)
}

func milliCPUToQuota(milliCPU int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	return max(milliCPU*quotaPeriod/milliCPUToCPU, minQuotaPeriod)
}

// oomScoreAdj is the kubelet's GetContainerOOMScoreAdjust: -997 for a
// system-node-critical or Guaranteed pod, 1000 for BestEffort, and for
// Burstable 1000 - 1000*memoryRequest/nodeMemory kept within 3..999, with
// this machine's memory standing in for the node's (999 when unknown). The
// kubelet's adjustment of sidecar containers to the lowest score of the
// regular containers is not modelled.
func oomScoreAdj(spec *corev1.PodSpec, c *corev1.Container) int64 {
	if spec.PriorityClassName == nodeCriticalClass {
		return guaranteedOOMScoreAdj
	}
	switch podQOS(spec) {
	case corev1.PodQOSGuaranteed:
		return guaranteedOOMScoreAdj
	case corev1.PodQOSBestEffort:
		return besteffortOOMScoreAdj
	}
	capacity := nodeMemory()
	if capacity <= 0 {
		return besteffortOOMScoreAdj - 1
	}
	adj := 1000 - 1000*c.Resources.Requests.Memory().Value()/capacity
	switch {
	case adj < 1000+guaranteedOOMScoreAdj:
		return 1000 + guaranteedOOMScoreAdj
	case adj == besteffortOOMScoreAdj:
		return adj - 1
	}
	return adj
}

// podQOS is the API's QoS class (GetPodQOS) over CPU and memory: from the
// pod-level resources when set, else summed over init and regular
// containers. BestEffort without any request or limit; Guaranteed when
// every container limits both and the requests equal the limits;
// Burstable otherwise.
func podQOS(spec *corev1.PodSpec) corev1.PodQOSClass {
	var lists []corev1.ResourceRequirements
	if podLevelResourcesSet(spec) {
		lists = []corev1.ResourceRequirements{*spec.Resources}
	} else {
		for _, c := range spec.InitContainers {
			lists = append(lists, c.Resources)
		}
		for _, c := range spec.Containers {
			lists = append(lists, c.Resources)
		}
	}
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	add := func(sum corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
		total := q.DeepCopy()
		if prev, ok := sum[name]; ok {
			total.Add(prev)
		}
		sum[name] = total
	}
	for _, r := range lists {
		for name, q := range r.Requests {
			if (name == corev1.ResourceCPU || name == corev1.ResourceMemory) && q.Sign() > 0 {
				add(requests, name, q)
			}
		}
		found := 0
		for name, q := range r.Limits {
			if (name == corev1.ResourceCPU || name == corev1.ResourceMemory) && q.Sign() > 0 {
				add(limits, name, q)
				found++
			}
		}
		if found < 2 {
			guaranteed = false
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if guaranteed && len(requests) == len(limits) {
		for name, req := range requests {
			if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
				return corev1.PodQOSBurstable
			}
		}
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// nodeMemory is this machine's MemTotal in bytes (cadvisor's
// MemoryCapacity on a node), 0 when unknown.
var nodeMemory = sync.OnceValue(func() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 3 && fields[0] == "MemTotal:" && fields[2] == "kB" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
})
