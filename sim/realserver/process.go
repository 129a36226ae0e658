package realserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"xmppneg/policy/domain"
)

// process is a running server process whose output goes through a pipe
// to a log file, line by line, so that a launcher learns what the server
// says about itself as it says it: that it listens, that a port is taken,
// that it is ready. Nothing is polled.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited and its output is read
	err  error

	out *watch
}

// started counts the server processes started (Starts).
var started atomic.Int64

// Starts returns how many server processes this program has started:
// what a sweep's speed depends on (one ejabberd serves many settings).
func Starts() int64 { return started.Load() }

// signal is a line a launcher waits for: the server saying it is ready,
// or saying why it cannot be.
type signal struct {
	name string
	re   *regexp.Regexp
	// fatal marks a line that means the start failed, whatever comes
	// after it.
	fatal bool
}

// watch scans a process's output for signals.
type watch struct {
	// settled is set once the server has started: its lines are then
	// only written to its log (a sweep logs thousands of them).
	settled atomic.Bool

	mu      sync.Mutex
	signals []signal
	seen    map[string]string // signal name → the line that matched
	changed chan struct{}     // closed and replaced at every match
}

func newWatch(signals []signal) *watch {
	return &watch{signals: signals, seen: map[string]string{}, changed: make(chan struct{})}
}

// line matches one line of output against the signals.
func (w *watch) line(l string) {
	l = strings.TrimRight(l, "\r\n")
	w.mu.Lock()
	defer w.mu.Unlock()
	hit := false
	for _, s := range w.signals {
		if _, ok := w.seen[s.name]; !ok && s.re.MatchString(l) {
			w.seen[s.name] = strings.TrimSpace(l)
			hit = true
		}
	}
	if hit {
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// state returns what has been seen: whether every named signal has, the
// first fatal line if any, and the channel that is closed at the next
// match.
func (w *watch) state(names []string) (all bool, fatal string, changed <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	all = true
	for _, n := range names {
		if _, ok := w.seen[n]; !ok {
			all = false
		}
	}
	for _, s := range w.signals {
		if l, ok := w.seen[s.name]; ok && s.fatal {
			fatal = l
			break
		}
	}
	return all, fatal, w.changed
}

// errPortTaken is wrapped by start errors caused by a port another
// program took between its choice and the server's bind: such a start
// is tried again on other ports.
var errPortTaken = errors.New("port already in use")

// startError is a start that failed with what the server said.
type startError struct {
	what, line string
	taken      bool
}

func (e *startError) Error() string {
	if e.line == "" {
		return e.what
	}
	return fmt.Sprintf("%s: %s", e.what, e.line)
}

func (e *startError) Unwrap() error {
	if e.taken {
		return errPortTaken
	}
	return nil
}

// portTaken is the signal every server's "address already in use"
// message matches.
var portTaken = signal{name: "port-taken", re: regexp.MustCompile(`(?i)address already in use|eaddrinuse|already in use|failed to open server port|failed to listen`), fatal: true}

// startProcess starts name with args in dir, its standard output and
// error written to dir/logName and scanned for signals.
func startProcess(dir, logName string, env []string, stdin *os.File, signals []signal, name string, args ...string) (*process, error) {
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	log, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		log.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own process group, so that a stop reaches its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pw.Close()
	started.Add(1)
	p := &process{cmd: cmd, done: make(chan struct{}), out: newWatch(append(signals, portTaken))}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		p.out.copy(pr, log)
		pr.Close()
		log.Close()
	}()
	go func() {
		p.err = cmd.Wait()
		<-copied
		close(p.done)
	}()
	return p, nil
}

// copy writes r to log line by line, matching each line.
func (w *watch) copy(r io.Reader, log io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		l, err := br.ReadString('\n')
		if l != "" {
			_, _ = io.WriteString(log, l)
			if w.settled.Load() {
				_, _ = br.WriteTo(log)
				return
			}
			// A line is matched on its first 4 KiB: what servers say
			// about themselves fits, and a huge line costs no more.
			w.line(l[:min(len(l), 4096)])
		}
		if err != nil {
			return
		}
	}
}

// settle ends the matching of lines: the server has started.
func (p *process) settle() { p.out.settled.Store(true) }

// await waits until the process has said every named signal, says
// something fatal, exits, or within passes. what names the server in
// errors; logOf returns its whole log for them.
func (p *process) await(what string, within time.Duration, names ...string) error {
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		all, fatal, changed := p.out.state(names)
		switch {
		case fatal != "":
			return &startError{what: what + " could not start", line: fatal, taken: portTaken.re.MatchString(fatal)}
		case all:
			return nil
		}
		select {
		case <-changed:
		case <-p.done:
			// The last lines may have matched on the way out.
			if all, fatal, _ := p.out.state(names); fatal == "" && all {
				return nil
			} else if fatal != "" {
				return &startError{what: what + " could not start", line: fatal, taken: portTaken.re.MatchString(fatal)}
			}
			return &startError{what: fmt.Sprintf("%s exited while starting (%v)", what, p.err)}
		case <-t.C:
			return &startError{what: fmt.Sprintf("%s did not say it was ready within %s (waiting for: %s)", what, within, strings.Join(p.missing(names), ", "))}
		}
	}
}

func (p *process) missing(names []string) []string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	var out []string
	for _, n := range names {
		if _, ok := p.out.seen[n]; !ok {
			out = append(out, n)
		}
	}
	return out
}

// stop sends SIGTERM, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("did not stop within %s of SIGTERM; killed", grace)
}

// notifySocket listens where a server that speaks systemd's notification
// protocol (sd_notify: ejabberd) says READY=1, and feeds what it says to
// the process's watch as lines "sd_notify: READY=1".
type notifySocket struct {
	path string
	conn *net.UnixConn
	done chan struct{}
}

func listenNotify(path string) (*notifySocket, error) {
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notification socket: %w", err)
	}
	return &notifySocket{path: path, conn: c, done: make(chan struct{})}, nil
}

// feed passes every datagram to w until the socket is closed.
func (n *notifySocket) feed(w *watch) {
	defer close(n.done)
	buf := make([]byte, 4096)
	for {
		k, err := n.conn.Read(buf)
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(buf[:k]), "\n") {
			if l != "" {
				w.line("sd_notify: " + l)
			}
		}
	}
}

func (n *notifySocket) close() {
	n.conn.Close()
	<-n.done
}

// checkDomain refuses a domain that is not one before a server's files,
// named after it, are written (see package domain).
func checkDomain(d string) error {
	if err := domain.Check(d); err != nil {
		return fmt.Errorf("realserver: %w", err)
	}
	return nil
}

// seenLine returns the line that matched the named signal, or "".
func (p *process) seenLine(name string) string {
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	return p.out.seen[name]
}
