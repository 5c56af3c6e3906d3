package hardening

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// baseSpec is a small valid spec every rule test starts from.
func baseSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: 1000, GID: 1000},
			Args: []string{"/bin/app"},
			Env:  []string{"PATH=/usr/bin:/bin"},
			Cwd:  "/",
		},
		Root: &specs.Root{Path: "rootfs"},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.MountNamespace},
			},
		},
	}
}

// refusal returns the *RefusalError in err, failing the test if there is
// none.
func refusal(t *testing.T, err error) *RefusalError {
	t.Helper()
	var re *RefusalError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) {
		t.Fatalf("expected a refusal, got %v", err)
	}
	return re
}

// secret is a marker put in environment values: it must never appear in an
// error.
const secret = "s3cr3t-token"

func TestFDHygiene(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		field  string // "" : accepted
	}{
		{"cwd root", func(s *specs.Spec) {}, ""},
		{"cwd plain", func(s *specs.Spec) { s.Process.Cwd = "/app/data" }, ""},
		{"cwd /proc itself", func(s *specs.Spec) { s.Process.Cwd = "/proc" }, ""},
		{"cwd /proc/self/status-like", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/net" }, ""},
		{"cwd similar name", func(s *specs.Spec) { s.Process.Cwd = "/procfs/self/fd/3" }, ""},
		{"cwd relative", func(s *specs.Spec) { s.Process.Cwd = "app" }, "process.cwd"},
		{"cwd empty", func(s *specs.Spec) { s.Process.Cwd = "" }, "process.cwd"},
		{"cwd dotdot", func(s *specs.Spec) { s.Process.Cwd = "/app/../../etc" }, "process.cwd"},
		{"CVE-2024-21626 cwd", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/fd/7" }, "process.cwd"},
		{"cwd fd dir", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/fd" }, "process.cwd"},
		{"cwd unclean", func(s *specs.Spec) { s.Process.Cwd = "//proc//self/./fd/8/" }, "process.cwd"},
		{"cwd pid cwd", func(s *specs.Spec) { s.Process.Cwd = "/proc/1/cwd" }, "process.cwd"},
		{"cwd pid root", func(s *specs.Spec) { s.Process.Cwd = "/proc/4242/root/etc" }, "process.cwd"},
		{"cwd exe", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/exe" }, "process.cwd"},
		{"cwd map_files", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/map_files/400000-401000" }, "process.cwd"},
		{"cwd task fd", func(s *specs.Spec) { s.Process.Cwd = "/proc/self/task/12/fd/3" }, "process.cwd"},
		{"cwd thread-self", func(s *specs.Spec) { s.Process.Cwd = "/proc/thread-self" }, "process.cwd"},
		{"cwd thread-self anything", func(s *specs.Spec) { s.Process.Cwd = "/proc/thread-self/attr" }, "process.cwd"},
		{"cwd /dev/fd alias", func(s *specs.Spec) { s.Process.Cwd = "/dev/fd/7" }, "process.cwd"},
		{"cwd /dev/stdin alias", func(s *specs.Spec) { s.Process.Cwd = "/dev/stdin" }, "process.cwd"},
		{"cwd procfs mounted elsewhere", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/altproc", Type: "proc", Source: "proc"})
			s.Process.Cwd = "/altproc/self/fd/7"
		}, "process.cwd"},
		{"cwd host proc bound elsewhere", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostproc", Type: "bind", Source: "/proc", Options: []string{"rbind"}})
			s.Process.Cwd = "/hostproc/1/root"
		}, "process.cwd"},

		{"args[0] name", func(s *specs.Spec) { s.Process.Args = []string{"nginx"} }, ""},
		{"args[0] relative path", func(s *specs.Spec) { s.Process.Args = []string{"./run.sh"} }, ""},
		{"args[0] none", func(s *specs.Spec) { s.Process.Args = nil }, ""},
		{"args[0] through fd", func(s *specs.Spec) { s.Process.Args = []string{"/proc/self/fd/7/../../../bin/sh"} }, "process.args[0]"},
		{"args[0] relative through cwd", func(s *specs.Spec) {
			s.Process.Cwd = "/proc"
			s.Process.Args = []string{"self/fd/7/bin/sh"}
		}, "process.args[0]"},
		{"args[0] dotdot", func(s *specs.Spec) { s.Process.Args = []string{"/usr/bin/../bin/sh"} }, "process.args[0]"},
		{"args only args[0] checked", func(s *specs.Spec) { s.Process.Args = []string{"cat", "/proc/self/fd/0"} }, ""},

		{"LD_PRELOAD ok", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "LD_PRELOAD=libjemalloc.so /usr/lib/x.so") }, ""},
		{"LD_PRELOAD fd", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "LD_PRELOAD=/proc/self/fd/4/"+secret) }, "process.env"},
		{"LD_LIBRARY_PATH element", func(s *specs.Spec) {
			s.Process.Env = append(s.Process.Env, "LD_LIBRARY_PATH=/lib:/proc/1/root/"+secret)
		}, "process.env"},
		{"LD_LIBRARY_PATH semicolon", func(s *specs.Spec) {
			s.Process.Env = append(s.Process.Env, "LD_LIBRARY_PATH=/lib;/usr/../"+secret)
		}, "process.env"},
		{"LD_AUDIT", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "LD_AUDIT=/dev/fd/9") }, "process.env"},
		{"PATH through fd", func(s *specs.Spec) { s.Process.Env = []string{"PATH=/usr/bin:/proc/self/fd/7/usr/bin"} }, "process.env"},
		{"other variables not checked", func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "SECRET=/proc/self/fd/3", "NOEQUALS") }, ""},

		{"mount dest relative", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "data", Type: "tmpfs", Source: "tmpfs"})
		}, "mounts[1].destination"},
		{"mount dest fd", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/proc/self/fd/3", Type: "tmpfs", Source: "tmpfs"})
		}, "mounts[1].destination"},
		{"bind source fd", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/proc/self/fd/5", Options: []string{"rbind"}})
		}, "mounts[1].source"},
		{"bind by option, source pid root", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "none", Source: "/proc/1/root", Options: []string{"bind"}})
		}, "mounts[1].source"},
		{"bind source dotdot", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/var/lib/../../etc", Options: []string{"rbind"}})
		}, "mounts[1].source"},
		{"bind source relative", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "data", Options: []string{"rbind"}})
		}, "mounts[1].source"},
		{"bind source ok", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}})
		}, ""},
		{"device source absolute", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "ext4", Source: "/dev/fd/0"})
		}, "mounts[1].source"},
		{"fs names are not paths", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup"},
				specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue"})
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			tt.mutate(s)
			cfg := cfgFor(t, "baseline")
			cfg.HostPaths = []profiles.HostPathPrefix{{Prefix: "/srv/"}}
			_, _, err := Harden(s, cfg)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			re := refusal(t, err)
			if re.Rule != RuleFDHygiene || re.Field != tt.field {
				t.Errorf("got rule %q field %q (%v), want fdhygiene %q", re.Rule, re.Field, err, tt.field)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error leaks an environment value: %v", err)
			}
			// The same process exec'd into a container is refused the same way.
			if strings.HasPrefix(tt.field, "process.") {
				_, _, err := HardenExec(s.Process, s, cfgFor(t, "baseline"))
				if re := refusal(t, err); re.Rule != RuleFDHygiene || re.Field != tt.field {
					t.Errorf("exec: got %v, want fdhygiene %q", err, tt.field)
				}
			}
		})
	}
}
