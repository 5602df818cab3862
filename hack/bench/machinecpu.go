package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// machineCPU is the CPU time the whole machine and the bench process itself
// (the load generator, the EJBCA simulator and cert-manager's controllers)
// had used at one moment. Between two readings it tells whether a run was
// bound by the machine's cores: the manager, the null issuer, the API
// server and etcd share them with the bench process and, on a shared
// machine, with other work.
type machineCPU struct {
	busy, total time.Duration
	self        time.Duration
	// apiServer and etcd are the control plane's processes (the bench's
	// children).
	apiServer, etcd time.Duration
}

func readMachineCPU() (machineCPU, error) {
	var m machineCPU
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return m, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	// user nice system idle iowait irq softirq steal ...
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		d := time.Duration(v) * time.Second / ticksPerSecond
		m.total += d
		if i != 3 && i != 4 {
			m.busy += d
		}
	}
	if m.self, err = processCPU(os.Getpid()); err != nil {
		return m, err
	}
	m.apiServer = childCPU("kube-apiserver")
	m.etcd = childCPU("etcd")
	return m, nil
}

// childCPU is the CPU time of the bench's child process named comm (0 when
// there is none).
func childCPU(comm string) time.Duration {
	dirs, _ := os.ReadDir("/proc")
	self := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open || s[open+1:closing] != comm {
			continue
		}
		if f := strings.Fields(s[closing+2:]); len(f) > 1 && f[1] == self {
			pid, _ := strconv.Atoi(d.Name())
			cpu, _ := processCPU(pid)
			return cpu
		}
	}
	return 0
}

// machineUsage is what the machine spent during a run.
type machineUsage struct {
	// BusyCores is the machine's busy CPU over the run, in cores (of
	// Cores).
	BusyCores float64 `json:"busy_cores"`
	Cores     int     `json:"cores"`
	// MsPerCert is the machine's busy CPU per issued certificate; BenchMsPerCert
	// the bench process's own share of it (load generator, simulator,
	// cert-manager's controllers).
	MsPerCert      float64 `json:"ms_per_cert"`
	BenchMsPerCert float64 `json:"bench_ms_per_cert"`
	// APIServerMsPerCert and EtcdMsPerCert are the control plane's.
	APIServerMsPerCert float64 `json:"apiserver_ms_per_cert"`
	EtcdMsPerCert      float64 `json:"etcd_ms_per_cert"`
}

func machineSpent(before, after machineCPU, elapsed float64, certs, cores int) machineUsage {
	u := machineUsage{Cores: cores}
	if elapsed > 0 {
		u.BusyCores = (after.busy - before.busy).Seconds() / elapsed
	}
	if certs > 0 {
		u.MsPerCert = float64((after.busy - before.busy).Microseconds()) / 1000 / float64(certs)
		per := func(a, b time.Duration) float64 { return float64((a - b).Microseconds()) / 1000 / float64(certs) }
		u.BenchMsPerCert = per(after.self, before.self)
		u.APIServerMsPerCert = per(after.apiServer, before.apiServer)
		u.EtcdMsPerCert = per(after.etcd, before.etcd)
	}
	return u
}
