package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// monitoringWatchSyncTimeout bounds the wait for the ServiceMonitor and
// PrometheusRule watches to start once their CRDs appear.
const monitoringWatchSyncTimeout = 30 * time.Second

// reconcileMonitoring creates the ServiceMonitor and PrometheusRule when
// prometheus-operator's CRDs are installed. While they are missing nothing
// is requeued: one poller for the whole operator (pollMonitoringCRDs)
// notices them appear and reconciles every ChatBackend then.
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
		return ctrl.Result{}, nil
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

// monitoringCRDs is what the operator knows of the prometheus-operator
// CRDs, shared by every ChatBackend.
type monitoringCRDs struct {
	mu        sync.Mutex
	installed bool
	checked   time.Time
}

// monitoringCRDsInstalled says whether the prometheus-operator CRDs are
// served. Once seen they are assumed to stay. While they are missing the
// answer of the last discovery is reused for the recheck interval: asking
// the RESTMapper, which re-reads the API server's discovery for an unknown
// group, for each ChatBackend would cost a discovery request per
// ChatBackend reconciled.
func (r *ChatBackendReconciler) monitoringCRDsInstalled() (bool, error) {
	return r.checkMonitoringCRDs(false)
}

// checkMonitoringCRDs is monitoringCRDsInstalled; force discovers again even
// within the recheck interval (the poller's tick).
func (r *ChatBackendReconciler) checkMonitoringCRDs(force bool) (bool, error) {
	m := &r.monitoringCRDs
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.installed || (!force && !m.checked.IsZero() && time.Since(m.checked) < r.monitoringRecheckInterval()) {
		return m.installed, nil
	}
	for _, kind := range []string{monitoringv1.ServiceMonitorsKind, monitoringv1.PrometheusRuleKind} {
		_, err := r.RESTMapper().RESTMapping(monitoringv1.SchemeGroupVersion.WithKind(kind).GroupKind(), monitoringv1.Version)
		if meta.IsNoMatchError(err) {
			m.checked = time.Now()
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("discover %s: %w", kind, err)
		}
	}
	m.installed, m.checked = true, time.Now()
	return true, nil
}

func (r *ChatBackendReconciler) monitoringRecheckInterval() time.Duration {
	return orDefault(r.MonitoringRecheckInterval, DefaultMonitoringRecheckInterval)
}

// pollMonitoringCRDs looks for the prometheus-operator CRDs every recheck
// interval until they appear, then reconciles every ChatBackend once, which
// creates their ServiceMonitors and PrometheusRules and starts watching
// those kinds. One poller instead of a requeue per ChatBackend: a fleet
// without prometheus-operator is then at rest, not reconciled (Secrets
// read, children applied) every few minutes each. It runs on the leader
// only, like the controller.
func (r *ChatBackendReconciler) pollMonitoringCRDs(ctx context.Context) error {
	tick := time.NewTicker(r.monitoringRecheckInterval())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		installed, err := r.checkMonitoringCRDs(true)
		if err != nil {
			log.FromContext(ctx).Error(err, "look for the prometheus-operator CRDs")
			continue
		}
		if !installed {
			continue
		}
		select {
		case r.monitoringAppeared <- event.GenericEvent{Object: &chatv1alpha1.ChatBackend{}}:
		case <-ctx.Done():
		}
		return nil
	}
}

// allChatBackends maps the appearance of the monitoring CRDs to every
// ChatBackend.
func (r *ChatBackendReconciler) allChatBackends(ctx context.Context, _ client.Object) []reconcile.Request {
	var list chatv1alpha1.ChatBackendList
	if err := r.List(ctx, &list); err != nil {
		log.FromContext(ctx).Error(err, "list ChatBackends")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, cb := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}})
	}
	return reqs
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
