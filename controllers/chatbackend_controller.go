// Package controllers reconciles ChatBackends into the objects that run the
// chat API: an env Secret, a migrations Job per image, a Deployment, a
// PodDisruptionBudget, a Service and, when prometheus-operator is installed,
// a ServiceMonitor and a PrometheusRule. The objects themselves are built by
// package specs; this package decides when each is created and what the
// status says.
package controllers

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

const (
	// FieldOwner is the server-side apply field manager of every child.
	FieldOwner = "chatbackend-operator"

	// secretRefIndex indexes ChatBackends by the names of the Secrets they
	// reference, so a Secret event finds its ChatBackends without a scan.
	secretRefIndex = ".spec.secretRefs"

	// DefaultMonitoringRecheckInterval is how often a ChatBackend looks for
	// the prometheus-operator CRDs while they are absent. CRDs are rarely
	// installed, so a slow poll beats watching every CRD in the cluster.
	DefaultMonitoringRecheckInterval = 5 * time.Minute
	// DefaultSecretRecheckInterval backs up the Secret watch while a
	// referenced Secret is missing (the watch normally reacts first).
	DefaultSecretRecheckInterval = 2 * time.Minute

	// monitoringWatchSyncTimeout bounds the wait for the ServiceMonitor and
	// PrometheusRule watches to start once their CRDs appear.
	monitoringWatchSyncTimeout = 30 * time.Second
)

// ChatBackendReconciler reconciles a ChatBackend.
type ChatBackendReconciler struct {
	client.Client
	Scheme   *runtime.Scheme
	Recorder events.EventRecorder

	// DefaultImage runs when spec.image is unset (--default-apiserver-image).
	DefaultImage string
	// MonitoringRecheckInterval: DefaultMonitoringRecheckInterval when zero.
	MonitoringRecheckInterval time.Duration
	// SecretRecheckInterval: DefaultSecretRecheckInterval when zero.
	SecretRecheckInterval time.Duration

	// The ServiceMonitor and PrometheusRule watches can only start once their
	// CRDs exist, which may be long after the manager started.
	controller        controller.Controller
	cache             cache.Cache
	monitoringMu      sync.Mutex
	monitoringSources []source.SyncingSource
	monitoringSynced  bool
}

// Permissions of the manager, rendered into config/rbac by controller-gen.
//
// +kubebuilder:rbac:groups=chat.chatbackend.io,resources=chatbackends,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=chat.chatbackend.io,resources=chatbackends/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=chat.chatbackend.io,resources=chatbackends/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets;services,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors;prometheusrules,verbs=get;list;watch;create;update;patch;delete
//
// No permission on CustomResourceDefinitions is needed to notice
// prometheus-operator: the RESTMapper reads the discovery endpoints (/apis),
// which every authenticated client may read (system:discovery).

// scope carries what one reconcile learnt from one phase to the next and to
// the status computation.
type scope struct {
	cb *chatv1alpha1.ChatBackend
	// image is the image the spec asks for (spec.image or the default).
	image string

	// envHash is set once the env Secret is in place; empty while a
	// referenced Secret or key is missing (secretProblem says which).
	envHash       string
	secretProblem *condition

	migration migrationState
	// migrationMessage details the migration state for the conditions.
	migrationMessage string

	deployment *appsv1.Deployment
	serviceURL string

	monitoring condition
}

// condition is a status and its reason and message, before it becomes a
// metav1.Condition.
type condition struct {
	status  metav1.ConditionStatus
	reason  string
	message string
}

type migrationState int

const (
	migrationBlocked migrationState = iota // the env Secret is not ready
	migrationRunning
	migrationSucceeded
	migrationFailed
)

// Reconcile runs the phases in order. Each phase checks its own
// preconditions (no Deployment before a migration succeeded, no Job without
// the env Secret), records what it saw in the scope, and the status is
// computed from the scope at the end, whatever happened.
func (r *ChatBackendReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	cb := &chatv1alpha1.ChatBackend{}
	if err := r.Get(ctx, req.NamespacedName, cb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !cb.DeletionTimestamp.IsZero() {
		// Children carry controller owner references: the garbage
		// collector removes them.
		return ctrl.Result{}, nil
	}

	s := &scope{cb: cb, image: r.imageFor(cb)}
	before := cb.DeepCopy()
	defer func() {
		if err := r.patchStatus(ctx, s, before); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, err})
		}
	}()

	phases := []func(context.Context, *scope) (ctrl.Result, error){
		r.reconcileEnvSecret,
		r.reconcileMigration,
		r.reconcileDeployment,
		r.reconcilePodDisruptionBudget,
		r.reconcileService,
		r.reconcileMonitoring,
	}
	var (
		res  ctrl.Result
		errs []error
	)
	for _, phase := range phases {
		phaseRes, err := phase(ctx, s)
		if err != nil {
			errs = append(errs, err)
		}
		res = lowestNonZeroResult(res, phaseRes)
	}
	return res, kerrors.NewAggregate(errs)
}

