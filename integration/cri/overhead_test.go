//go:build integration

package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	nodev1 "k8s.io/api/node/v1"
	"sigs.k8s.io/yaml"
)

// TestCRIGVisorOverhead measures what a pod costs on the hardened-gvisor
// handler beyond the same pod on runc (the `hardened` handler), and checks
// that the hardened-gvisor RuntimeClass declares at least that as its pod
// overhead (deploy/base/runtimeclasses.yaml): the scheduler and the
// kubelet's pod cgroup limits count it on top of the containers' requests.
//
// How: podsPerHandler idle pods per handler, each with one container
// sleeping, each pod in a cgroup parent of its own (as the kubelet gives
// every pod one); after a settle time, the pod cgroup's memory.usage_in_bytes
// (cgroup v1, hierarchical: the sandbox, gofer and container processes, page
// cache included, which is what a limit counts) and its CPU time over an
// idle window (cpuacct.usage). The overhead is the largest gVisor pod minus
// the smallest runc pod.
func TestCRIGVisorOverhead(t *testing.T) {
	e := env(t)
	needShim(t, e)
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.usage_in_bytes"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
			t.Skip("SKIPPED: no cgroup v1 memory controller here (the measurement reads cgroup v1 files)")
		}
	}
	declared := declaredOverhead(t, handlerGVisor)
	const (
		podsPerHandler = 2
		settle         = 3 * time.Second
		idleWindow     = 5 * time.Second
	)
	type sample struct {
		memory  int64
		cpuIdle time.Duration
	}
	measure := func(handler string) []sample {
		var out []sample
		for i := 0; i < podsPerHandler; i++ {
			parent := fmt.Sprintf("%s/overhead-%s-%d-%s", e.CgroupParent, handler, i, randHex(2))
			t.Cleanup(func() { removePodCgroup(t, parent) })
			p := e.mustRunPod(t, "overhead-"+handler, podOpts{Handler: handler, CgroupParent: parent})
			p.mustStart(t, "idle", ctrOpts{Command: []string{"sleep", "3600"}})
			time.Sleep(settle)
			cpu0 := cgroupInt(t, "cpuacct", parent, "cpuacct.usage")
			time.Sleep(idleWindow)
			cpu1 := cgroupInt(t, "cpuacct", parent, "cpuacct.usage")
			s := sample{memory: cgroupInt(t, "memory", parent, "memory.usage_in_bytes"), cpuIdle: time.Duration(cpu1 - cpu0)}
			t.Logf("%s pod %d: memory %.1f MiB, CPU %v in %v idle", handler, i, float64(s.memory)/(1<<20), s.cpuIdle, idleWindow)
			out = append(out, s)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].memory < out[j].memory })
		return out
	}
	runc := measure(handlerHardened)
	gvisor := measure(handlerGVisor)
	memOverhead := gvisor[len(gvisor)-1].memory - runc[0].memory
	var cpuMax time.Duration
	for _, s := range gvisor {
		cpuMax = max(cpuMax, s.cpuIdle)
	}
	// CPU as the scheduler counts it: cores busy on average while idle.
	milliCPU := cpuMax.Seconds() / idleWindow.Seconds() * 1000
	t.Logf("gVisor pod overhead: memory %.1f MiB (largest gVisor pod %.1f MiB - smallest runc pod %.1f MiB); idle CPU %.1fm; declared: memory %s, cpu %s",
		float64(memOverhead)/(1<<20), float64(gvisor[len(gvisor)-1].memory)/(1<<20), float64(runc[0].memory)/(1<<20),
		milliCPU, declared.memory, declared.cpu)
	if memOverhead > declared.memoryBytes {
		t.Errorf("a gVisor pod costs %d bytes more than on runc; the RuntimeClass declares %s: raise podFixed.memory", memOverhead, declared.memory)
	}
	if milliCPU > float64(declared.milliCPU) {
		t.Errorf("an idle gVisor pod uses %.1fm CPU; the RuntimeClass declares %s: raise podFixed.cpu", milliCPU, declared.cpu)
	}
}

type overhead struct {
	memory, cpu string
	memoryBytes int64
	milliCPU    int64
}

// declaredOverhead reads the pod overhead of the RuntimeClass with handler
// from deploy/base/runtimeclasses.yaml.
func declaredOverhead(t *testing.T, handler string) overhead {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "base", "runtimeclasses.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		var rc nodev1.RuntimeClass
		if err := yaml.Unmarshal([]byte(doc), &rc); err != nil {
			t.Fatal(err)
		}
		if rc.Handler != handler {
			continue
		}
		if rc.Overhead == nil {
			t.Fatalf("RuntimeClass %s declares no overhead", rc.Name)
		}
		mem, cpu := rc.Overhead.PodFixed.Memory(), rc.Overhead.PodFixed.Cpu()
		return overhead{memory: mem.String(), cpu: cpu.String(), memoryBytes: mem.Value(), milliCPU: cpu.MilliValue()}
	}
	t.Fatalf("no RuntimeClass with handler %s in deploy/base/runtimeclasses.yaml", handler)
	return overhead{}
}

func cgroupInt(t *testing.T, controller, parent, file string) int64 {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, parent, file))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// removePodCgroup removes a pod's cgroup parent in every hierarchy once
// its containers' cgroups are gone (runc removes those, not the parent the
// pod named: the kubelet removes its pod cgroups itself).
func removePodCgroup(t *testing.T, parent string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range roots {
		p := filepath.Join(root, parent)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		for i := 0; ; i++ {
			err := os.Remove(p)
			if err == nil || os.IsNotExist(err) {
				break
			}
			if i == 50 {
				t.Errorf("removing pod cgroup %s: %v", p, err)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
