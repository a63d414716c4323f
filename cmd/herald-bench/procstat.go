package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat. Linux fixes it at 100 for user space on
// every architecture Go supports (sysconf(_SC_CLK_TCK)), whatever the kernel's own tick rate.
const userHZ = 100

// serverSample is what --pid and --redis measure at one moment.
type serverSample struct {
	at    time.Time
	cpu   time.Duration    // user + system CPU time consumed so far, all threads of every process
	rss   int64            // resident set size, bytes, the processes and their descendants
	redis map[string]int64 // Redis commands executed so far, by name; nil without --redis
}

// processes is the --pid flag: the server processes measured together, a comma-separated list.
type processes []int

func (ps *processes) String() string {
	s := make([]string, len(*ps))
	for i, p := range *ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

func (ps *processes) Set(v string) error {
	*ps = nil
	for _, f := range strings.Split(v, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 0 {
			return fmt.Errorf("bad process id %q", f)
		}
		if p > 0 {
			*ps = append(*ps, p)
		}
	}
	return nil
}

// rss is the resident set size of every process and its descendants.
func (ps processes) rss() (int64, error) {
	var total int64
	for _, p := range ps {
		n, err := rssBytes(p)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// sampleServer reads the CPU time and RSS of ps, and with a redis address its command counts.
func sampleServer(ps processes, redis string) (serverSample, error) {
	s := serverSample{at: time.Now()}
	for _, p := range ps {
		cpu, err := cpuTime(p)
		if err != nil {
			return s, err
		}
		s.cpu += cpu
	}
	var err error
	if s.rss, err = ps.rss(); err != nil {
		return s, err
	}
	if redis != "" {
		s.redis, err = redisCommandCounts(redis)
	}
	return s, err
}

// cpuTime returns the user + system CPU time pid has consumed (10 ms resolution).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	utime, stime, err := parseStatTicks(b)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// parseStatTicks returns utime and stime (fields 14 and 15, in clock ticks) of a /proc/<pid>/stat
// line. The command name (field 2) is parenthesised and may itself hold spaces and parentheses, so
// fields are counted from the last ')'.
func parseStatTicks(b []byte) (utime, stime int64, err error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, 0, fmt.Errorf("no command name in %.80q", b)
	}
	fields := bytes.Fields(b[end+1:]) // fields[0] is field 3, the state
	const utimeField, stimeField = 14 - 3, 15 - 3
	if len(fields) <= stimeField {
		return 0, 0, fmt.Errorf("only %d fields after the command name", len(fields))
	}
	if utime, err = strconv.ParseInt(string(fields[utimeField]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("utime: %w", err)
	}
	if stime, err = strconv.ParseInt(string(fields[stimeField]), 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stime: %w", err)
	}
	return utime, stime, nil
}

// rssBytes returns the resident set size of pid and all its descendants, read from /proc.
func rssBytes(pid int) (int64, error) {
	total, err := vmRSS(pid)
	if err != nil {
		return 0, err
	}
	for _, child := range children(pid) {
		n, err := rssBytes(child)
		if err == nil {
			total += n
		}
	}
	return total, nil
}

func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := parseVmRSS(f)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return n, nil
}

// parseVmRSS returns the VmRSS line of a /proc/<pid>/status file, in bytes.
func parseVmRSS(r io.Reader) (int64, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// children lists the direct children of pid, over all its threads.
func children(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if n, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// serverCost is the server's CPU and memory over a measured phase, as every JSON line reports it.
type serverCost struct {
	CPUSeconds  float64 `json:"server_cpu_seconds,omitempty"`
	CPUMicros   float64 `json:"server_cpu_us_per_unit,omitempty"` // per delivery, cycle or relayed event
	CPUUtil     float64 `json:"server_cpu_util,omitempty"`        // CPU seconds per wall second (1 = one core)
	RSSBefore   int64   `json:"rss_before,omitempty"`
	RSSAfter    int64   `json:"rss_after,omitempty"`
	WallSeconds float64 `json:"measured_seconds,omitempty"`
	// RedisPerUnit is the Redis commands of the measured phase per unit of work, by command name,
	// with --redis. It includes the cluster's background work (heartbeats, the webhook outbox).
	RedisPerUnit map[string]float64 `json:"redis_commands_per_unit,omitempty"`
}

// print writes the human summary line of a cost; unit names one unit of work ("delivery", "cycle").
func (c serverCost) print(out io.Writer, unit string) {
	fmt.Fprintf(out, "server: %.2f s CPU (%.0f %% of a core), %.2f µs per %s; RSS %.1f -> %.1f MiB\n",
		c.CPUSeconds, 100*c.CPUUtil, c.CPUMicros, unit, mib(c.RSSBefore), mib(c.RSSAfter))
	if len(c.RedisPerUnit) > 0 {
		names := make([]string, 0, len(c.RedisPerUnit))
		for name := range c.RedisPerUnit {
			names = append(names, name)
		}
		sort.Strings(names)
		fmt.Fprintf(out, "redis per %s:", unit)
		for _, name := range names {
			fmt.Fprintf(out, " %s %.3f", name, c.RedisPerUnit[name])
		}
		fmt.Fprintln(out)
	}
}

// costBetween reports the server's cost between two samples spread over units of work.
func costBetween(a, b serverSample, units int64) serverCost {
	c := serverCost{RSSBefore: a.rss, RSSAfter: b.rss, WallSeconds: round3(b.at.Sub(a.at).Seconds())}
	cpu := b.cpu - a.cpu
	c.CPUSeconds = round3(cpu.Seconds())
	if c.WallSeconds > 0 {
		c.CPUUtil = round3(cpu.Seconds() / b.at.Sub(a.at).Seconds())
	}
	if units > 0 {
		c.CPUMicros = round3(float64(cpu.Microseconds()) / float64(units))
		for name, n := range b.redis {
			if d := n - a.redis[name]; d > 0 {
				if c.RedisPerUnit == nil {
					c.RedisPerUnit = map[string]float64{}
				}
				c.RedisPerUnit[name] = round3(float64(d) / float64(units))
			}
		}
	}
	return c
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
