package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailsetup/server/listenfd"
)

// openSockets are the listening sockets this process opened or took, by
// listen.* key, for a graceful upgrade to hand over.
type openSockets struct {
	mu    sync.Mutex
	names []string
	files []func() (*os.File, error)
}

func (o *openSockets) add(name string, file func() (*os.File, error)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.names = append(o.names, name)
	o.files = append(o.files, file)
}

// recordListener remembers a stream listener for Upgrade.
func (s *Server) recordListener(name string, ln net.Listener) {
	if tl, ok := ln.(*net.TCPListener); ok {
		s.open.add(name, tl.File)
	}
}

// recordPacketConn remembers a datagram socket for Upgrade.
func (s *Server) recordPacketConn(name string, pc net.PacketConn) {
	if uc, ok := pc.(*net.UDPConn); ok {
		s.open.add(name, uc.File)
	}
}

// Upgrade starts the executable at exe (the new binary, installed over
// the old one) with this process's arguments and its listening sockets
// (LISTEN_FDS, LISTEN_FDNAMES by listen.* key, and
// listenfd.UpgradeEnv naming this process), its output going where this
// one's goes. The caller then shuts this process down: the new one
// serves on the same sockets meanwhile (the mail listeners once this one
// has released the data directory), so no connection is refused. It
// returns the new process's pid.
func (s *Server) Upgrade(exe string, args []string) (int, error) {
	s.open.mu.Lock()
	defer s.open.mu.Unlock()
	if len(s.open.names) == 0 {
		return 0, errors.New("upgrade: no listening socket to hand over")
	}
	files := make([]*os.File, 0, len(s.open.files))
	defer func() {
		for _, f := range files {
			f.Close() // the child has its own copies
		}
	}()
	for i, file := range s.open.files {
		f, err := file()
		if err != nil {
			return 0, fmt.Errorf("upgrade: the %s socket: %w", s.open.names[i], err)
		}
		files = append(files, f)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(),
		"LISTEN_FDS="+strconv.Itoa(len(files)),
		"LISTEN_FDNAMES="+strings.Join(s.open.names, ":"),
		listenfd.UpgradeEnv+"="+strconv.Itoa(os.Getpid()))
	cmd.ExtraFiles = files
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("upgrade: starting %s: %w", exe, err)
	}
	pid := cmd.Process.Pid
	// From now on the new process accepts; what this one accepted is
	// served for UpgradeDrain before the shutdown.
	s.stopOnce.Do(func() { close(s.stopAccepting) })
	// Reap it if it exits while this process still runs (a new binary
	// that fails at once); its exit is logged.
	go func() {
		err := cmd.Wait()
		s.log.Warn("upgrade: the new process exited", "pid", pid, "err", err)
	}()
	return pid, nil
}

// UpgradeDrain is how long the old process of an upgrade serves what it
// accepted before it shuts down (closing idle sessions).
const UpgradeDrain = 2 * time.Second

// upgradeLockWait is how long the new process of an upgrade waits for the
// old one to release the data directory: its shutdown grace and a margin.
const upgradeLockWait = ShutdownGrace + 20*time.Second

// lockDataWaiting takes the data directory's lock; when this process is
// the new one of an upgrade it waits for the old one to release it.
func (s *Server) lockDataWaiting() (func(), error) {
	deadline := time.Now().Add(upgradeLockWait)
	for {
		unlock, err := lockData(s.cfg)
		if err == nil || !errors.Is(err, errLocked) || !s.sockets.FromParent() || time.Now().After(deadline) {
			return unlock, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
