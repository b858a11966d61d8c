// Command cron is the upstream reference of the cron conformance test
// (tests/conformance/cron.rs): the replicas kubernetes-cronhpa-controller sets, tick by
// tick, for one policy configuration.
//
// Upstream code, imported at the version pinned in go.mod: github.com/ringtail/go-cron,
// the cron library the controller vendors: Parse (6 fields seconds-first, or 5 fields
// with day-of-week `*`), ParseStandard (5 fields minute-first), the descriptors
// (@yearly ... @every, @date), SpecSchedule.Next and ConstantDelaySchedule.Next, with the
// controller's location (time.Location of the policy's `timezone`). The scheduler loop is
// replaced by its chain: after a firing at f a job's next firing is Next(f).
//
// Written here from the controller's behaviour (its module is refused by the Go module
// proxy, so it cannot be imported): a job scales the target to its targetSize when it
// fires, unless IsTodayOff(excludeDates) (pkg/controller/cronjob.go: each entry parsed with
// cron.Parse, unparsable ones skipped; excluded when the entry's next firing after now
// formats like now through the layout "11-15-1990"); a runOnce job runs once. The
// policy's own knobs (start, mode, minReplicas, maxReplicas) are applied as its README
// defines them.
//
// The policy's deliberate deviations are switches in the request ("deviations"); a
// switch that is off gives the controller's behaviour. Each is listed in
// policies/cron/README.md.
//
// Protocol: JSON lines on stdin, one answer line per request on stdout.
//
//	{"config": {<cron policy config>}, "ticks": [ms, ...], "overrides": [n|null, ...],
//	 "initial": n, "workloadMin": n, "workloadMax": n, "controllerStart": ms,
//	 "deviations": {"<name>": bool, ...}}
//	  -> {"valid": true, "replicas": [n, ...]} | {"valid": false, "why": "..."}
//
// The workload's replicas at a tick are the previous tick's decision ("initial" before
// the first), unless "overrides" sets them (another actor scaled it).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
	_ "time/tzdata"

	cron "github.com/ringtail/go-cron"
)

const (
	day = 24 * time.Hour
	// lookback is the policy's horizon for the latest firing (LOOKBACK_DAYS).
	lookback = 1830 * day
	// dateFormat is the controller's excludeDates layout (pkg/controller/cronjob.go).
	dateFormat = "11-15-1990"
)

type jobConfig struct {
	Name       string `json:"name"`
	Schedule   string `json:"schedule"`
	TargetSize int64  `json:"targetSize"`
	RunOnce    bool   `json:"runOnce"`
}

type policyConfig struct {
	Jobs         []jobConfig `json:"jobs"`
	Timezone     *string     `json:"timezone"`
	ExcludeDates []string    `json:"excludeDates"`
	Mode         string      `json:"mode"`
	Start        *string     `json:"start"`
	MinReplicas  *int64      `json:"minReplicas"`
	MaxReplicas  *int64      `json:"maxReplicas"`
}

type request struct {
	Config          policyConfig    `json:"config"`
	Ticks           []int64         `json:"ticks"`
	Overrides       []*int64        `json:"overrides"`
	Initial         int64           `json:"initial"`
	WorkloadMin     int64           `json:"workloadMin"`
	WorkloadMax     int64           `json:"workloadMax"`
	ControllerStart int64           `json:"controllerStart"`
	Deviations      map[string]bool `json:"deviations"`
}

type answer struct {
	Valid    bool    `json:"valid"`
	Why      string  `json:"why,omitempty"`
	Replicas []int64 `json:"replicas,omitempty"`
	Error    string  `json:"error,omitempty"`
}

// invalid is a configuration the controller (or, with "strict-validation", the policy)
// refuses.
type invalid struct{ why string }

func (e invalid) Error() string { return e.why }

type job struct {
	name     string
	target   int64
	runOnce  bool
	schedule cron.Schedule
	// once: an @date job read as one instant (the "date-once" deviation).
	once    bool
	onceAt  time.Time
	onceSet bool
	// every: an @every job (anchored arithmetic under "every-anchored").
	every time.Duration
}

type exclude struct {
	text     string
	schedule cron.Schedule
}

