// Command testbin is the one static program (CGO_ENABLED=0) the CRI
// integration tests put into the images they build locally, run under the
// name of what it stands in for:
//
//	pause  the pod sandbox's init: sleeps until SIGTERM/SIGINT, reaps children
//	nginx  stands in for e2e-test-images/nginx: re-executes itself as
//	       "nginx: master process ...", writes /var/run/nginx.pid, serves :80
//	nnp    e2e-test-images/nonewprivs (installed setuid root): prints its euid
//	ipcs   "ipcs -m" from /proc/sysvipc/shm (Debian's busybox has no ipcs)
//	pgrep  "pgrep PATTERN" over /proc/*/comm (nor pgrep)
package main

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	name := filepath.Base(os.Args[0])
	switch {
	case name == "pause":
		pause()
	case strings.HasPrefix(name, "nginx"):
		nginx()
	case name == "nnp":
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
	case name == "ipcs":
		os.Exit(ipcs(os.Args[1:]))
	case name == "pgrep":
		os.Exit(pgrep(os.Args[1:]))
	default:
		fmt.Fprintf(os.Stderr, "testbin: unknown name %q (pause, nginx, nnp, ipcs, pgrep)\n", name)
		os.Exit(2)
	}
}

// pause is PID 1 of a pod: it must reap orphans (a shared PID namespace
// reparents them to it) and exit on SIGTERM/SIGINT.
func pause() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			fmt.Fprintf(os.Stderr, "pause: shutting down, got signal %v\n", s)
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

const nginxMaster = "nginx: master process nginx -g daemon off;"

// nginx behaves, for critest, like the real one: "pidof nginx" finds it,
// /proc/PID/cmdline says "master process", the pid file exists, :80 answers.
func nginx() {
	if os.Args[0] != nginxMaster {
		exe, err := os.Executable()
		if err == nil {
			err = syscall.Exec(exe, []string{nginxMaster}, os.Environ())
		}
		fmt.Fprintf(os.Stderr, "nginx: re-exec: %v\n", err)
		os.Exit(1)
	}
	if err := os.WriteFile("/var/run/nginx.pid", []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "nginx: %v\n", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		<-sigs
		os.Exit(0)
	}()
	fmt.Fprintln(os.Stderr, "nginx: listening on :80")
	err := http.ListenAndServe(":80", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "<h1>Welcome to nginx!</h1>")
	}))
	fmt.Fprintf(os.Stderr, "nginx: %v\n", err)
	os.Exit(1)
}

func ipcs(args []string) int {
	if len(args) != 1 || args[0] != "-m" {
		fmt.Fprintln(os.Stderr, "usage: ipcs -m")
		return 2
	}
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		fmt.Fprintf(os.Stderr, "ipcs: %v\n", err)
		return 1
	}
	defer f.Close()
	fmt.Printf("\n------ Shared Memory Segments --------\n%-10s %-10s %-10s %-10s %-10s %-10s\n",
		"key", "shmid", "owner", "perms", "bytes", "nattch")
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// key shmid perms size cpid lpid nattch uid gid ...
		fl := strings.Fields(sc.Text())
		if len(fl) < 8 {
			continue
		}
		key, _ := strconv.ParseInt(fl[0], 10, 64)
		fmt.Printf("0x%08x %-10s %-10s %-10s %-10s %-10s\n", uint32(key), fl[1], fl[7], fl[2], fl[3], fl[6])
	}
	fmt.Println()
	return 0
}

func pgrep(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: pgrep PATTERN")
		return 2
	}
	re, err := regexp.Compile(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgrep: %v\n", err)
		return 2
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	found := 1
	for _, d := range dirs {
		pid := filepath.Base(d)
		if pid == strconv.Itoa(os.Getpid()) {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err == nil && re.MatchString(strings.TrimSpace(string(comm))) {
			fmt.Println(pid)
			found = 0
		}
	}
	return found
}
