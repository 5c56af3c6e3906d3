//go:build integration

package vm

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hardened-dev/hardened/integration/harness"
)

// Guest paths.
const (
	guestTools = "/tools" // the pinned tools (TOOLS_BIN)
	guestBins  = "/hd"    // the shim, its runsc wrapper, hardenctl
	guestRepo  = "/repo"  // go.mod (harness.RepoRoot) and the test binary
)

// buildPayload lays out the guest's root under root: busybox, the tools,
// the project's binaries (the shim with the test hook, as the host suite
// builds it), the integration test binary, apparmor_parser, the shared
// libraries of every dynamic binary, the kernel modules, /init.
func buildPayload(repo, tools, kernel, root string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "etc", "var/lib", "root", guestTools, guestBins, guestRepo + "/integration", "modules"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	var bins []string
	cp := func(src, dst string) error {
		bins = append(bins, filepath.Join(root, dst))
		return copyFile(src, filepath.Join(root, dst), 0o755)
	}
	if err := cp(harness.BusyboxPath, "/bin/busybox"); err != nil {
		return err
	}
	for _, t := range append(harness.RequiredTools, "crictl", "critest", "busybox-dynamic") {
		if _, err := os.Stat(filepath.Join(tools, t)); err == nil {
			if err := cp(filepath.Join(tools, t), filepath.Join(guestTools, t)); err != nil {
				return err
			}
		}
	}
	// What the CRI suite runs besides: iproute2's ip (busybox's has no
	// netns), bash for glibc's ldd, the CNI plugins.
	for _, c := range []string{"ip", "bash", "ldd"} {
		p, err := exec.LookPath(c)
		if err != nil {
			return fmt.Errorf("%w: %s not in PATH", harness.ErrUnavailable, c)
		}
		if err := cp(p, filepath.Join("/usr/bin", c)); err != nil {
			return err
		}
	}
	// ldd's #!/bin/bash (the guest's /bin is busybox's, not /usr/bin).
	if err := os.Symlink("/usr/bin/bash", filepath.Join(root, "bin/bash")); err != nil {
		return err
	}
	for _, plugin := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if err := cp(filepath.Join("/usr/lib/cni", plugin), filepath.Join("/usr/lib/cni", plugin)); err != nil {
			return fmt.Errorf("%w: CNI plugin %s: %v (Debian package containernetworking-plugins)", harness.ErrUnavailable, plugin, err)
		}
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return fmt.Errorf("%w: apparmor_parser missing (Debian package apparmor)", harness.ErrUnavailable)
	}
	if err := cp(parser, "/sbin/apparmor_parser"); err != nil {
		return err
	}
	builds := []struct{ pkg, out string }{
		{"./cmd/" + harness.ShimBinary, filepath.Join(guestBins, harness.ShimBinary)},
		{"./cmd/" + harness.WrapperBinary, filepath.Join(guestBins, harness.WrapperBinary)},
		{"./cmd/" + harness.CLIBinary, filepath.Join(guestBins, harness.CLIBinary)},
	}
	for _, b := range builds {
		args := []string{"build", "-o", filepath.Join(root, b.out)}
		if b.out == filepath.Join(guestBins, harness.ShimBinary) {
			args = append(args, "-tags", harness.TestHookTag)
		}
		if err := goCmd(repo, append(args, b.pkg)...); err != nil {
			return err
		}
		bins = append(bins, filepath.Join(root, b.out))
	}
	for _, pkg := range []string{"integration", "integration/cri"} {
		testBin := filepath.Join(root, guestRepo, pkg, filepath.Base(pkg)+".test")
		if err := goCmd(repo, "test", "-c", "-tags", "integration", "-o", testBin, "./"+pkg); err != nil {
			return err
		}
		bins = append(bins, testBin)
	}
	// The CRI suite's testbin, static; its installer and drop-in.
	if err := goCmdEnv(repo, []string{"CGO_ENABLED=0"}, "build", "-trimpath", "-o", filepath.Join(root, guestRepo, "testbin"), "./integration/cri/testdata/testbin"); err != nil {
		return err
	}
	for _, d := range []string{"deploy/installer", "deploy/base/node"} {
		if err := copyTree(filepath.Join(repo, d), filepath.Join(root, guestRepo, d)); err != nil {
			return err
		}
	}
	if err := os.Symlink("/run", filepath.Join(root, "var/run")); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(repo, "go.mod"), filepath.Join(root, guestRepo, "go.mod"), 0o644); err != nil {
		return err
	}
	if err := copyLibraries(root, bins); err != nil {
		return err
	}
	mods, err := os.ReadDir(filepath.Join(kernel, "modules"))
	if err != nil {
		return err
	}
	for _, m := range mods {
		if err := copyFile(filepath.Join(kernel, "modules", m.Name()), filepath.Join(root, "modules", m.Name()), 0o644); err != nil {
			return err
		}
	}
	for name, content := range map[string]string{
		"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"/etc/group":  "root:x:0:\n",
		"/etc/hosts":  "127.0.0.1 localhost vm\n",
		// containerd's CRI copies it into a pod without a DNS config.
		"/etc/resolv.conf": "nameserver 127.0.0.1\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(root, "init"), []byte(initScript()), 0o755)
}