type sim struct {
	dev      map[string]bool
	loc      *time.Location
	start    *time.Time
	jobs     []job
	excludes []exclude
	ctlStart time.Time
}

func (s *sim) on(name string) bool { return s.dev[name] }

// parse is how the controller reads a schedule: go-cron's Parse; "five-field-minute-first"
// reads a 5-field expression with go-cron's ParseStandard instead.
func (s *sim) parse(spec string) (cron.Schedule, error) {
	if s.on("five-field-minute-first") && !strings.HasPrefix(spec, "@") && len(strings.Fields(spec)) == 5 {
		return cron.ParseStandard(spec)
	}
	return cron.Parse(spec)
}

// localStart reads the policy's `start` (RFC 3339, or a local date-time in the zone).
func localStart(text string, loc *time.Location) (time.Time, error) {
	t := strings.TrimSpace(text)
	if d, err := time.Parse(time.RFC3339, t); err == nil {
		return d, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04"} {
		if d, err := time.ParseInLocation(layout, t, loc); err == nil {
			return d, nil
		}
	}
	return time.Time{}, fmt.Errorf("'start': cannot read %q", text)
}

func build(req *request) (*sim, error) {
	c := req.Config
	s := &sim{dev: req.Deviations, ctlStart: time.UnixMilli(req.ControllerStart)}
	tzName := "UTC"
	if c.Timezone != nil {
		tzName = *c.Timezone
	}
	loc, err := time.LoadLocation(tzName)
	if err != nil || tzName == "" || tzName == "Local" {
		return nil, invalid{fmt.Sprintf("timezone %q: %v", tzName, err)}
	}
	s.loc = loc
	s.ctlStart = s.ctlStart.In(loc)
	if c.Start != nil {
		st, err := localStart(*c.Start, loc)
		if err != nil {
			return nil, invalid{err.Error()}
		}
		st = st.In(loc)
		s.start = &st
	}
	if c.MinReplicas != nil && c.MaxReplicas != nil && *c.MinReplicas > *c.MaxReplicas {
		return nil, invalid{"minReplicas > maxReplicas"}
	}
	if c.MaxReplicas != nil && *c.MaxReplicas < 1 || c.MinReplicas != nil && *c.MinReplicas < 0 {
		return nil, invalid{"minReplicas/maxReplicas out of range"}
	}
	if len(c.Jobs) == 0 {
		return nil, invalid{"no jobs"}
	}
	strict := s.on("strict-validation")
	names := map[string]bool{}
	for i, jc := range c.Jobs {
		if strict && (strings.TrimSpace(jc.Name) == "" || names[jc.Name]) {
			return nil, invalid{fmt.Sprintf("jobs[%d].name %q empty or repeated", i, jc.Name)}
		}
		names[jc.Name] = true
		if strict && jc.TargetSize < 1 || jc.TargetSize < 0 || jc.TargetSize > 1<<31-1 {
			return nil, invalid{fmt.Sprintf("jobs[%d].targetSize %d", i, jc.TargetSize)}
		}
		sched, err := s.parse(jc.Schedule)
		if err != nil {
			return nil, invalid{fmt.Sprintf("jobs[%d].schedule %q: %v", i, jc.Schedule, err)}
		}
		j := job{name: jc.Name, target: jc.TargetSize, runOnce: jc.RunOnce, schedule: sched}
		if d, ok := sched.(cron.ConstantDelaySchedule); ok {
			j.every = d.Delay
		}
		if rest, ok := strings.CutPrefix(jc.Schedule, "@date "); ok && s.on("date-once") {
			// The @date spec fires every year on that date; read once, it is its first
			// firing in the year written.
			d, err := time.Parse("2006-01-02 15:04:05", rest)
			if err != nil {
				return nil, invalid{err.Error()}
			}
			j.once = true
			newYear := time.Date(d.Year(), 1, 1, 0, 0, 0, 0, loc)
			if f := sched.Next(newYear.Add(-time.Second)); !f.IsZero() && f.Year() == d.Year() {
				j.onceAt, j.onceSet = f, true
			}
		}
		if strict && !j.once && j.every == 0 {
			// A schedule that never fires (the 31st of February) is refused.
			ref := time.Date(2000, 1, 1, 0, 0, 0, 0, loc)
			if sched.Next(ref).IsZero() {
				return nil, invalid{fmt.Sprintf("jobs[%d].schedule %q never fires", i, jc.Schedule)}
			}
		}
		if strict && j.runOnce && !j.once && s.start == nil {
			return nil, invalid{fmt.Sprintf("jobs[%d].runOnce needs start", i)}
		}
		s.jobs = append(s.jobs, j)
	}
	for i, e := range c.ExcludeDates {
		sched, err := cron.Parse(e)
		if s.on("exclude-dates-by-day") {
			sched, err = s.parse(e)
		}
		if err != nil {
			if strict {
				return nil, invalid{fmt.Sprintf("excludeDates[%d] %q: %v", i, e, err)}
			}
			continue // IsTodayOff logs and skips it
		}
		if _, ok := sched.(*cron.SpecSchedule); !ok && s.on("exclude-dates-by-day") {
			if strict {
				return nil, invalid{fmt.Sprintf("excludeDates[%d] %q: not a day pattern", i, e)}
			}
			continue
		}
		s.excludes = append(s.excludes, exclude{text: e, schedule: sched})
	}
	return s, nil
}

