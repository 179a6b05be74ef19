package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/source"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// monitoringWatchSyncTimeout bounds the wait for the ServiceMonitor and
// PrometheusRule watches to start once their CRDs appear.
const monitoringWatchSyncTimeout = 30 * time.Second

// reconcileMonitoring creates the ServiceMonitor and PrometheusRule when
// prometheus-operator's CRDs are installed. They are looked up at every
// reconcile (the RESTMapper re-discovers unknown groups), so installing
// prometheus-operator later is picked up by the periodic requeue.
func (r *ChatBackendReconciler) reconcileMonitoring(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	wantSM := cb.Spec.Monitoring.ServiceMonitor.IsEnabled()
	wantPR := cb.Spec.Monitoring.PrometheusRule.IsEnabled()

	installed, err := r.monitoringCRDsInstalled()
	if err != nil {
		s.monitoring = condition{metav1.ConditionUnknown, chatv1alpha1.ReasonMonitoringApplyFailure, err.Error()}
		return ctrl.Result{}, err
	}
	if !installed {
		if !wantSM && !wantPR {
			s.monitoring = condition{metav1.ConditionFalse, chatv1alpha1.ReasonMonitoringDisabled, "spec.monitoring disables the ServiceMonitor and the PrometheusRule"}
			return ctrl.Result{}, nil
		}
		s.monitoring = condition{metav1.ConditionFalse, chatv1alpha1.ReasonCRDNotInstalled,
			"the monitoring.coreos.com/v1 ServiceMonitor and PrometheusRule CRDs are not installed (install prometheus-operator)"}
		return ctrl.Result{RequeueAfter: orDefault(r.MonitoringRecheckInterval, DefaultMonitoringRecheckInterval)}, nil
	}
	if err := r.watchMonitoring(ctx); err != nil {
		return ctrl.Result{}, err
	}

	var (
		errs    []error
		applied []string
	)
	if wantSM {
		sm := specs.ServiceMonitor(cb, r.MonitoringLabels)
		errs = append(errs, r.apply(ctx, cb, sm))
		applied = append(applied, fmt.Sprintf("ServiceMonitor %s with labels %s", sm.Name, labels.Set(sm.Labels)))
	} else {
		errs = append(errs, r.deleteOwned(ctx, cb, &monitoringv1.ServiceMonitor{}, cb.Name))
	}
	if wantPR {
		rule, err := specs.PrometheusRule(cb, r.MonitoringLabels)
		if err == nil {
			err = r.apply(ctx, cb, rule)
			applied = append(applied, fmt.Sprintf("PrometheusRule %s with labels %s", rule.Name, labels.Set(rule.Labels)))
		}
		errs = append(errs, err)
	} else {
		errs = append(errs, r.deleteOwned(ctx, cb, &monitoringv1.PrometheusRule{}, cb.Name))
	}
	// errors.Join, unlike an Aggregate, lets Reconcile find an
	// ownershipConflict in it.
	if err := errors.Join(errs...); err != nil {
		s.monitoring = condition{metav1.ConditionFalse, chatv1alpha1.ReasonMonitoringApplyFailure, err.Error()}
		return ctrl.Result{}, err
	}
	if len(applied) == 0 {
		s.monitoring = condition{metav1.ConditionFalse, chatv1alpha1.ReasonMonitoringDisabled, "spec.monitoring disables the ServiceMonitor and the PrometheusRule"}
		return ctrl.Result{}, nil
	}
	// The labels are in the message because they decide whether Prometheus
	// selects the objects at all, which the operator cannot see.
	s.monitoring = condition{metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled,
		"applied " + strings.Join(applied, "; ") + " (Prometheus selects them only if its serviceMonitorSelector/ruleSelector match these labels)"}
	return ctrl.Result{}, nil
}

// monitoringCRDsInstalled asks the RESTMapper, which refreshes its discovery
// data when a group is unknown, so no restart is needed after installing
// prometheus-operator.
func (r *ChatBackendReconciler) monitoringCRDsInstalled() (bool, error) {
	for _, kind := range []string{monitoringv1.ServiceMonitorsKind, monitoringv1.PrometheusRuleKind} {
		_, err := r.RESTMapper().RESTMapping(monitoringv1.SchemeGroupVersion.WithKind(kind).GroupKind(), monitoringv1.Version)
		if meta.IsNoMatchError(err) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("discover %s: %w", kind, err)
		}
	}
	return true, nil
}

// watchMonitoring starts watching ServiceMonitors and PrometheusRules the
// first time their CRDs are seen, so edits and deletions of ours are put
// back like those of the other children. Watching them from the start would
// keep the manager from starting on clusters without prometheus-operator.
func (r *ChatBackendReconciler) watchMonitoring(ctx context.Context) error {
	r.monitoringMu.Lock()
	defer r.monitoringMu.Unlock()
	if r.monitoringSynced || r.controller == nil {
		return nil
	}
	if r.monitoringSources == nil {
		owner := &chatv1alpha1.ChatBackend{}
		sources := []source.SyncingSource{
			source.Kind(r.cache, &monitoringv1.ServiceMonitor{},
				handler.TypedEnqueueRequestForOwner[*monitoringv1.ServiceMonitor](r.Scheme, r.RESTMapper(), owner, handler.OnlyControllerOwner())),
			source.Kind(r.cache, &monitoringv1.PrometheusRule{},
				handler.TypedEnqueueRequestForOwner[*monitoringv1.PrometheusRule](r.Scheme, r.RESTMapper(), owner, handler.OnlyControllerOwner())),
		}
		for _, src := range sources {
			if err := r.controller.Watch(src); err != nil {
				return fmt.Errorf("watch %s: %w", src, err)
			}
		}
		r.monitoringSources = sources
	}
	// A source added to a running controller starts asynchronously, and a
	// just-created CRD may not be served yet. Wait until the watches
	// deliver events: MonitoringReady=True must mean a deletion from now on
	// is seen. Bounded, because a reconcile must not hang; a timeout is
	// retried with backoff and the sources keep starting meanwhile.
	waitCtx, cancel := context.WithTimeout(ctx, monitoringWatchSyncTimeout)
	defer cancel()
	for _, src := range r.monitoringSources {
		if err := src.WaitForSync(waitCtx); err != nil {
			// A source that timed out is cancelled for good; start new
			// ones next time.
			r.monitoringSources = nil
			return fmt.Errorf("wait for the %s watch: %w", src, err)
		}
	}
	r.monitoringSynced = true
	return nil
}
