//go:build integration

package cri

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// TestCRIGVisorImmediateExit: app containers of a gVisor pod whose process
// exits at once report their own exit status, with their output intact.
//
// The runsc wrapper reports an app container's exit through a waiter
// process (`runsc wait`), started at create: its first wait usually comes
// before the container's start, which runsc refuses ("not started"). A
// container that started and exited before the waiter's next `runsc state`
// was reported as exited 255 (about one run of `sh -c "exit 0"` in 15 on
// a 2-core machine), and its output lost; runsc keeps the status until
// delete, and the waiter now asks for it (runscwrap.runWaiter). 30
// containers, three at a time, in one pod on hardened-gvisor: every one
// must exit 0 and leave both its stdout and stderr line in its log.
func TestCRIGVisorImmediateExit(t *testing.T) {
	e := env(t)
	needShim(t, e)
	const total, parallel = 30, 3
	c := ctx(t, 3*time.Minute)
	conn, err := grpc.NewClient("unix://"+e.Sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	rt := runtimeapi.NewRuntimeServiceClient(conn)

	name := "gvisor-immediate-exit-" + randHex(3)
	logDir := filepath.Join(e.Dir, "pods", name, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	sbCfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "hd-cri", Uid: "uid-" + name},
		Hostname:     name,
		LogDirectory: logDir,
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: e.CgroupParent},
	}
	t0 := time.Now()
	sb, err := rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: sbCfg, RuntimeHandler: handlerGVisor})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\n--- containerd log ---\n%s", err, e.LogTail(30))
	}
	t.Cleanup(func() {
		cc := ctx(t, time.Minute)
		if _, err := rt.StopPodSandbox(cc, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Errorf("StopPodSandbox: %v", err)
		}
		if _, err := rt.RemovePodSandbox(cc, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.PodSandboxId}); err != nil {
			t.Errorf("RemovePodSandbox: %v", err)
		}
	})
	t.Logf("pod %s on %s in %s", sb.PodSandboxId[:12], handlerGVisor, time.Since(t0).Round(time.Millisecond))

	// one runs container i to its exit and returns what was wrong.
	one := func(i int) error {
		cname := fmt.Sprintf("exit-%02d", i)
		cr, err := rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{
			PodSandboxId: sb.PodSandboxId, SandboxConfig: sbCfg,
			Config: &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: cname},
				Image:    &runtimeapi.ImageSpec{Image: imageBusybox},
				Command:  []string{"/bin/sh", "-c", fmt.Sprintf("echo out-%02d; echo err-%02d >&2; exit 0", i, i)},
				LogPath:  cname + ".log",
			},
		})
		if err != nil {
			return fmt.Errorf("CreateContainer: %w", err)
		}
		id := cr.ContainerId
		defer func() {
			if _, err := rt.RemoveContainer(ctx(t, time.Minute), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
				t.Errorf("%s: RemoveContainer: %v", cname, err)
			}
		}()
		if _, err := rt.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
			return fmt.Errorf("StartContainer: %w", err)
		}
		for {
			st, err := rt.ContainerStatus(c, &runtimeapi.ContainerStatusRequest{ContainerId: id})
			if err != nil {
				return fmt.Errorf("ContainerStatus: %w", err)
			}
			if s := st.GetStatus(); s.GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
				var problems []string
				if s.GetExitCode() != 0 {
					problems = append(problems, fmt.Sprintf("exited %d (%s), want 0", s.GetExitCode(), s.GetReason()))
				}
				data, _ := os.ReadFile(filepath.Join(logDir, cname+".log"))
				for _, want := range []string{fmt.Sprintf(" stdout F out-%02d\n", i), fmt.Sprintf(" stderr F err-%02d\n", i)} {
					if !strings.Contains(string(data), want) {
						problems = append(problems, fmt.Sprintf("log lacks %q", strings.TrimSpace(want)))
					}
				}
				if len(problems) > 0 {
					return fmt.Errorf("%s (container %s; log %q)", strings.Join(problems, "; "), id[:12], data)
				}
				return nil
			}
			select {
			case <-c.Done():
				return fmt.Errorf("did not exit: %w", c.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	t1 := time.Now()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		fails []string
	)
	next := make(chan int)
	for range parallel {
		wg.Go(func() {
			for i := range next {
				if err := one(i); err != nil {
					mu.Lock()
					fails = append(fails, fmt.Sprintf("container %d: %v", i, err))
					mu.Unlock()
				}
			}
		})
	}
	for i := range total {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("%d containers (%d at a time) in %s, %d wrong", total, parallel, time.Since(t1).Round(time.Millisecond), len(fails))
	if len(fails) > 0 {
		t.Errorf("%d of %d immediately exiting gVisor containers were reported wrong:\n%s\n--- containerd log ---\n%s",
			len(fails), total, strings.Join(fails, "\n"), e.LogTail(40))
	}
}
