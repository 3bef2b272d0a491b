package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Postgres is a private PostgreSQL server a test started: Debian's
// initdb and postgres in a temporary data directory, listening on
// 127.0.0.1 at a free port only (no unix socket), with one role
// "mailsetup" whose password is in PasswordFile (scram-sha-256).
type Postgres struct {
	// URL reaches the database "mailsetup" without the password.
	URL string
	// PasswordFile holds the role's password.
	PasswordFile string
	Port         int

	t    testing.TB
	bin  string
	dir  string
	cred *syscall.Credential
	cmd  *exec.Cmd
	done chan struct{}
}

// postgresBin finds the directory of Debian's PostgreSQL programs: on
// PATH, else the newest /usr/lib/postgresql/N/bin (Debian keeps them off
// PATH).
func postgresBin(t testing.TB) string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // postgres, psql and pg_isready are beside the real initdb
		}
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) > 0 {
		return filepath.Dir(dirs[len(dirs)-1])
	}
	return filepath.Dir(Tool(t, "initdb", "postgresql"))
}

// StartPostgres starts a private PostgreSQL for the test and stops it
// (by its PID) when the test ends. Run as root, the server runs as the
// user "nobody", since PostgreSQL refuses to run as root.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p := &Postgres{t: t, bin: postgresBin(t)}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("PostgreSQL does not run as root and there is no user nobody: %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	p.PasswordFile = filepath.Join(dir, "password")
	if err := os.WriteFile(p.PasswordFile, []byte("pg-test-"+strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(p.PasswordFile, uid, gid)
	data := filepath.Join(dir, "data")
	p.run("initdb", "-D", data, "-U", "mailsetup", "--auth=scram-sha-256", "--pwfile="+p.PasswordFile, "-E", "UTF8", "--no-sync")
	p.Port = freePort(t)
	p.URL = fmt.Sprintf("postgres://mailsetup@127.0.0.1:%d/mailsetup?sslmode=disable", p.Port)
	p.Start()
	t.Cleanup(p.Stop)
	createdb := exec.Command(filepath.Join(p.bin, "psql"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "mailsetup", "-d", "postgres", "-c", "CREATE DATABASE mailsetup")
	pw, _ := os.ReadFile(p.PasswordFile)
	createdb.Env = append(os.Environ(), "PGPASSWORD="+strings.TrimSpace(string(pw)))
	if out, err := createdb.CombinedOutput(); err != nil {
		t.Fatalf("create database: %v\n%s", err, out)
	}
	return p
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (p *Postgres) run(prog string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, prog), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	cmd.Dir = p.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", prog, err, out)
	}
}

// Start starts the server (again, after Stop) and waits until it
// accepts connections, at most 30 seconds.
func (p *Postgres) Start() {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", filepath.Join(p.dir, "data"),
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(p.Port),
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=50")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	log, err := os.OpenFile(filepath.Join(p.dir, "log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	log.Close()
	p.cmd, p.done = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.Port), time.Second)
		if err == nil {
			c.Close()
			// The port opens before recovery ends; pg_isready says when
			// connections are accepted.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = exec.CommandContext(ctx, filepath.Join(p.bin, "pg_isready"), "-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", "mailsetup").Run()
			cancel()
			if err == nil {
				return
			}
		}
		select {
		case <-p.done:
			out, _ := os.ReadFile(filepath.Join(p.dir, "log"))
			p.t.Fatalf("postgres exited at start:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(filepath.Join(p.dir, "log"))
			p.t.Fatalf("postgres did not accept connections within 30s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server by its PID (fast shutdown: clients are
// disconnected) and waits for it, at most 30 seconds, then kills it.
func (p *Postgres) Stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
	p.cmd = nil
}