func (r *ChatBackendReconciler) imageFor(cb *chatv1alpha1.ChatBackend) string {
	if cb.Spec.Image != "" {
		return cb.Spec.Image
	}
	return r.DefaultImage
}

// reconcileEnvSecret copies the referenced secret values into `<name>-env`.
// A missing Secret or key is the user's to fix, not a transient error: it
// is reported in the status and an Event, and the Secret watch (plus a slow
// requeue) brings the reconcile back, instead of an error backoff loop.
func (r *ChatBackendReconciler) reconcileEnvSecret(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	data := map[string][]byte{}
	for _, ref := range cb.Spec.EnvSecretRefs() {
		sec := &corev1.Secret{}
		err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: ref.Ref.Name}, sec)
		switch {
		case apierrors.IsNotFound(err):
			s.secretProblem = &condition{reason: chatv1alpha1.ReasonSecretNotFound,
				message: fmt.Sprintf("Secret %q referenced by %s not found", ref.Ref.Name, ref.Field)}
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("get Secret %s (%s): %w", ref.Ref.Name, ref.Field, err)
		default:
			v, ok := sec.Data[ref.Ref.Key]
			if !ok {
				s.secretProblem = &condition{reason: chatv1alpha1.ReasonSecretKeyNotFound,
					message: fmt.Sprintf("Secret %q has no key %q (referenced by %s)", ref.Ref.Name, ref.Ref.Key, ref.Field)}
			}
			data[ref.EnvName] = v
		}
		if s.secretProblem != nil {
			r.eventOnce(ctx, cb, chatv1alpha1.ConditionReady, corev1.EventTypeWarning, s.secretProblem.reason, "ResolveSecrets", s.secretProblem.message)
			return ctrl.Result{RequeueAfter: orDefault(r.SecretRecheckInterval, DefaultSecretRecheckInterval)}, nil
		}
	}
	if err := r.apply(ctx, cb, specs.EnvSecret(cb, data)); err != nil {
		return ctrl.Result{}, err
	}
	s.envHash = specs.HashData(data)
	return ctrl.Result{}, nil
}

// reconcileMigration makes sure the spec's image has been migrated before
// anything runs it. status.migratedImage records the last image whose Job
// succeeded; until the new image's Job succeeds the Deployment keeps it.
func (r *ChatBackendReconciler) reconcileMigration(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	if cb.Status.MigratedImage == s.image {
		s.migration = migrationSucceeded
		s.migrationMessage = fmt.Sprintf("image %s is migrated", s.image)
		return ctrl.Result{}, r.deleteSupersededJobs(ctx, cb, specs.MigrationJobName(cb, s.image))
	}
	if s.envHash == "" {
		s.migration = migrationBlocked
		return ctrl.Result{}, nil
	}

	name := specs.MigrationJobName(cb, s.image)
	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		// One migration at a time: two schema migrations racing on one
		// database is how schemas get corrupted. A superseded Job that is
		// still running is left to finish (interrupting a migration is
		// worse); its completion event brings us back here.
		jobs, err := r.migrationJobs(ctx, cb)
		if err != nil {
			return ctrl.Result{}, err
		}
		for i := range jobs {
			if !jobFinished(&jobs[i]) {
				s.migration = migrationRunning
				s.migrationMessage = fmt.Sprintf("waiting for Job %s (image %s) to finish before migrating to image %s",
					jobs[i].Name, jobs[i].Annotations[specs.AnnotationImage], s.image)
				return ctrl.Result{}, nil
			}
		}
		// Created once, never updated: the pod template of a Job is
		// immutable, and the Job stands for one image.
		if err := r.apply(ctx, cb, specs.MigrationJob(cb, s.image, s.envHash)); err != nil {
			return ctrl.Result{}, err
		}
		s.migration = migrationRunning
		s.migrationMessage = fmt.Sprintf("Job %s is migrating the database for image %s", name, s.image)
		r.event(ctx, cb, corev1.EventTypeNormal, "MigrationStarted", "Migrate", s.migrationMessage)
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("get Job %s: %w", name, err)
	}
	if !metav1.IsControlledBy(job, cb) {
		return ctrl.Result{}, fmt.Errorf("job %s exists and is not controlled by ChatBackend %s", name, cb.Name)
	}

	switch {
	case jobConditionTrue(job, batchv1.JobComplete):
		cb.Status.MigratedImage = s.image
		s.migration = migrationSucceeded
		s.migrationMessage = fmt.Sprintf("image %s is migrated", s.image)
		r.event(ctx, cb, corev1.EventTypeNormal, chatv1alpha1.ReasonMigrationSucceeded, "Migrate",
			fmt.Sprintf("Job %s migrated the database for image %s", name, s.image))
	case jobConditionTrue(job, batchv1.JobFailed):
		// Retry only when something changed that could make it pass: a
		// new spec generation or new secret values. Otherwise the failed
		// Job stays, for its logs, and the status says so.
		if job.Annotations[specs.AnnotationGeneration] != strconv.FormatInt(cb.Generation, 10) ||
			job.Annotations[specs.AnnotationEnvHash] != s.envHash {
			if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				return ctrl.Result{}, fmt.Errorf("delete failed Job %s to retry: %w", name, err)
			}
			s.migration = migrationRunning
			s.migrationMessage = fmt.Sprintf("retrying the migration for image %s after a spec or Secret change", s.image)
			// The delete event of the owned Job brings us back to create
			// the new one.
			return ctrl.Result{}, nil
		}
		s.migration = migrationFailed
		s.migrationMessage = fmt.Sprintf("Job %s failed: %s; the Deployment keeps image %q. Check `kubectl logs job/%s`",
			name, jobConditionMessage(job, batchv1.JobFailed), cb.Status.MigratedImage, name)
		r.eventOnce(ctx, cb, chatv1alpha1.ConditionMigrated, corev1.EventTypeWarning, chatv1alpha1.ReasonMigrationFailed, "Migrate", s.migrationMessage)
	default:
		s.migration = migrationRunning
		s.migrationMessage = fmt.Sprintf("Job %s is migrating the database for image %s", name, s.image)
	}
	return ctrl.Result{}, nil
}

