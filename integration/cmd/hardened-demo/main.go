// Command hardened-demo (`make demo`) shows what the hardened shim does,
// side by side with containerd's stock runc shim: it starts a private
// containerd (everything under one temp dir, see integration/harness),
// runs the same small workload under
//
//   - the stock runc shim (containerd's default spec, as `ctr run` gives it),
//   - the hardened shim (built-in default policy: the restricted profile on runc),
//   - the hardened shim's gVisor route (annotation hardened.dev/runtime=gvisor),
//
// and prints what each container saw: its effective capabilities, seccomp
// mode, no_new_privs, whether / is writable, its pids limit, the open fds
// of its PID 1, and the kernel it talks to. Then it cleans up. It uses no
// policy file. Needs root and the tools of hack/install-tools.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"encoding/json"

	"github.com/hardened-dev/hardened/integration/harness"
)

// workload prints key=value lines; it runs as the container's PID 1 and
// then becomes `sleep`, so that the host side (cgroup, report) can be read
// and an exec can list PID 1's fds (a shell listing its own fds counts the
// copies it keeps while redirecting).
const workload = `
while read k v rest; do
  case "$k" in CapEff:|Seccomp:|NoNewPrivs:) echo "${k%:}=$v";; esac
done < /proc/self/status
if touch /.hardened-demo 2>/dev/null; then echo "rootfs=writable"; rm -f /.hardened-demo; else echo "rootfs=read-only"; fi
echo "uid=$(id -u)"
echo "kernel=$(uname -r)"
echo READY
exec sleep 600
`

type column struct {
	title string
	spec  harness.Spec
	vals  map[string]string
}

var verbose = flag.Bool("v", false, "print each container's raw output")

func main() {
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "hardened-demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	fmt.Println("hardened-demo: building the shim and starting a private containerd ...")
	s, err := harness.NewSetup(ctx, "demo")
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "hardened-demo: cleanup: %v\n", err)
		}
	}()
	cols := []*column{
		{title: "stock runc shim", spec: harness.Spec{ID: "demo-stock", Runtime: harness.StockRunc("")}},
		{title: "hardened (default policy)", spec: harness.Spec{ID: "demo-hardened", Runtime: harness.Hardened("")}},
		{title: "hardened, gVisor route", spec: harness.Spec{ID: "demo-gvisor", Runtime: harness.Hardened(""),
			Annotations: map[string]string{harness.AnnotationRuntime: "gvisor"}}},
	}
	for _, c := range cols {
		c.spec.Args = []string{"/bin/sh", "-c", workload}
		vals, err := probe(ctx, s, c.spec)
		if err != nil {
			vals = map[string]string{"error": err.Error()}
		}
		c.vals = vals
	}

	release, _ := harness.HostKernel()
	fmt.Printf("\nThe same busybox workload, image %s, host kernel %s:\n\n", harness.ImageBusybox, release)
	rows := []struct{ key, label string }{
		{"route", "shim -> OCI runtime"},
		{"profile", "hardening profile"},
		{"CapEff", "CapEff (effective caps)"},
		{"Seccomp", "Seccomp (0 off, 2 filter)"},
		{"NoNewPrivs", "NoNewPrivs"},
		{"rootfs", "/ (root filesystem)"},
		{"pids", "pids.max (host cgroup)"},
		{"fds", "open fds of PID 1"},
		{"uid", "uid"},
		{"kernel", "kernel seen (uname -r)"},
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 3, ' ', 0)
	fmt.Fprintf(tw, "\t%s\t%s\t%s\n", cols[0].title, cols[1].title, cols[2].title)
	fmt.Fprintf(tw, "\t%s\t%s\t%s\n", dashes(cols[0].title), dashes(cols[1].title), dashes(cols[2].title))
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.label, val(cols[0], r.key), val(cols[1], r.key), val(cols[2], r.key))
	}
	tw.Flush()
	for _, c := range cols {
		if e := c.vals["error"]; e != "" {
			fmt.Printf("\n%s: %s\n", c.title, e)
		}
	}
	fmt.Println("\nCapEff 0000000000000400 is CAP_NET_BIND_SERVICE alone; gVisor's Sentry reports its own kernel version.")
	return nil
}

func dashes(s string) string { return strings.Repeat("-", len(s)) }

func val(c *column, key string) string {
	if v, ok := c.vals[key]; ok && v != "" {
		return v
	}
	if c.vals["error"] != "" {
		return "(failed)"
	}
	return "-"
}

// probe runs the workload, reads what it printed, the host's view of its
// pids cgroup and, for the hardened shim, its report; then deletes it.
func probe(ctx context.Context, s *harness.Setup, spec harness.Spec) (map[string]string, error) {
	c, err := s.D.Create(ctx, s.NS, spec)
	if err != nil {
		return nil, err
	}
	defer c.Delete(context.WithoutCancel(ctx))
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	if err := c.WaitOutput(ctx, "READY", 60*time.Second); err != nil {
		return nil, err
	}
	out, _ := c.Output()
	if *verbose {
		fmt.Printf("--- %s (%s) ---\n%s", spec.ID, spec.Runtime.Name, out)
	}
	vals := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			vals[k] = v
		}
	}
	vals["pids"] = hostPidsMax(int(c.Pid()))
	if res, err := c.Exec(ctx, harness.Exec{Args: []string{"ls", "/proc/1/fd"}}); err == nil {
		vals["fds"] = fmt.Sprint(len(strings.Fields(res.Stdout)))
	} else {
		vals["fds"] = "exec refused"
	}
	if spec.Runtime.Name == harness.RuntimeRunc {
		vals["route"] = "containerd-shim-runc-v2 -> runc"
		vals["profile"] = "(none)"
		return vals, nil
	}
	var rep struct {
		Profile, Runtime, Binary string
	}
	if data, err := os.ReadFile(s.D.ReportPath(s.NS, spec.ID)); err == nil && json.Unmarshal(data, &rep) == nil {
		vals["profile"] = rep.Profile
		oci := rep.Runtime
		if oci == "gvisor" {
			oci = "runsc"
		}
		vals["route"] = harness.ShimBinary + " -> " + oci
	}
	return vals, nil
}

// hostPidsMax reads pids.max of pid's pids cgroup (v1 controller, or v2).
func hostPidsMax(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			file = filepath.Join("/sys/fs/cgroup", parts[2], "pids.max")
		case strings.Contains(","+parts[1]+",", ",pids,"):
			file = filepath.Join("/sys/fs/cgroup/pids", parts[2], "pids.max")
		default:
			continue
		}
		if v, err := os.ReadFile(file); err == nil {
			return strings.TrimSpace(string(v))
		}
	}
	return "?"
}
