// Command knative is the upstream reference of the knative-concurrency conformance test
// (tests/conformance.rs): Knative Serving's own autoscaler driven tick by tick.
//
// Upstream code, imported at the version pinned in go.mod:
//   - pkg/autoscaler/config: the config-autoscaler defaults, parsing and validation;
//   - pkg/reconciler/autoscaling/kpa/resources.MakeDecider and
//     pkg/reconciler/autoscaling/resources.MakeMetric: the decider spec and windows from
//     the PodAutoscaler's annotations (ResolveMetricTarget, panic window rounding, ...);
//   - pkg/autoscaler/metrics.MetricCollector: the real collector (Record, IsEmpty and the
//     TimedFloat64Buckets windowed averages of pkg/autoscaler/aggregation);
//   - pkg/autoscaler/scaling.New / Scale: the decider, with the simulated clock passed to
//     Scale;
//   - pkg/apis/autoscaling/v1alpha1: ScaleBounds, InitialScale, the Active condition and
//     ActiveFor / InactiveFor.
//
// Transcribed (the kpa package's scaler is unexported and needs an informer-backed
// cluster): kpa/scaler.go scale() + handleScaleToZero and kpa/kpa.go computeActiveCondition,
// line for line, on the upstream types above. The parts that depend on the activator and
// the SKS (proxy-mode fast path, activation timeout) are deviation switches, see
// policies/knative-concurrency/README.md ("Conformance").
//
// Protocol: JSON lines on stdin, one answer line per request on stdout.
//
//	{"start": {<knative-concurrency policy config>}}        -> {"ok": true}
//	{"tick": {"atMs": t, "samples": [[atMs, v], ...], "ready": r, "replicas": n}}
//	                                                         -> {"baseMs": b, "replicas": m, ...}
//
// Times in requests are offsets from the sequence start; baseMs is the wall-clock second
// the sequence was mapped to (a new Knative autoscaler stamps its initial panic with
// time.Now(), so the simulated clock starts at that second).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"
	"knative.dev/serving/pkg/apis/autoscaling"
	av1alpha1 "knative.dev/serving/pkg/apis/autoscaling/v1alpha1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
	"knative.dev/serving/pkg/autoscaler/config/autoscalerconfig"
	"knative.dev/serving/pkg/autoscaler/metrics"
	"knative.dev/serving/pkg/autoscaler/scaling"
	"knative.dev/serving/pkg/deployment"
	kparesources "knative.dev/serving/pkg/reconciler/autoscaling/kpa/resources"
	aresources "knative.dev/serving/pkg/reconciler/autoscaling/resources"
)

// policyConfig is the knative-concurrency policy's configuration (camelCase keys).
type policyConfig struct {
	Metric                        string   `json:"metric"`
	ContainerConcurrency          int64    `json:"containerConcurrency"`
	Target                        *float64 `json:"target"`
	TargetUtilizationPercentage   *float64 `json:"targetUtilizationPercentage"`
	StableWindow                  *float64 `json:"stableWindow"` // seconds
	PanicWindowPercentage         *float64 `json:"panicWindowPercentage"`
	PanicThresholdPercentage      *float64 `json:"panicThresholdPercentage"`
	MaxScaleUpRate                *float64 `json:"maxScaleUpRate"`
	MaxScaleDownRate              *float64 `json:"maxScaleDownRate"`
	ScaleToZeroGracePeriod        *float64 `json:"scaleToZeroGracePeriod"`
	ScaleToZeroPodRetentionPeriod *float64 `json:"scaleToZeroPodRetentionPeriod"`
	ScaleDownDelay                *float64 `json:"scaleDownDelay"`
	InitialScale                  *int32   `json:"initialScale"`
	AllowZeroInitialScale         *bool    `json:"allowZeroInitialScale"`
	ActivationScale               *int32   `json:"activationScale"`
	MinScale                      *int32   `json:"minScale"`
	MaxScale                      *int32   `json:"maxScale"`
	EnableScaleToZero             *bool    `json:"enableScaleToZero"`
	TargetBurstCapacity           *float64 `json:"targetBurstCapacity"`
}