// migrationJobs lists the migrations Jobs this ChatBackend controls.
func (r *ChatBackendReconciler) migrationJobs(ctx context.Context, cb *chatv1alpha1.ChatBackend) ([]batchv1.Job, error) {
	var list batchv1.JobList
	if err := r.List(ctx, &list, client.InNamespace(cb.Namespace), client.MatchingLabels{
		specs.LabelInstance: cb.Name, specs.LabelComponent: specs.ComponentMigrations,
	}); err != nil {
		return nil, fmt.Errorf("list migrations Jobs: %w", err)
	}
	jobs := list.Items[:0]
	for _, j := range list.Items {
		if metav1.IsControlledBy(&j, cb) {
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

// deleteSupersededJobs removes the finished migrations Jobs of other images
// once the current image is migrated, so Jobs and their pods do not pile up
// with every upgrade. The current image's Job stays as the record of its
// migration.
func (r *ChatBackendReconciler) deleteSupersededJobs(ctx context.Context, cb *chatv1alpha1.ChatBackend, keep string) error {
	jobs, err := r.migrationJobs(ctx, cb)
	if err != nil {
		return err
	}
	for i := range jobs {
		j := &jobs[i]
		if j.Name == keep || !jobFinished(j) {
			continue
		}
		if err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete superseded Job %s: %w", j.Name, err)
		}
	}
	return nil
}

// reconcileDeployment runs the last migrated image. Without a migrated
// image there is no Deployment yet; without the env Secret the existing
// Deployment is left untouched rather than rolled with missing values.
func (r *ChatBackendReconciler) reconcileDeployment(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	if cb.Status.MigratedImage == "" || s.envHash == "" {
		dep := &appsv1.Deployment{}
		err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}, dep)
		if err == nil && metav1.IsControlledBy(dep, cb) {
			s.deployment = dep
		} else if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("get Deployment %s: %w", cb.Name, err)
		}
		return ctrl.Result{}, nil
	}
	dep := specs.Deployment(cb, cb.Status.MigratedImage, s.envHash)
	if err := r.apply(ctx, cb, dep); err != nil {
		return ctrl.Result{}, err
	}
	s.deployment = dep
	return ctrl.Result{}, nil
}

func (r *ChatBackendReconciler) reconcilePodDisruptionBudget(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !specs.WantsPodDisruptionBudget(s.cb) {
		return ctrl.Result{}, r.deleteOwned(ctx, s.cb, &policyv1.PodDisruptionBudget{}, s.cb.Name)
	}
	return ctrl.Result{}, r.apply(ctx, s.cb, specs.PodDisruptionBudget(s.cb))
}

