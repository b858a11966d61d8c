// Command hpa is the upstream reference of the hpa conformance test
// (tests/conformance/hpa.rs): the Kubernetes HorizontalPodAutoscaler's replica decision,
// k8s.io/kubernetes pkg/controller/podautoscaler at the version pinned in go.mod, driven
// tick by tick.
//
// Upstream code, imported at that version:
//   - pkg/apis/autoscaling/v2.SetDefaults_HorizontalPodAutoscaler: the API server's
//     defaults for the HPA spec (minReplicas, behavior rules);
//   - pkg/controller/podautoscaler: computeReplicasForMetrics (the replica calculator,
//     External metrics with an AverageValue target, tolerances from the controller flag
//     and behavior, the several-metrics rule), recordInitialRecommendation,
//     normalizeDesiredReplicasWithBehaviors (stabilization windows, scaling policies,
//     selectPolicy, min/max) and storeScaleEvent, the HorizontalController's own methods,
//     reached through shim/zz_wasmscaler_conformance.go: thin exported wrappers that
//     scripts/build-conformance.sh adds to that package with go build -overlay;
//   - the feature gates' defaults of that version (HPAConfigurableTolerance on).
//
// Transcribed: reconcileAutoscaler's branches around those calls (replicas out of
// [minReplicas, maxReplicas], a workload at zero, a failed metrics computation, rescale
// only on a change), line for line; the scale subresource is the tick's replicas.
//
// Time: the decision steps read time.Now(). Each tick maps the simulated instant onto the
// clock: every stored recommendation and scale event is moved by the change of that
// mapping (measured on the monotonic clock), and what the tick records is stamped at
// exactly the tick's instant. Simulated instants are whole milliseconds apart, far more
// than the microseconds between the clock readings of one tick, so an event exactly one
// period old compares as the upstream code compares it in a real cluster (the clock is
// read after the stamp: outside the period).
//
// Protocol: JSON lines on stdin, one answer line per request on stdout.
//
//	{"start": {"targets": [{"signal": s, "averageValue": v}], "tolerance": t,
//	           "behavior": {...} | null, "minReplicas": n, "maxReplicas": m}}  -> {"ok": true}
//	{"tick": {"atMs": t, "replicas": n, "metrics": {"<signal>": v | null}}}
//	    -> {"replicas": m, "metricDesired": d, "metricError": "..."}
//
// Metric values are totals across the workload (an External metric); they and the
// targets are taken in milli-units, as the API's quantities are.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	apiv2 "k8s.io/kubernetes/pkg/apis/autoscaling/v2"
	"k8s.io/kubernetes/pkg/controller/podautoscaler"
	metricsclient "k8s.io/kubernetes/pkg/controller/podautoscaler/metrics"
)

type target struct {
	Signal       string  `json:"signal"`
	AverageValue float64 `json:"averageValue"`
}

type startIn struct {
	Targets     []target                                       `json:"targets"`
	Tolerance   *float64                                       `json:"tolerance"`
	Behavior    *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior"`
	MinReplicas *int32                                         `json:"minReplicas"`
	MaxReplicas int32                                          `json:"maxReplicas"`
}

type tickIn struct {
	AtMs     int64               `json:"atMs"`
	Replicas int32               `json:"replicas"`
	Metrics  map[string]*float64 `json:"metrics"`
}

type request struct {
	Start      *startIn `json:"start"`
	Deviations []string `json:"deviations"`
	Tick       *tickIn  `json:"tick"`
}

type tickOut struct {
	// The scale target's replicas after this reconcile.
	Replicas int32 `json:"replicas"`
	// What computeReplicasForMetrics proposed (-1: it failed, or was not reached).
	MetricDesired int32  `json:"metricDesired"`
	MetricError   string `json:"metricError,omitempty"`
	Error         string `json:"error,omitempty"`
}

// externalMetrics serves this tick's totals as External metrics.
type externalMetrics struct {
	values map[string]*float64
	at     time.Time
}

func (m *externalMetrics) GetResourceMetric(context.Context, v1.ResourceName, string, labels.Selector, string) (metricsclient.PodMetricsInfo, time.Time, error) {
	return nil, time.Time{}, fmt.Errorf("no resource metrics")
}

func (m *externalMetrics) GetRawMetric(string, string, labels.Selector, labels.Selector) (metricsclient.PodMetricsInfo, time.Time, error) {
	return nil, time.Time{}, fmt.Errorf("no pods metrics")
}

func (m *externalMetrics) GetObjectMetric(string, string, *autoscalingv2.CrossVersionObjectReference, labels.Selector) (int64, time.Time, error) {
	return 0, time.Time{}, fmt.Errorf("no object metrics")
}

func (m *externalMetrics) GetExternalMetric(name string, _ string, _ labels.Selector) ([]int64, time.Time, error) {
	v, ok := m.values[name]
	if !ok || v == nil {
		return nil, time.Time{}, fmt.Errorf("no value for %s", name)
	}
	return []int64{milli(*v)}, m.at, nil
}

func milli(v float64) int64 { return int64(math.Round(v * 1000)) }

const key = "default/workload"