type tickIn struct {
	AtMs     int64        `json:"atMs"`
	Samples  [][2]float64 `json:"samples"`
	Ready    int          `json:"ready"`
	Replicas int32        `json:"replicas"`
}

type request struct {
	Start *policyConfig `json:"start"`
	// Deviation switches: upstream behaviour left out of the comparison (see handleScaleToZero).
	Deviations []string `json:"deviations"`
	Tick       *tickIn  `json:"tick"`
}

type tickOut struct {
	BaseMs int64 `json:"baseMs"`
	// The Deployment's replicas after this reconcile.
	Replicas int32 `json:"replicas"`
	// The decider's DesiredScale (-1 until the first valid Scale) and what Scale said.
	DeciderDesired int32 `json:"deciderDesired"`
	ScaleValid     bool  `json:"scaleValid"`
	// The PA's Active condition after the reconcile: "True", "False" or "Unknown".
	Active string `json:"active"`
	Error  string `json:"error,omitempty"`
}

type readyCounter struct{ ready int }

func (c *readyCounter) ReadyCount() (int, error)    { return c.ready, nil }
func (c *readyCounter) NotReadyCount() (int, error) { return 0, nil }

// sequence is one simulated revision: its PA, config, collector and decider.
type sequence struct {
	cfg       *autoscalerconfig.Config
	pa        *av1alpha1.PodAutoscaler
	key       types.NamespacedName
	collector *metrics.MetricCollector
	pods      *readyCounter
	scaler    scaling.UniScaler
	desired   int32 // decider.Status.DesiredScale
	ebc       int32 // decider.Status.ExcessBurstCapacity
	base      time.Time
	// The SKS: in proxy mode (activator in the path) since proxySince, or serving.
	proxy      bool
	proxySince time.Time
	deviation  map[string]bool
}

var logger = zap.NewNop().Sugar()

func secs(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) + "s" }
func num(v float64) string  { return strconv.FormatFloat(v, 'g', -1, 64) }

