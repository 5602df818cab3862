package failover

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one run of the manager binary.
type proc struct {
	slot, gen int
	pid       int
	cmd       *exec.Cmd
	logPath   string
	started   time.Time
	done      chan struct{}

	mu      sync.Mutex
	exitErr error
	exited  time.Time
	frozen  bool
	signals []sigEvent
}

func (p *proc) String() string { return fmt.Sprintf("manager %d.%d (pid %d)", p.slot, p.gen, p.pid) }

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func (p *proc) isFrozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen
}

func (p *proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch sig {
	case syscall.SIGSTOP:
		p.frozen = true
	case syscall.SIGCONT:
		p.frozen = false
	}
	p.signals = append(p.signals, sigEvent{time.Now(), sig})
	return syscall.Kill(p.pid, sig)
}

type sigEvent struct {
	at  time.Time
	sig syscall.Signal
}

// history lists the process's start, signals and exit.
func (p *proc) history() []sigEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sigEvent(nil), p.signals...)
}

// waitStopped polls until every thread of the process is stopped (state
// T in /proc/<pid>/task/*/stat): kill(SIGSTOP) returns before the threads
// have stopped, and a thread can still act for a moment.
func (p *proc) waitStopped(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.pid))
		if err != nil {
			return err
		}
		running := ""
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", p.pid, t.Name()))
			if err != nil {
				continue // the thread is gone
			}
			s := string(b)
			i := strings.LastIndexByte(s, ')')
			if i < 0 || i+2 >= len(s) {
				continue
			}
			if state := s[i+2]; state != 'T' && state != 't' && state != 'Z' && state != 'X' {
				running = fmt.Sprintf("thread %s in state %c", t.Name(), state)
				break
			}
		}
		if running == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not stopped after %s: %s", p, timeout, running)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// exit returns how the process ended (after done is closed).
func (p *proc) exit() (time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited, p.exitErr
}

// logSize is the current size of the process's log, to read what it wrote
// from then on.
func (p *proc) logSize() int64 {
	fi, err := os.Stat(p.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logFrom returns the log lines written after offset.
func (p *proc) logFrom(offset int64) []string {
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < offset {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// pool keeps `replicas` managers running: a process that exits (killed, or
// deposed and exiting) is started again as a standby.
type pool struct {
	mu       sync.Mutex
	procs    []*proc
	stopping bool
	// held, while not nil, keeps the supervisors from starting managers
	// (hold); it is closed by release or stop.
	held chan struct{}
	wg   sync.WaitGroup

	bin, kubeconfig, dir string
	args                 []string
}

func newPool() *pool { return &pool{} }

func (p *pool) start(bin, kubeconfig, dir string, args []string) {
	p.bin, p.kubeconfig, p.dir, p.args = bin, kubeconfig, dir, args
	for slot := 0; slot < replicas; slot++ {
		p.wg.Add(1)
		go p.supervise(slot)
	}
}

func (p *pool) supervise(slot int) {
	defer p.wg.Done()
	for gen := 0; ; gen++ {
		if p.isStopping() {
			return
		}
		p.waitUnheld()
		if p.isStopping() {
			return
		}
		pr, err := p.spawn(slot, gen, false)
		if err == errHeld {
			gen-- // held after waitUnheld returned: wait again
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "starting manager %d.%d: %v\n", slot, gen, err)
			time.Sleep(time.Second)
			continue
		}
		<-pr.done
	}
}

// waitUnheld returns once the pool is not held.
func (p *pool) waitUnheld() {
	p.mu.Lock()
	held := p.held
	p.mu.Unlock()
	if held != nil {
		<-held
	}
}

// hold stops every manager (SIGTERM: the leader hands its lease over) and
// starts none until release: a test that needs the cluster to itself runs
// its own manager meanwhile (spawnExtra).
func (p *pool) hold() {
	p.mu.Lock()
	if p.held == nil {
		p.held = make(chan struct{})
	}
	procs := append([]*proc(nil), p.procs...)
	p.mu.Unlock()
	p.end(procs)
}

// release lets the supervisors start the managers again.
func (p *pool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held != nil {
		close(p.held)
		p.held = nil
	}
}

// spawnExtra starts a manager outside the supervised slots (it is not
// started again when it exits), with the pool's arguments.
func (p *pool) spawnExtra(slot int) (*proc, error) { return p.spawn(slot, 0, true) }

var errHeld = fmt.Errorf("the pool is held")

func (p *pool) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopping
}

// spawn starts a manager; a supervised one (not extra) only while the pool
// is not held.
func (p *pool) spawn(slot, gen int, extra bool) (*proc, error) {
	logPath := filepath.Join(p.dir, fmt.Sprintf("manager-%d.%d.log", slot, gen))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.bin, p.args...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "KUBECONFIG=") && !strings.HasPrefix(e, "POD_NAMESPACE=") && !strings.HasPrefix(e, "KUBERNETES_") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "KUBECONFIG="+p.kubeconfig, "POD_NAMESPACE="+clusterResourceNamespace)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		logFile.Close()
		return nil, fmt.Errorf("stopping")
	}
	if p.held != nil && !extra {
		logFile.Close()
		return nil, errHeld
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	pr := &proc{slot: slot, gen: gen, pid: cmd.Process.Pid, cmd: cmd, logPath: logPath, started: time.Now(), done: make(chan struct{})}
	p.procs = append(p.procs, pr)
	go func() {
		err := cmd.Wait()
		logFile.Close()
		pr.mu.Lock()
		pr.exitErr, pr.exited = err, time.Now()
		pr.mu.Unlock()
		close(pr.done)
	}()
	return pr, nil
}

