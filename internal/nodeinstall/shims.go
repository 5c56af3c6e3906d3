package nodeinstall

import (
	"context"
	"fmt"
	"sort"

	"github.com/containerd/containerd/api/services/tasks/v1"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// RuntimeType is the shim's containerd runtime type.
const RuntimeType = "io.containerd.hardened.v2"

// Running is a container whose task still runs on the hardened shim.
type Running struct {
	Namespace, ID string
	// Pod and Container name it for the CRI (from containerd's labels;
	// empty for a container not made through the CRI).
	Pod, PodNamespace, Container string
	Pid                          uint32
}

func (r Running) String() string {
	switch {
	case r.Pod != "" && r.Container != "":
		return fmt.Sprintf("pod %s/%s container %s (%s %s, pid %d)", r.PodNamespace, r.Pod, r.Container, r.Namespace, shortID(r.ID), r.Pid)
	case r.Pod != "":
		return fmt.Sprintf("pod %s/%s sandbox (%s %s, pid %d)", r.PodNamespace, r.Pod, r.Namespace, shortID(r.ID), r.Pid)
	}
	return fmt.Sprintf("%s %s (pid %d)", r.Namespace, r.ID, r.Pid)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Shims lists, over every containerd namespace, the containers created
// with the hardened runtime type whose task has not exited. Their shims
// run the binary and read the policy an uninstall would remove.
func Shims(ctx context.Context, address string) ([]Running, error) {
	client, err := containerd.New(address)
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", address, err)
	}
	defer client.Close()
	nss, err := client.NamespaceService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing containerd namespaces: %w", err)
	}
	var out []Running
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := client.ContainerService().List(nctx, fmt.Sprintf("runtime.name==%s", RuntimeType))
		if err != nil {
			return nil, fmt.Errorf("listing containers in namespace %s: %w", ns, err)
		}
		if len(ctrs) == 0 {
			continue
		}
		tl, err := client.TaskService().List(nctx, &tasks.ListTasksRequest{})
		if err != nil {
			return nil, fmt.Errorf("listing tasks in namespace %s: %w", ns, err)
		}
		live := map[string]uint32{}
		for _, t := range tl.Tasks {
			// A task that exited but was not deleted has a shim still
			// holding it; count it too.
			live[t.ID] = t.Pid
		}
		for _, c := range ctrs {
			pid, ok := live[c.ID]
			if !ok {
				continue
			}
			out = append(out, Running{
				Namespace: ns, ID: c.ID, Pid: pid,
				Pod:          c.Labels["io.kubernetes.pod.name"],
				PodNamespace: c.Labels["io.kubernetes.pod.namespace"],
				Container:    c.Labels["io.kubernetes.container.name"],
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}
