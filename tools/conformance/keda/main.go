// Command keda is the upstream reference of the queue-job conformance test
// (tests/conformance/queue_job.rs): KEDA's ScaledJob decision for one poll.
//
// Upstream code, imported at the version pinned in go.mod:
//   - apis/keda/v1alpha1: ScaledJob, MinReplicaCount() / MaxReplicaCount() (the budget
//     above the minimum);
//   - pkg/scaling/scaledjob: CalculateQueueLengthAndMaxValue (per trigger, on Kubernetes
//     quantities) and IsScaledJobActive (multipleScalersCalculation, ceil);
//   - pkg/scaling/executor: NewScalingStrategy (the strategy chosen, custom's ParseFloat
//     fallback) and its GetEffectiveMaxScale.
//
// Transcribed (unexported in executor, or in the scalers package, which builds every
// scaler KEDA has): getScalingDecision's minReplicaCount branch and createJobs' count
// (the method needs a cluster client), and the scalers' GenerateMetricInMili /
// GetMetricTargetMili, which hand metric values and targets to KEDA as milli-quantities.
//
// Protocol: JSON lines on stdin, one answer line per request on stdout.
//
//	{"config": {<queue-job policy config>}, "queues": [len, ...], "running": r, "pending": p}
//	  -> {"jobs": n, "active": bool, "scaleTo": s, "maxScale": m, "effective": e}
//
// "running" counts started Jobs and "pending" Jobs not started yet; KEDA's running count
// is every unfinished Job (both), unless runningJobsIncludePending says running already
// counts them.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/go-logr/logr"
	v2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/external_metrics"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scaling/executor"
	"github.com/kedacore/keda/v2/pkg/scaling/scaledjob"
)

type queue struct {
	Signal                  string   `json:"signal"`
	TargetQueueLengthPerJob *float64 `json:"targetQueueLengthPerJob"`
	ActivationThreshold     float64  `json:"activationThreshold"`
}

type strategy struct {
	Strategy                          string          `json:"strategy"`
	CustomScalingQueueLengthDeduction *int32          `json:"customScalingQueueLengthDeduction"`
	CustomScalingRunningJobPercentage json.RawMessage `json:"customScalingRunningJobPercentage"`
	MultipleScalersCalculation        string          `json:"multipleScalersCalculation"`
}

type policyConfig struct {
	Queues                    []queue  `json:"queues"`
	TargetQueueLengthPerJob   *float64 `json:"targetQueueLengthPerJob"`
	MinReplicaCount           *int32   `json:"minReplicaCount"`
	MaxReplicaCount           *int32   `json:"maxReplicaCount"`
	ScalingStrategy           strategy `json:"scalingStrategy"`
	RunningJobsIncludePending bool     `json:"runningJobsIncludePending"`
}

type request struct {
	Config  policyConfig `json:"config"`
	Queues  []float64    `json:"queues"`
	Running int64        `json:"running"`
	Pending int64        `json:"pending"`
}

type answer struct {
	Jobs      int64  `json:"jobs"`
	Active    bool   `json:"active"`
	ScaleTo   int64  `json:"scaleTo"`
	MaxScale  int64  `json:"maxScale"`
	Effective int64  `json:"effective"`
	Error     string `json:"error,omitempty"`
}

// milli is pkg/scalers GenerateMetricInMili / GetMetricTargetMili's quantity.
func milli(v float64) *resource.Quantity {
	return resource.NewMilliQuantity(int64(v*1000), resource.DecimalSI)
}

// percentage is the CRD's string: the policy accepts a string or a number.
func percentage(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return "", fmt.Errorf("customScalingRunningJobPercentage: %v", err)
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

func decide(req *request) (answer, error) {
	c := req.Config
	pct, err := percentage(c.ScalingStrategy.CustomScalingRunningJobPercentage)
	if err != nil {
		return answer{}, err
	}
	sj := &kedav1alpha1.ScaledJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "conformance", Name: "job"},
		Spec: kedav1alpha1.ScaledJobSpec{
			MinReplicaCount: c.MinReplicaCount,
			MaxReplicaCount: c.MaxReplicaCount,
			ScalingStrategy: kedav1alpha1.ScalingStrategy{
				Strategy:                          c.ScalingStrategy.Strategy,
				CustomScalingQueueLengthDeduction: c.ScalingStrategy.CustomScalingQueueLengthDeduction,
				CustomScalingRunningJobPercentage: pct,
				MultipleScalersCalculation:        c.ScalingStrategy.MultipleScalersCalculation,
			},
		},
	}
	queues := c.Queues
	if len(queues) == 0 {
		queues = []queue{{Signal: "queue-length"}}
	}
	if len(queues) != len(req.Queues) {
		return answer{}, fmt.Errorf("%d queue lengths for %d queues", len(req.Queues), len(queues))
	}
	defaultTarget := 1.0
	if c.TargetQueueLengthPerJob != nil {
		defaultTarget = *c.TargetQueueLengthPerJob
	}
	// scale_handler.go getScaledJobMetrics: one ScalerMetrics per trigger.
	var scalers []scaledjob.ScalerMetrics
	for i, q := range queues {
		target := defaultTarget
		if q.TargetQueueLengthPerJob != nil {
			target = *q.TargetQueueLengthPerJob
		}
		name := fmt.Sprintf("s%d-queue", i)
		metrics := []external_metrics.ExternalMetricValue{{MetricName: name, Value: *milli(req.Queues[i])}}
		specs := []v2.MetricSpec{{
			Type: v2.ExternalMetricSourceType,
			External: &v2.ExternalMetricSource{
				Metric: v2.MetricIdentifier{Name: name},
				Target: v2.MetricTarget{Type: v2.AverageValueMetricType, AverageValue: milli(target)},
			},
		}}
		ql, mv, _ := scaledjob.CalculateQueueLengthAndMaxValue(metrics, specs, sj.MaxReplicaCount())
		scalers = append(scalers, scaledjob.ScalerMetrics{
			QueueLength: ql,
			MaxValue:    mv,
			// The scalers compare their raw reading with the activation threshold.
			IsActive: req.Queues[i] > q.ActivationThreshold,
		})
	}
	isActive, scaleTo, maxScale, _ := scaledjob.IsScaledJobActive(scalers, sj.Spec.ScalingStrategy.MultipleScalersCalculation, sj.MinReplicaCount(), sj.MaxReplicaCount())

	running := req.Running + req.Pending
	if c.RunningJobsIncludePending {
		running = req.Running
	}
	// scale_jobs.go getScalingDecision.
	var effective int64
	min := sj.MinReplicaCount()
	if running < min {
		scaleTo = min - running
		effective = scaleTo
	} else {
		effective, scaleTo = executor.NewScalingStrategy(logr.Discard(), sj).GetEffectiveMaxScale(maxScale, running-min, req.Pending, sj.MaxReplicaCount(), scaleTo)
	}
	if effective < 0 {
		effective = 0
	}
	// RequestJobScale -> createJobs: nothing unless active and the effective max is positive.
	var jobs int64
	if isActive && effective > 0 {
		jobs = scaleTo
		if jobs > effective {
			jobs = effective
		}
	}
	return answer{Jobs: jobs, Active: isActive, ScaleTo: scaleTo, MaxScale: maxScale, Effective: effective}, nil
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	for in.Scan() {
		var req request
		var a answer
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			a.Error = fmt.Sprintf("bad request: %v", err)
		} else if r, err := decide(&req); err != nil {
			a.Error = err.Error()
		} else {
			a = r
		}
		if err := enc.Encode(a); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}
}