// dayStart is local midnight of t's day, dayEnd the next local midnight (Go's Date).
func dayStart(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

func dayEnd(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, t.Location())
}

// excluded says whether a firing at f is skipped. Upstream (IsTodayOff at f): an entry's
// next firing after f formats like f through "11-15-1990". "exclude-dates-by-day": f's
// local calendar day matches the entry's day-of-month, month and day-of-week fields
// (go-cron's own day rule: the entry with its second, minute and hour fields widened to
// `*` fires that day).
func (s *sim) excluded(f time.Time) bool {
	for _, e := range s.excludes {
		if s.on("exclude-dates-by-day") {
			spec := *e.schedule.(*cron.SpecSchedule)
			all := uint64(1<<63) | (1<<60 - 1)
			spec.Second, spec.Minute, spec.Hour = all, all, all
			ds := dayStart(f)
			if n := spec.Next(ds.Add(-time.Second)); !n.IsZero() && n.Before(dayEnd(f)) && !n.Before(ds) {
				return true
			}
			continue
		}
		if n := e.schedule.Next(f); n.Format(dateFormat) == f.Format(dateFormat) {
			return true
		}
	}
	return false
}

// skipFrom is where the search resumes after an excluded firing at f: with day-based
// excludes the whole local day is skipped (every firing on it is excluded).
func (s *sim) skipFrom(f time.Time) time.Time {
	if s.on("exclude-dates-by-day") {
		if e := dayEnd(f).Add(-time.Second); e.After(f) {
			return e
		}
	}
	return f
}

// next is a job's first firing strictly after t (Next on the chain; an @every job's
// anchored arithmetic under "every-anchored").
func (s *sim) next(j *job, t time.Time) time.Time {
	if j.every > 0 && s.on("every-anchored") {
		anchor := time.UnixMilli(0)
		if s.start != nil {
			anchor = *s.start
		}
		k := t.Sub(anchor) / j.every
		if t.Sub(anchor) < 0 {
			k = -1
		}
		f := anchor.Add((k + 1) * j.every)
		for !f.After(t) {
			f = f.Add(j.every)
		}
		if !f.After(anchor) {
			f = anchor.Add(j.every)
		}
		return f.In(s.loc)
	}
	if j.every > 0 {
		// The chain from the controller's start: ctlStart + k x delay.
		since := t.Sub(s.ctlStart)
		k := since / j.every
		if since < 0 {
			k = -1
		}
		f := s.ctlStart.Add((k + 1) * j.every)
		for !f.After(t) {
			f = f.Add(j.every)
		}
		if !f.After(s.ctlStart) {
			f = s.ctlStart.Add(j.every)
		}
		return f.In(s.loc)
	}
	return j.schedule.Next(t)
}

const maxWalk = 5_000_000