// newSequence maps the policy config onto config-autoscaler keys (cluster-wide settings)
// and PodAutoscaler annotations (per-revision settings), as a migrating user would.
func newSequence(pc *policyConfig, deviations []string) (*sequence, error) {
	cm := map[string]string{}
	ann := map[string]string{autoscaling.ClassAnnotationKey: autoscaling.KPA}
	if pc.MaxScaleUpRate != nil {
		cm["max-scale-up-rate"] = num(*pc.MaxScaleUpRate)
	}
	if pc.MaxScaleDownRate != nil {
		cm["max-scale-down-rate"] = num(*pc.MaxScaleDownRate)
	}
	if pc.ScaleToZeroGracePeriod != nil {
		cm["scale-to-zero-grace-period"] = secs(*pc.ScaleToZeroGracePeriod)
	}
	if pc.EnableScaleToZero != nil {
		cm["enable-scale-to-zero"] = strconv.FormatBool(*pc.EnableScaleToZero)
	}
	if pc.AllowZeroInitialScale != nil {
		cm["allow-zero-initial-scale"] = strconv.FormatBool(*pc.AllowZeroInitialScale)
	}
	cfg, err := asconfig.NewConfigFromMap(cm)
	if err != nil {
		return nil, err
	}
	if pc.Metric != "" {
		ann[autoscaling.MetricAnnotationKey] = pc.Metric
	}
	if pc.Target != nil {
		ann[autoscaling.TargetAnnotationKey] = num(*pc.Target)
	}
	if pc.TargetUtilizationPercentage != nil {
		ann[autoscaling.TargetUtilizationPercentageKey] = num(*pc.TargetUtilizationPercentage)
	}
	if pc.StableWindow != nil {
		ann[autoscaling.WindowAnnotationKey] = secs(*pc.StableWindow)
	}
	if pc.PanicWindowPercentage != nil {
		ann[autoscaling.PanicWindowPercentageAnnotationKey] = num(*pc.PanicWindowPercentage)
	}
	if pc.PanicThresholdPercentage != nil {
		ann[autoscaling.PanicThresholdPercentageAnnotationKey] = num(*pc.PanicThresholdPercentage)
	}
	if pc.ScaleToZeroPodRetentionPeriod != nil {
		ann[autoscaling.ScaleToZeroPodRetentionPeriodKey] = secs(*pc.ScaleToZeroPodRetentionPeriod)
	}
	if pc.ScaleDownDelay != nil {
		ann[autoscaling.ScaleDownDelayAnnotationKey] = secs(*pc.ScaleDownDelay)
	}
	if pc.InitialScale != nil {
		ann[autoscaling.InitialScaleAnnotationKey] = strconv.Itoa(int(*pc.InitialScale))
	}
	if pc.ActivationScale != nil {
		ann[autoscaling.ActivationScaleKey] = strconv.Itoa(int(*pc.ActivationScale))
	}
	if pc.MinScale != nil {
		ann[autoscaling.MinScaleAnnotationKey] = strconv.Itoa(int(*pc.MinScale))
	}
	if pc.MaxScale != nil {
		ann[autoscaling.MaxScaleAnnotationKey] = strconv.Itoa(int(*pc.MaxScale))
	}
	if pc.TargetBurstCapacity != nil {
		ann[autoscaling.TargetBurstCapacityKey] = num(*pc.TargetBurstCapacity)
	}
	pa := &av1alpha1.PodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "conformance", Name: "rev", Annotations: ann, UID: "uid"},
		Spec: av1alpha1.PodAutoscalerSpec{
			ContainerConcurrency: pc.ContainerConcurrency,
			ProtocolType:         "http1",
		},
	}
	// The generated reconciler initialises the conditions: Active=Unknown (activating).
	pa.Status.InitializeConditions()
	pa.Status.ServiceName = "rev" // the SKS exists and is ready from the start
	dev := map[string]bool{}
	for _, d := range deviations {
		if d != "sks-proxy-fast-path" && d != "activation-timeout" {
			return nil, fmt.Errorf("unknown deviation %q (sks-proxy-fast-path, activation-timeout)", d)
		}
		dev[d] = true
	}
	s := &sequence{
		cfg:       cfg,
		pa:        pa,
		key:       types.NamespacedName{Namespace: "conformance", Name: "rev"},
		pods:      &readyCounter{},
		desired:   -1, // multiscaler.go: a new decider's DesiredScale
		deviation: dev,
	}
	// multiscaler.go createDecider: the initial ExcessBurstCapacity.
	switch tbc := s.tbc(); tbc {
	case -1, 0:
		s.ebc = int32(tbc)
	default:
		s.ebc = -1
	}
	return s, nil
}

// resolveScrapeTarget: kpa.go; TBC -1 means the activator is always in the path and
// the revision's pods are not scraped (no "no data" error then, averages of 0).
func (s *sequence) scrapeTarget() string {
	if s.tbc() == -1 {
		return ""
	}
	return "rev-private"
}

func (s *sequence) tbc() float64 {
	if v, ok := s.pa.TargetBC(); ok {
		return v
	}
	return s.cfg.TargetBurstCapacity
}

// start creates the decider at the first tick (when the ready count is known), aligning
// the simulated clock with the wall-clock second of its creation.
func (s *sequence) start(ready int) error {
	s.pods.ready = ready
	s.collector = metrics.NewMetricCollector(func(*av1alpha1.Metric, *zap.SugaredLogger) (metrics.StatsScraper, error) {
		return nil, nil // stats come from Record, never from a scraper
	}, logger)
	metric := aresources.MakeMetric(s.pa, s.scrapeTarget(), s.cfg)
	if err := s.collector.CreateOrUpdate(metric); err != nil {
		return err
	}
	// Times from the start of the sequence; the initial conditions too.
	defer func() {
		s.stampActive(s.base)
		s.proxy, s.proxySince = true, s.base // a new SKS starts in proxy mode
	}()
	decider := kparesources.MakeDecider(s.pa, s.cfg)
	for {
		before := time.Now()
		sc := scaling.New(context.Background(), s.key.Namespace, s.key.Name, s.collector, s.pods, &decider.Spec)
		if time.Now().Truncate(time.Second).Equal(before.Truncate(time.Second)) {
			s.scaler = sc
			s.base = before.Truncate(time.Second)
			return nil
		}
	}
}