func (r *ChatBackendReconciler) reconcileService(ctx context.Context, s *scope) (ctrl.Result, error) {
	if err := r.apply(ctx, s.cb, specs.Service(s.cb)); err != nil {
		return ctrl.Result{}, err
	}
	s.serviceURL = specs.ServiceURL(s.cb)
	return ctrl.Result{}, nil
}

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

	var errs []error
	if wantSM {
		errs = append(errs, r.apply(ctx, cb, specs.ServiceMonitor(cb)))
	} else {
		errs = append(errs, r.deleteOwned(ctx, cb, &monitoringv1.ServiceMonitor{}, cb.Name))
	}
	if wantPR {
		rule, err := specs.PrometheusRule(cb)
		if err == nil {
			err = r.apply(ctx, cb, rule)
		}
		errs = append(errs, err)
	} else {
		errs = append(errs, r.deleteOwned(ctx, cb, &monitoringv1.PrometheusRule{}, cb.Name))
	}
	if err := kerrors.NewAggregate(errs); err != nil {
		s.monitoring = condition{metav1.ConditionFalse, chatv1alpha1.ReasonMonitoringApplyFailure, err.Error()}
		return ctrl.Result{}, err
	}
	switch {
	case wantSM && wantPR:
		s.monitoring = condition{metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled, "ServiceMonitor and PrometheusRule are in place"}
	case wantSM:
		s.monitoring = condition{metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled, "ServiceMonitor is in place; the PrometheusRule is disabled"}
	case wantPR:
		s.monitoring = condition{metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled, "PrometheusRule is in place; the ServiceMonitor is disabled"}
	default:
		s.monitoring = condition{metav1.ConditionFalse, chatv1alpha1.ReasonMonitoringDisabled, "spec.monitoring disables the ServiceMonitor and the PrometheusRule"}
	}
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

// deleteOwned deletes the object named name if this ChatBackend controls
// it; an object of the same name that someone else made is left alone.
func (r *ChatBackendReconciler) deleteOwned(ctx context.Context, cb *chatv1alpha1.ChatBackend, obj client.Object, name string) error {
	err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %T %s: %w", obj, name, err)
	}
	if !metav1.IsControlledBy(obj, cb) {
		return nil
	}
	if err := r.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %T %s: %w", obj, name, err)
	}
	return nil
}

// SetupWithManager registers the controller: it owns every child (so
// edits and deletions are reverted) and watches the Secrets the
// ChatBackends reference.
func (r *ChatBackendReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chatv1alpha1.ChatBackend{}, secretRefIndex, func(o client.Object) []string {
		cb := o.(*chatv1alpha1.ChatBackend)
		var names []string
		for _, ref := range cb.Spec.EnvSecretRefs() {
			names = append(names, ref.Ref.Name)
		}
		return names
	}); err != nil {
		return fmt.Errorf("index ChatBackends by Secret: %w", err)
	}

	c, err := ctrl.NewControllerManagedBy(mgr).
		For(&chatv1alpha1.ChatBackend{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Secret{}).
		Owns(&batchv1.Job{}).
		Owns(&appsv1.Deployment{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		Owns(&corev1.Service{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.chatBackendsForSecret)).
		Named("chatbackend").
		Build(r)
	if err != nil {
		return err
	}
	r.controller = c
	r.cache = mgr.GetCache()
	return nil
}

// chatBackendsForSecret maps a Secret to the ChatBackends referencing it.
func (r *ChatBackendReconciler) chatBackendsForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list chatv1alpha1.ChatBackendList
	if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretRefIndex: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list ChatBackends referencing Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, cb := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}})
	}
	return reqs
}

func jobConditionTrue(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func jobFinished(job *batchv1.Job) bool {
	return jobConditionTrue(job, batchv1.JobComplete) || jobConditionTrue(job, batchv1.JobFailed)
}

func jobConditionMessage(job *batchv1.Job, t batchv1.JobConditionType) string {
	for _, c := range job.Status.Conditions {
		if c.Type == t {
			if c.Message != "" {
				return c.Message
			}
			return c.Reason
		}
	}
	return ""
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// lowestNonZeroResult keeps the soonest requeue asked for by any phase.
func lowestNonZeroResult(a, b ctrl.Result) ctrl.Result {
	switch {
	case a.RequeueAfter == 0:
		return b
	case b.RequeueAfter == 0:
		return a
	case a.RequeueAfter < b.RequeueAfter:
		return a
	default:
		return b
	}
}