// initScript is the guest's /init (busybox sh). First stage, on the
// initramfs: copy it into a tmpfs and switch_root there. Second stage:
// the kernel interfaces a node has, then the tests on the console.
func initScript() string {
	return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=` + guestTools + `:` + guestBins + `:/sbin:/usr/sbin:/usr/bin:/bin
if [ ! -e /.stage2 ]; then
	mount -t proc proc /proc
	mkdir -p /newroot
	mount -t tmpfs -o size=85% tmpfs /newroot
	for d in /*; do
		case "$d" in /proc|/sys|/dev|/newroot) mkdir -p /newroot$d ;; *) cp -a "$d" /newroot/ ;; esac
	done
	touch /newroot/.stage2
	umount /proc
	exec switch_root /newroot /init
fi
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mount -t securityfs securityfs /sys/kernel/security
mount --make-rshared /
for c in cpuset cpu io memory hugetlb pids rdma misc; do
	echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
done
for m in $(cat /modules/order); do insmod /modules/$m.ko; done
ip link set lo up
hostname vm
echo "hardened-vm: kernel $(uname -r), cgroup controllers: $(cat /sys/fs/cgroup/cgroup.controllers), apparmor: $(cat /sys/module/apparmor/parameters/enabled)"
export HARDENED_REQUIRE_INTEGRATION=1 HARDENED_IN_VM=1 TOOLS_BIN=` + guestTools + ` HARDENED_SHIM_BINARY=` + guestBins + `/` + harness.ShimBinary + ` HARDENED_CRI_TESTBIN=` + guestRepo + `/testbin
rc=0
cd ` + guestRepo + `/integration && ./integration.test -test.v -test.count=1 -test.timeout ` + guestTimeout.String() + ` -test.run '` + guestRun + `' 2>&1 || rc=1
cd ` + guestRepo + `/integration/cri && ./cri.test -test.v -test.count=1 -test.timeout ` + guestTimeout.String() + ` -test.run '` + guestRunCRI + `' 2>&1 || rc=1
echo "hardened-vm: exit $rc"
sync
poweroff -f
`
}

// copyLibraries copies the shared libraries (and the dynamic loader) the
// dynamic ELF binaries among bins need, as ldd resolves them on this host,
// to the same paths under root.
func copyLibraries(root string, bins []string) error {
	seen := map[string]bool{}
	for _, b := range bins {
		f, err := elf.Open(b)
		if err != nil {
			continue // a script
		}
		dynamic := false
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				dynamic = true
			}
		}
		f.Close()
		if !dynamic {
			continue
		}
		out, err := exec.Command("ldd", b).Output()
		if err != nil {
			return fmt.Errorf("ldd %s: %w", b, err)
		}
		for _, line := range strings.Split(string(out), "\n") {
			var lib string
			if _, after, ok := strings.Cut(line, "=> "); ok {
				lib, _, _ = strings.Cut(strings.TrimSpace(after), " ")
			} else if fields := strings.Fields(line); len(fields) > 0 && strings.HasPrefix(fields[0], "/") {
				lib = fields[0]
			}
			if lib == "" || seen[lib] {
				continue
			}
			seen[lib] = true
			real, err := filepath.EvalSymlinks(lib)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(lib)), 0o755); err != nil {
				return err
			}
			if err := copyFile(real, filepath.Join(root, lib), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

// copyTree copies the regular files and directories under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(p, filepath.Join(dst, rel), info.Mode().Perm())
	})
}

func goCmd(repo string, args ...string) error {
	return goCmdEnv(repo, nil, args...)
}

func goCmdEnv(repo string, env []string, args ...string) error {
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	} else if _, err := os.Stat("/usr/local/go/bin/go"); err == nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goBin, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return nil
}