type sequence struct {
	hpa     *autoscalingv2.HorizontalPodAutoscaler
	metrics *externalMetrics
	ctl     *podautoscaler.HorizontalController
	// The last tick: its time.Now() and its simulated instant.
	lastWall time.Time
	lastAt   time.Duration
}

func newSequence(s *startIn) (*sequence, error) {
	if len(s.Targets) == 0 {
		return nil, fmt.Errorf("no targets")
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "workload"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "workload"},
			MinReplicas:    s.MinReplicas,
			MaxReplicas:    s.MaxReplicas,
			Behavior:       s.Behavior,
		},
	}
	for _, t := range s.Targets {
		hpa.Spec.Metrics = append(hpa.Spec.Metrics, autoscalingv2.MetricSpec{
			Type: autoscalingv2.ExternalMetricSourceType,
			External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: t.Signal},
				Target: autoscalingv2.MetricTarget{
					Type:         autoscalingv2.AverageValueMetricType,
					AverageValue: resource.NewMilliQuantity(milli(t.AverageValue), resource.DecimalSI),
				},
			},
		})
	}
	apiv2.SetDefaults_HorizontalPodAutoscaler(hpa)
	tolerance := 0.1 // --horizontal-pod-autoscaler-tolerance
	if s.Tolerance != nil {
		tolerance = *s.Tolerance
	}
	m := &externalMetrics{}
	pods := corelisters.NewPodLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}))
	// --horizontal-pod-autoscaler-downscale-stabilization default: 5 minutes.
	ctl := podautoscaler.ConformanceController(m, pods, tolerance, 5*time.Minute)
	return &sequence{hpa: hpa, metrics: m, ctl: ctl}, nil
}

// tick is one reconcileAutoscaler of the HPA at the simulated instant atMs.
func (s *sequence) tick(t *tickIn) tickOut {
	at := time.Duration(t.AtMs) * time.Millisecond
	wall := time.Now()
	// The shift between two ticks is measured on the monotonic clock, the one the
	// upstream code's Before/After comparisons use (a wall-clock difference would carry
	// NTP adjustments into them).
	if !s.lastWall.IsZero() {
		s.ctl.ConformanceShiftTimes(key, wall.Sub(s.lastWall)-(at-s.lastAt))
	}
	s.lastWall, s.lastAt = wall, at
	defer s.ctl.ConformanceSnapTimes(key, wall, wall)
	s.metrics.values, s.metrics.at = t.Metrics, wall

	hpa := s.hpa.DeepCopy()
	scale := &autoscalingv1.Scale{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "workload"},
		Spec:       autoscalingv1.ScaleSpec{Replicas: t.Replicas},
		Status:     autoscalingv1.ScaleStatus{Replicas: t.Replicas, Selector: "app=workload"},
	}
	out := tickOut{MetricDesired: -1}

	currentReplicas := scale.Spec.Replicas
	s.ctl.ConformanceRecordInitialRecommendation(currentReplicas, key)
	desiredReplicas := int32(0)
	minReplicas := *hpa.Spec.MinReplicas
	rescale := true
	if currentReplicas == 0 && minReplicas != 0 {
		desiredReplicas = 0
		rescale = false
	} else if currentReplicas > hpa.Spec.MaxReplicas {
		desiredReplicas = hpa.Spec.MaxReplicas
	} else if currentReplicas < minReplicas {
		desiredReplicas = minReplicas
	} else {
		metricDesiredReplicas, _, err := s.ctl.ConformanceComputeReplicasForMetrics(context.Background(), hpa, scale)
		out.MetricDesired = metricDesiredReplicas
		if err != nil {
			out.MetricError = err.Error()
		}
		if err != nil && metricDesiredReplicas == -1 {
			// reconcileAutoscaler returns here: no scale, nothing recorded.
			out.Replicas = currentReplicas
			return out
		}
		if metricDesiredReplicas > desiredReplicas {
			desiredReplicas = metricDesiredReplicas
		}
		if hpa.Spec.Behavior == nil {
			desiredReplicas = s.ctl.ConformanceNormalizeDesiredReplicas(hpa, key, currentReplicas, desiredReplicas, minReplicas)
		} else {
			desiredReplicas = s.ctl.ConformanceNormalizeDesiredReplicasWithBehaviors(hpa, key, currentReplicas, desiredReplicas, minReplicas)
		}
		rescale = desiredReplicas != currentReplicas
	}
	if rescale {
		s.ctl.ConformanceStoreScaleEvent(hpa.Spec.Behavior, key, currentReplicas, desiredReplicas)
	} else {
		desiredReplicas = currentReplicas
	}
	out.Replicas = desiredReplicas
	return out
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	var seq *sequence
	answer := func(v any) {
		_ = enc.Encode(v)
		_ = out.Flush()
	}
	for in.Scan() {
		var req request
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			answer(map[string]string{"error": "bad request: " + err.Error()})
			continue
		}
		switch {
		case req.Start != nil:
			s, err := newSequence(req.Start)
			if err != nil {
				answer(map[string]string{"error": err.Error()})
				continue
			}
			seq = s
			answer(map[string]bool{"ok": true})
		case req.Tick != nil:
			if seq == nil {
				answer(map[string]string{"error": "tick before start"})
				continue
			}
			answer(seq.tick(req.Tick))
		default:
			answer(map[string]string{"error": "unknown request"})
		}
	}
}