// all lists every process started so far.
func (p *pool) all() []*proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*proc(nil), p.procs...)
}

// livePIDs are the processes running now (frozen ones included).
func (p *pool) livePIDs() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, pr := range p.procs {
		if pr.alive() {
			out = append(out, pr.pid)
		}
	}
	return out
}

func (p *pool) byPID(pid int) *proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.procs {
		if pr.pid == pid {
			return pr
		}
	}
	return nil
}

// standbys counts the running, unfrozen processes other than pid that have
// been up for at least a second (so they are candidates by now).
func (p *pool) standbys(pid int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pr := range p.procs {
		if pr.pid != pid && pr.alive() && !pr.isFrozen() && time.Since(pr.started) > time.Second {
			n++
		}
	}
	return n
}

// frozenNow lists the processes stopped by SIGSTOP now.
func (p *pool) frozenNow() []*proc {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*proc
	for _, pr := range p.procs {
		if pr.alive() && pr.isFrozen() {
			out = append(out, pr)
		}
	}
	return out
}

// stop ends every manager (SIGTERM, which releases the lease; SIGKILL after
// 15 s) and waits for them.
func (p *pool) stop() {
	p.mu.Lock()
	p.stopping = true
	procs := append([]*proc(nil), p.procs...)
	p.mu.Unlock()
	p.release()
	p.end(procs)
	p.wg.Wait()
}

// end stops the processes that still run (SIGTERM, SIGKILL after 15 s) and
// waits for them.
func (p *pool) end(procs []*proc) {
	for _, pr := range procs {
		if !pr.alive() {
			continue
		}
		_ = pr.signal(syscall.SIGCONT)
		_ = pr.signal(syscall.SIGTERM)
	}
	for _, pr := range procs {
		select {
		case <-pr.done:
		case <-time.After(15 * time.Second):
			_ = pr.signal(syscall.SIGKILL)
			<-pr.done
		}
	}
}

// dumpLogs writes the last lines of every manager's log.
func (p *pool) dumpLogs(w io.Writer, lines int) {
	p.mu.Lock()
	procs := append([]*proc(nil), p.procs...)
	p.mu.Unlock()
	for _, pr := range procs {
		b, _ := os.ReadFile(pr.logPath)
		ls := strings.Split(string(bytes.TrimSpace(b)), "\n")
		if len(ls) > lines {
			ls = ls[len(ls)-lines:]
		}
		fmt.Fprintf(w, "--- %s, log %s (last %d lines)\n%s\n", pr, pr.logPath, len(ls), strings.Join(ls, "\n"))
	}
}
