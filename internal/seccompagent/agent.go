// Package seccompagent is the shim's seccomp notify listener: runc hands
// it the notify fd of each process of a container (init and execs) whose
// filter reports its denials (hardening.NotifyDenials), and it answers
// every notification the way the filter would have (report mode: the
// filter's errno) or lets the syscall run (learn mode), recording which
// syscalls were denied, how often, when and by which executable.
//
// Only denied syscalls reach it: what the filter allows is decided in the
// kernel. A notification costs the caller a round trip to the shim
// (microseconds); a workload calling a denied syscall in a loop is slowed
// by its own calls, and the record stays bounded (maxDenials syscalls).
// If the shim dies, the kernel answers ENOSYS to the pending and later
// notifications: the syscalls stay denied and the container keeps running.
package seccompagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/internal/policy"
)

// Agent listens to one container's seccomp notifications.
type Agent struct {
	id     string
	plan   *decide.SeccompPlan
	ln     *net.UnixListener
	log    *logrus.Entry
	record *Record
	// stop is closed to stop serving; wake is the pipe that wakes the
	// serving goroutines' poll when it is.
	stopOnce     sync.Once
	wakeR, wakeW *os.File
	wg           sync.WaitGroup
}

// maxMessage bounds runc's message (the container's state, annotations
// included).
const maxMessage = 4 << 20

// Listen creates the plan's socket (its directory 0700, root's) and
// serves the notify fds runc sends to it for container id.
func Listen(id string, plan *decide.SeccompPlan, l *logrus.Entry) (*Agent, error) {
	if err := os.MkdirAll(filepath.Dir(plan.Socket), 0o700); err != nil {
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	if err := os.Remove(plan.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: plan.Socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	if err := os.Chmod(plan.Socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("seccomp listener: %w", err)
	}
	a := &Agent{id: id, plan: plan, ln: ln, log: l, record: newRecord(), wakeR: r, wakeW: w}
	a.wg.Add(1)
	go a.accept()
	return a, nil
}

// Record is the agent's record of denials.
func (a *Agent) Record() *Record { return a.record }

// Mode is the agent's mode.
func (a *Agent) Mode() policy.SeccompNotify { return a.plan.Mode }

// Close stops accepting and serving and removes the socket. Notify fds it
// held are closed: a process of the container calling a denied syscall
// after that gets ENOSYS from the kernel.
func (a *Agent) Close() {
	a.stopOnce.Do(func() {
		a.ln.Close() // removes the socket file
		a.wakeW.Close()
	})
	a.wg.Wait()
	a.wakeR.Close()
}

func (a *Agent) accept() {
	defer a.wg.Done()
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			return
		}
		fd, err := a.receive(c)
		c.Close()
		if err != nil {
			a.log.WithError(err).WithField("id", a.id).Warn("hardened: seccomp listener refused a connection")
			continue
		}
		a.wg.Add(1)
		go a.serve(fd)
	}
}

// receive reads runc's message: the container process state (JSON) with
// the notify fd. Only root (runc) may send, and only for this container.
func (a *Agent) receive(c *net.UnixConn) (int, error) {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if credErr != nil {
		return -1, credErr
	}
	if cred.Uid != 0 {
		return -1, fmt.Errorf("peer uid %d is not root", cred.Uid)
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return -1, err
	}
	if rerr != nil {
		return -1, rerr
	}
	fds, err := rights(oob[:oobn])
	if err != nil {
		return -1, err
	}
	// The rest of the message, if it did not fit one read.
	rest, err := io.ReadAll(io.LimitReader(c, maxMessage))
	if err != nil {
		closeAll(fds)
		return -1, err
	}
	msg := append(buf[:n], rest...)
	var st specs.ContainerProcessState
	if err := json.Unmarshal(msg, &st); err != nil {
		closeAll(fds)
		return -1, fmt.Errorf("runc's message: %w", err)
	}
	switch {
	case st.State.ID != a.id:
		closeAll(fds)
		return -1, fmt.Errorf("the notify fd is for container %q, not %q", st.State.ID, a.id)
	case len(fds) != 1 || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName:
		closeAll(fds)
		return -1, fmt.Errorf("expected one fd named %q, got %d fds named %v", specs.SeccompFdName, len(fds), st.Fds)
	}
	return fds[0], nil
}

func rights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		f, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeAll(fds)
			return nil, err
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// serve answers the notifications of one notify fd until every process
// using its filter is gone (POLLHUP) or the agent is closed.
func (a *Agent) serve(fd int) {
	defer a.wg.Done()
	defer unix.Close(fd)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(a.wakeR.Fd()), Events: unix.POLLIN}}
	for {
		pfd[0].Revents, pfd[1].Revents = 0, 0
		if _, err := unix.Poll(pfd, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			a.log.WithError(err).WithField("id", a.id).Warn("hardened: seccomp listener stopped")
			return
		}
		if pfd[1].Revents != 0 {
			return
		}
		if pfd[0].Revents&unix.POLLIN != 0 {
			a.answer(fd)
			continue
		}
		if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			return
		}
	}
}

// answer records one notification and answers it: the filter's errno
// (report), or the syscall runs (learn).
func (a *Agent) answer(fd int) {
	req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
	if err != nil {
		return // the caller is gone (ENOENT), or was interrupted
	}
	name, err := hardening.SyscallName(req.Data.Arch, int32(req.Data.Syscall))
	if err != nil {
		name = "#" + strconv.Itoa(int(req.Data.Syscall))
	}
	resp := &libseccomp.ScmpNotifResp{ID: req.ID}
	answer := "allowed"
	if a.plan.Mode == policy.SeccompNotifyLearn {
		resp.Flags = libseccomp.NotifRespFlagContinue
	} else {
		errno := a.plan.Notice.Answer(name)
		// libseccomp-golang negates it for the kernel.
		resp.Error = int32(errno)
		answer = unix.ErrnoName(syscall.Errno(errno))
	}
	exe := a.record.needsExe(name)
	var path string
	if exe {
		path, _ = os.Readlink("/proc/" + strconv.Itoa(int(req.Pid)) + "/exe")
	}
	// Recorded before the answer: once the caller goes on, its denial is
	// in the record. Taken back if the kernel no longer waits for this
	// answer (the call was interrupted and will be notified again).
	arch := req.Data.Arch.String()
	a.record.add(decide.Denial{
		Syscall: name, Number: int32(req.Data.Syscall), Arch: arch,
		Answer: answer, Executable: path,
	}, time.Now())
	if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), resp); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			a.record.retract(arch, name)
			return
		}
		a.log.WithError(err).WithFields(logrus.Fields{"id": a.id, "syscall": name}).Debug("hardened: seccomp answer failed")
	}
}