func (s *sequence) close() {
	if s.collector != nil {
		s.collector.Delete(s.key.Namespace, s.key.Name)
	}
}

func (s *sequence) at(offsetMs int64) time.Time {
	return s.base.Add(time.Duration(offsetMs) * time.Millisecond)
}

// setActive wraps the PA's Mark* calls: the condition manager stamps a changed condition
// with time.Now(); the simulated clock replaces that stamp. (GetCondition returns a copy,
// so the stamp is written into the Conditions slice.)
func (s *sequence) setActive(now time.Time, mark func()) {
	before := s.pa.Status.GetCondition(av1alpha1.PodAutoscalerConditionActive).DeepCopy()
	mark()
	after := s.pa.Status.GetCondition(av1alpha1.PodAutoscalerConditionActive)
	if after != nil && (before == nil || before.Status != after.Status) {
		s.stampActive(now)
	}
}

func (s *sequence) stampActive(at time.Time) {
	for i := range s.pa.Status.Conditions {
		if s.pa.Status.Conditions[i].Type == av1alpha1.PodAutoscalerConditionActive {
			s.pa.Status.Conditions[i].LastTransitionTime = apis.VolatileTime{Inner: metav1.NewTime(at)}
		}
	}
}

func (s *sequence) tick(in *tickIn) (tickOut, error) {
	if s.scaler == nil {
		if err := s.start(in.Ready); err != nil {
			return tickOut{}, err
		}
	}
	now := s.at(in.AtMs)
	for _, smp := range in.Samples {
		v := smp[1]
		s.collector.Record(s.key, s.at(int64(smp[0])), metrics.Stat{AverageConcurrentRequests: v, RequestCount: v})
	}
	s.pods.ready = in.Ready

	// multiscaler.go tickScaler: an invalid result leaves DesiredScale as it was.
	sr := s.scaler.Scale(logger, now)
	if sr.ScaleValid {
		s.desired = sr.DesiredPodCount
		s.ebc = sr.ExcessBurstCapacity
	}
	want, apply := s.scale(now, s.desired)
	replicas := in.Replicas
	if apply {
		replicas = want
	}
	// kpa.go computeStatus -> computeActiveCondition with the pods as they are now.
	// kpa.go: the SKS serves directly only with pods wanted and burst capacity to spare.
	proxy := !(want > 0 && s.ebc >= 0)
	if proxy && !s.proxy {
		s.proxySince = now
	}
	s.proxy = proxy
	s.computeActiveCondition(now, int(want), in.Ready)
	return tickOut{
		BaseMs:         s.base.UnixMilli(),
		Replicas:       replicas,
		DeciderDesired: s.desired,
		ScaleValid:     sr.ScaleValid,
		Active:         string(s.pa.Status.GetCondition(av1alpha1.PodAutoscalerConditionActive).Status),
	}, nil
}

const scaleUnknown = -1

// activationTimeoutBuffer is kpa/scaler.go's (unexported there).
const activationTimeoutBuffer = 30 * time.Second

// scale is kpa/scaler.go (*scaler).scale up to applyScale: the value it returns and
// whether it would write it to the Deployment.
func (s *sequence) scale(now time.Time, desiredScale int32) (int32, bool) {
	if desiredScale < 0 && !s.pa.Status.IsActivating() {
		return desiredScale, false
	}
	min, max := s.pa.ScaleBounds(s.cfg)
	initialScale := kparesources.GetInitialScale(s.cfg, s.pa)
	if initialScale > 1 && !s.pa.Status.IsScaleTargetInitialized() {
		min = int32(math.Max(float64(initialScale), float64(min)))
	}
	desiredScale = applyBounds(min, max, desiredScale)
	return s.handleScaleToZero(now, desiredScale)
}

func applyBounds(min, max, x int32) int32 {
	if x < min {
		return min
	}
	if max != 0 && x > max {
		return max
	}
	return x
}