// latest is the job's latest counted firing at or before t and at or after floor, walking
// the chain from ever earlier points (64 s, then x4) before t.
func (s *sim) latest(j *job, t, floor time.Time) (time.Time, bool, error) {
	steps := 0
	for w := 64 * time.Second; ; w *= 4 {
		from := t.Add(-w)
		first := floor.Add(-time.Second)
		if !from.After(first) {
			from = first
		}
		var best time.Time
		found := false
		for f := s.next(j, from); !f.IsZero() && !f.After(t); {
			if steps++; steps > maxWalk {
				return time.Time{}, false, fmt.Errorf("job %q: more than %d firings walked", j.name, maxWalk)
			}
			if s.excluded(f) {
				f = s.next(j, s.skipFrom(f))
				continue
			}
			best, found = f, true
			f = s.next(j, f)
		}
		if found {
			return best, true, nil
		}
		if from.Equal(first) {
			return time.Time{}, false, nil
		}
	}
}

// fired is the firing in force for job j at t, if any.
func (s *sim) fired(j *job, t time.Time) (time.Time, bool, error) {
	if j.once {
		ok := j.onceSet && !j.onceAt.After(t) && (s.start == nil || !j.onceAt.Before(*s.start))
		ok = ok && !s.excluded(j.onceAt)
		if !s.on("level-based") {
			ok = ok && j.onceAt.After(s.ctlStart)
		}
		return j.onceAt, ok, nil
	}
	if j.runOnce {
		// Created at start - 1 s (a firing at start counts): the single run is the first
		// firing; "run-once-first-unexcluded": the first that is not on an excluded day.
		created := s.ctlStart
		if s.start != nil {
			created = s.start.Add(-time.Second)
		}
		f := s.next(j, created)
		if s.on("run-once-first-unexcluded") {
			limit := created.Add(lookback)
			for !f.IsZero() && !f.After(limit) && s.excluded(f) {
				f = s.next(j, s.skipFrom(f))
			}
			if f.After(limit) {
				return time.Time{}, false, nil
			}
		} else if !f.IsZero() && s.excluded(f) {
			return time.Time{}, false, nil
		}
		return f, !f.IsZero() && !f.After(t), nil
	}
	var floor time.Time
	if s.on("level-based") {
		floor = t.Add(-lookback)
	} else {
		floor = s.ctlStart.Add(time.Second)
	}
	if s.start != nil && s.start.After(floor) {
		floor = *s.start
	}
	return s.latest(j, t, floor)
}

func run(req *request) answer {
	s, err := build(req)
	if err != nil {
		if e, ok := err.(invalid); ok {
			return answer{Valid: false, Why: e.why}
		}
		return answer{Error: err.Error()}
	}
	c := req.Config
	current := req.Initial
	out := make([]int64, 0, len(req.Ticks))
	for i, ms := range req.Ticks {
		if i < len(req.Overrides) && req.Overrides[i] != nil {
			current = *req.Overrides[i]
		}
		t := time.UnixMilli(ms).In(s.loc)
		var winner *job
		var at time.Time
		for k := range s.jobs {
			j := &s.jobs[k]
			f, ok, err := s.fired(j, t)
			if err != nil {
				return answer{Error: err.Error()}
			}
			// Simultaneous firings: the job listed last wins ("last-listed-wins"),
			// else the first.
			if ok && (winner == nil || f.After(at) || f.Equal(at) && s.on("last-listed-wins")) {
				winner, at = j, f
			}
		}
		replicas := current
		if winner != nil {
			want := winner.target
			if c.MinReplicas != nil && want < *c.MinReplicas {
				want = *c.MinReplicas
			}
			if c.MaxReplicas != nil && want > *c.MaxReplicas {
				want = *c.MaxReplicas
			}
			if c.Mode == "floor" && current > want {
				want = current
			}
			replicas = want
		}
		lo := min(req.WorkloadMin, req.WorkloadMax)
		replicas = max(lo, min(replicas, req.WorkloadMax))
		out = append(out, replicas)
		current = replicas
	}
	return answer{Valid: true, Replicas: out}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var req request
		var a answer
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			a = answer{Error: fmt.Sprintf("bad request: %v", err)}
		} else {
			a = run(&req)
		}
		if err := enc.Encode(a); err != nil {
			fmt.Fprintln(os.Stderr, "cron-reference:", err)
			os.Exit(1)
		}
		if err := out.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, "cron-reference:", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "cron-reference:", err)
		os.Exit(1)
	}
}
