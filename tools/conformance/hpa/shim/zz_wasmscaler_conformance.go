// This file is not part of Kubernetes: tools/conformance/hpa adds it to package
// k8s.io/kubernetes/pkg/controller/podautoscaler at build time (go build -overlay, see
// scripts/build-conformance.sh) so the conformance reference can call the
// HorizontalController's unexported decision steps. Thin wrappers only: every decision is
// still made by the upstream code of that package.

package podautoscaler

import (
	"context"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/record"
	metricsclient "k8s.io/kubernetes/pkg/controller/podautoscaler/metrics"
	"k8s.io/kubernetes/pkg/controller/podautoscaler/monitor"
	"k8s.io/kubernetes/pkg/controller/util/selectors"
)

// ConformanceController is a HorizontalController with only what the replica decision
// reads: the replica calculator over the given metrics client and pod lister, the
// tolerance and downscale stabilization window (the kube-controller-manager flags
// --horizontal-pod-autoscaler-tolerance and ...-downscale-stabilization), and its
// recommendation and scale-event history. No clients: the caller does the I/O.
func ConformanceController(metrics metricsclient.MetricsClient, pods corelisters.PodLister, tolerance float64, downscaleStabilisationWindow time.Duration) *HorizontalController {
	return &HorizontalController{
		tolerance:                    tolerance,
		replicaCalc:                  NewReplicaCalculator(metrics, pods, 5*time.Minute, 30*time.Second),
		eventRecorder:                &record.FakeRecorder{},
		downscaleStabilisationWindow: downscaleStabilisationWindow,
		monitor:                      monitor.New(),
		podLister:                    pods,
		recommendations:              map[string][]timestampedRecommendation{},
		scaleUpEvents:                map[string][]timestampedScaleEvent{},
		scaleDownEvents:              map[string][]timestampedScaleEvent{},
		hpaSelectors:                 selectors.NewBiMultimap(),
	}
}

// ConformanceRecordInitialRecommendation is recordInitialRecommendation.
func (a *HorizontalController) ConformanceRecordInitialRecommendation(currentReplicas int32, key string) {
	a.recordInitialRecommendation(currentReplicas, key)
}

// ConformanceComputeReplicasForMetrics is computeReplicasForMetrics.
func (a *HorizontalController) ConformanceComputeReplicasForMetrics(ctx context.Context, hpa *autoscalingv2.HorizontalPodAutoscaler, scale *autoscalingv1.Scale) (int32, string, error) {
	replicas, metric, _, _, err := a.computeReplicasForMetrics(ctx, hpa, scale, hpa.Spec.Metrics)
	return replicas, metric, err
}

// ConformanceNormalizeDesiredReplicas is normalizeDesiredReplicas (no behavior).
func (a *HorizontalController) ConformanceNormalizeDesiredReplicas(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, currentReplicas, desiredReplicas, minReplicas int32) int32 {
	return a.normalizeDesiredReplicas(hpa, key, currentReplicas, desiredReplicas, minReplicas)
}

// ConformanceNormalizeDesiredReplicasWithBehaviors is normalizeDesiredReplicasWithBehaviors.
func (a *HorizontalController) ConformanceNormalizeDesiredReplicasWithBehaviors(hpa *autoscalingv2.HorizontalPodAutoscaler, key string, currentReplicas, desiredReplicas, minReplicas int32) int32 {
	return a.normalizeDesiredReplicasWithBehaviors(hpa, key, currentReplicas, desiredReplicas, minReplicas)
}

// ConformanceStoreScaleEvent is storeScaleEvent.
func (a *HorizontalController) ConformanceStoreScaleEvent(behavior *autoscalingv2.HorizontalPodAutoscalerBehavior, key string, prevReplicas, newReplicas int32) {
	a.storeScaleEvent(behavior, key, prevReplicas, newReplicas)
}

// ConformanceShiftTimes moves every recommendation and scale event of key by shift. The
// decision steps read time.Now(); the caller simulates its own clock by moving what they
// stored along with it.
func (a *HorizontalController) ConformanceShiftTimes(key string, shift time.Duration) {
	a.retime(key, func(t time.Time) time.Time { return t.Add(shift) })
}

// ConformanceSnapTimes sets every recommendation and scale event of key stamped at or
// after from (what the last steps recorded, at time.Now()) to exactly to.
func (a *HorizontalController) ConformanceSnapTimes(key string, from, to time.Time) {
	a.retime(key, func(t time.Time) time.Time {
		if t.Before(from) {
			return t
		}
		return to
	})
}

func (a *HorizontalController) retime(key string, f func(time.Time) time.Time) {
	for i := range a.recommendations[key] {
		a.recommendations[key][i].timestamp = f(a.recommendations[key][i].timestamp)
	}
	for i := range a.scaleUpEvents[key] {
		a.scaleUpEvents[key][i].timestamp = f(a.scaleUpEvents[key][i].timestamp)
	}
	for i := range a.scaleDownEvents[key] {
		a.scaleDownEvents[key][i].timestamp = f(a.scaleDownEvents[key][i].timestamp)
	}
}