// handleScaleToZero is kpa/scaler.go's, with the activator probe succeeding (the
// activator is in the path whenever the PA is inactive). Deviation switches:
// "sks-proxy-fast-path" leaves out the early zero once the SKS has proxied for the grace
// period; "activation-timeout" leaves out the zero after activating past the progress
// deadline (deployment.ProgressDeadlineDefault + activationTimeoutBuffer).
func (s *sequence) handleScaleToZero(now time.Time, desiredScale int32) (int32, bool) {
	if desiredScale != 0 {
		return desiredScale, true
	}
	if !s.cfg.EnableScaleToZero {
		return 1, true
	}
	st := &s.pa.Status
	switch {
	case st.IsActivating():
		if !s.deviation["activation-timeout"] && st.CanFailActivation(now, deployment.ProgressDeadlineDefault+activationTimeoutBuffer) {
			return desiredScale, true
		}
		return scaleUnknown, false
	case st.IsActive():
		sw := aresources.StableWindow(s.pa, s.cfg)
		if st.ActiveFor(now) >= sw {
			return desiredScale, false
		}
		return 1, true
	default:
		lastPodTimeout := time.Duration(0)
		if d, ok := s.pa.ScaleToZeroPodRetention(); ok {
			lastPodTimeout = d
		} else {
			lastPodTimeout = s.cfg.ScaleToZeroPodRetentionPeriod
		}
		lastPodMaxTimeout := s.cfg.ScaleToZeroGracePeriod
		if lastPodTimeout > lastPodMaxTimeout {
			lastPodMaxTimeout = lastPodTimeout
		}
		if st.InactiveFor(now) >= lastPodMaxTimeout {
			return desiredScale, true
		}
		if lastPodTimeout > 0 {
			if inactiveTime := st.InactiveFor(now); inactiveTime < lastPodTimeout {
				return desiredScale, false
			}
		}
		if s.deviation["sks-proxy-fast-path"] {
			return desiredScale, false
		}
		pf := time.Duration(0)
		if s.proxy {
			pf = now.Sub(s.proxySince)
		}
		if s.cfg.ScaleToZeroGracePeriod-pf <= 0 {
			return desiredScale, true
		}
		return desiredScale, false
	}
}

// activeThreshold and computeActiveCondition are kpa/kpa.go's.
func (s *sequence) activeThreshold() int {
	min, _ := s.pa.ScaleBounds(s.cfg)
	if !s.pa.Status.IsScaleTargetInitialized() {
		initialScale := kparesources.GetInitialScale(s.cfg, s.pa)
		return int(math.Max(float64(min), float64(initialScale)))
	}
	return int(math.Max(float64(min), 1))
}

func (s *sequence) computeActiveCondition(now time.Time, want, ready int) {
	st := &s.pa.Status
	minReady := s.activeThreshold()
	if ready >= minReady && st.ServiceName != "" {
		st.MarkScaleTargetInitialized()
	}
	switch {
	case want == 0 || minReady == 0:
		s.setActive(now, func() { st.MarkInactive("NoTraffic", "The target is not receiving traffic.") })
	case ready < minReady:
		if want > 0 || !st.IsInactive() {
			s.setActive(now, func() {
				st.MarkActivating("Queued", "Requests to the target are being buffered as resources are provisioned.")
			})
		} else {
			s.setActive(now, func() { st.MarkInactive("NoTraffic", "The target is not receiving traffic.") })
		}
	case ready >= minReady:
		if want > 0 || !st.IsInactive() {
			s.setActive(now, func() { st.MarkActive() })
		}
	}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	var seq *sequence
	for in.Scan() {
		var req request
		var answer any
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			answer = map[string]string{"error": fmt.Sprintf("bad request: %v", err)}
		} else if req.Start != nil {
			if seq != nil {
				seq.close()
			}
			var err error
			seq, err = newSequence(req.Start, req.Deviations)
			if err != nil {
				answer = map[string]string{"error": err.Error()}
			} else {
				answer = map[string]bool{"ok": true}
			}
		} else if req.Tick != nil && seq != nil {
			o, err := seq.tick(req.Tick)
			if err != nil {
				o.Error = err.Error()
			}
			answer = o
		} else {
			answer = map[string]string{"error": "expected {\"start\": ...} or {\"tick\": ...} after a start"}
		}
		if err := enc.Encode(answer); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}
}
