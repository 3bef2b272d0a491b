// Package listenfd takes the listening sockets a service manager (systemd
// socket activation, sd_listen_fds(3)) or the previous process of a
// graceful upgrade hands over: LISTEN_FDS descriptors from 3 on, named by
// LISTEN_FDNAMES, for this process when LISTEN_PID is its pid. The names
// are the config's listen.* keys (http, https, smtp, imaps, dns, ...), so
// a socket unit with FileDescriptorName=imaps serves listen.imaps.
//
// Imports: the standard library only.
package listenfd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// UpgradeEnv names, in place of LISTEN_PID, the parent that handed its
// sockets to this process in a graceful upgrade: the parent cannot know
// its child's pid before it starts, so the child accepts LISTEN_FDS when
// this is its parent's pid.
const UpgradeEnv = "MAILSETUP_LISTEN_PARENT"

// firstFD is SD_LISTEN_FDS_START.
const firstFD = 3

// Set is the sockets handed to this process, by name.
type Set struct {
	byName map[string][]*os.File
	parent bool // handed over by the previous process of an upgrade
}

// FromParent reports whether the sockets came from the previous process
// of an upgrade (which may still be shutting down).
func (s *Set) FromParent() bool { return s != nil && s.parent }

// FromEnv takes the sockets of the environment and removes the variables
// (a child process must not take them again). No variables: an empty
// Set. A LISTEN_FDS for another process is ignored, as sd_listen_fds does.
func FromEnv() (*Set, error) {
	s := &Set{byName: map[string][]*os.File{}}
	nfds, pid, names, parent := os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDNAMES"), os.Getenv(UpgradeEnv)
	for _, v := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", UpgradeEnv} {
		_ = os.Unsetenv(v)
	}
	if nfds == "" {
		return s, nil
	}
	switch {
	case pid != "":
		if p, err := strconv.Atoi(pid); err != nil || p != os.Getpid() {
			return s, nil
		}
	case parent != "":
		if p, err := strconv.Atoi(parent); err != nil || p != os.Getppid() {
			return nil, fmt.Errorf("%s = %q is not this process's parent (%d): the sockets were not handed to it", UpgradeEnv, parent, os.Getppid())
		}
		s.parent = true
	default:
		return s, nil
	}
	n, err := strconv.Atoi(nfds)
	if err != nil || n < 0 || n > 1024 {
		return nil, fmt.Errorf("LISTEN_FDS = %q: want a number of descriptors (0 to 1024)", nfds)
	}
	var list []string
	if names != "" {
		list = strings.Split(names, ":")
	}
	if len(list) != n {
		return nil, fmt.Errorf("LISTEN_FDNAMES = %q names %d sockets, LISTEN_FDS = %d: name every socket with a listen.* key (FileDescriptorName= in the socket unit)", names, len(list), n)
	}
	for i, name := range list {
		fd := firstFD + i
		markCloseOnExec(fd)
		s.byName[name] = append(s.byName[name], os.NewFile(uintptr(fd), name))
	}
	return s, nil
}

// Names lists the names of the sockets not yet taken.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	var out []string
	for name, fs := range s.byName {
		if len(fs) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Listener takes the stream socket named name; ok is false when there is
// none.
func (s *Set) Listener(name string) (ln net.Listener, ok bool, err error) {
	f := s.take(name, true)
	if f == nil {
		return nil, false, nil
	}
	defer f.Close() // net.FileListener dups it
	ln, err = net.FileListener(f)
	if err != nil {
		return nil, true, fmt.Errorf("the socket named %q handed to this process: %w", name, err)
	}
	return ln, true, nil
}

// PacketConn takes the datagram socket named name; ok is false when
// there is none.
func (s *Set) PacketConn(name string) (pc net.PacketConn, ok bool, err error) {
	f := s.take(name, false)
	if f == nil {
		return nil, false, nil
	}
	defer f.Close()
	pc, err = net.FilePacketConn(f)
	if err != nil {
		return nil, true, fmt.Errorf("the datagram socket named %q handed to this process: %w", name, err)
	}
	return pc, true, nil
}

// take removes and returns the first socket named name of the kind
// (stream or not).
func (s *Set) take(name string, stream bool) *os.File {
	if s == nil {
		return nil
	}
	fs := s.byName[name]
	for i, f := range fs {
		if isStream(f) == stream {
			s.byName[name] = slices.Delete(fs, i, i+1)
			return f
		}
	}
	return nil
}

// ErrUnused reports sockets handed over that no listener took.
var ErrUnused = errors.New("sockets handed to this process that no listen.* key takes")

// CloseUnused closes the sockets not taken and reports their names.
func (s *Set) CloseUnused() error {
	names := s.Names()
	if s != nil {
		for _, fs := range s.byName {
			for _, f := range fs {
				f.Close()
			}
		}
		clear(s.byName)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %s (set listen.<name> for each, or remove the socket unit)", ErrUnused, strings.Join(names, ", "))
	}
	return nil
}
