package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
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

	// DefaultMonitoringRecheckInterval is how often the operator looks for
	// the prometheus-operator CRDs while they are absent. CRDs are rarely
	// installed, so a slow poll beats watching every CRD in the cluster.
	DefaultMonitoringRecheckInterval = 5 * time.Minute
	// DefaultSecretRecheckInterval backs up the Secret watch while a
	// referenced Secret is missing (the watch normally reacts first).
	DefaultSecretRecheckInterval = 2 * time.Minute
	// DefaultMigrationRecheckInterval is how often a running migrations
	// Job's pods are looked at (pods are not watched): a pod stuck on an
	// image pull shows in the status within this time.
	DefaultMigrationRecheckInterval = 30 * time.Second
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
	// MigrationRecheckInterval: DefaultMigrationRecheckInterval when zero.
	MigrationRecheckInterval time.Duration
	// MonitoringLabels go on every ServiceMonitor and PrometheusRule
	// (--monitoring-labels), under those of each spec.monitoring.
	MonitoringLabels map[string]string
	// MaxConcurrentReconciles is how many ChatBackends are reconciled at
	// once (--max-concurrent-reconciles); controller-runtime's 1 when zero.
	MaxConcurrentReconciles int
	// PodUser is who the API and migrations pods run as
	// (--pod-run-as-user); 65532 when zero.
	PodUser specs.PodUser
	// RolloutDelay spaces the upgrades of the ChatBackends that follow
	// DefaultImage when it changes (--rollout-delay,
	// chatbackend_fleetrollout.go); zero upgrades them all at once.
	RolloutDelay time.Duration
	fleet        fleetRollout
	// applied lets apply leave out applies that would change nothing.
	applied appliedRecords
	// secretInputs lets reconcileEnvSecret leave out reading Secrets that
	// did not change.
	secretInputs secretInputs
	// statusWrites lets a reconcile see the status the previous one wrote
	// before the cache does.
	statusWrites statusWrites
	// ingestPresence lets removeIngest leave out looking for ingest
	// objects known to be gone.
	ingestPresence ingestPresence

	// The ServiceMonitor and PrometheusRule watches can only start once their
	// CRDs exist, which may be long after the manager started
	// (chatbackend_monitoring.go).
	controller controller.Controller
	cache      cache.Cache
	// apiReader reads from the API server, past the cache, which holds
	// only the operator's own objects (ManagerCacheOptions).
	apiReader         client.Reader
	monitoringMu      sync.Mutex
	monitoringSources []source.SyncingSource
	monitoringSynced  bool
	// monitoringCRDs is shared by every ChatBackend, and
	// monitoringAppeared reconciles them all when the CRDs appear
	// (pollMonitoringCRDs).
	monitoringCRDs     monitoringCRDs
	monitoringAppeared chan event.GenericEvent
}

// Permissions of the manager, rendered into config/rbac by controller-gen.
// Only the verbs a code path uses (rbac_test.go names each path): every
// write is a server-side apply, a PATCH (plus create when the object is
// new), so there is no update; delete only where the operator deletes
// (unused env Secrets, superseded Jobs, a PodDisruptionBudget,
// NetworkPolicy, ingest CronJob or monitoring object the spec no longer
// wants), never Deployments or Services, which the garbage collector
// removes with the ChatBackend.
//
// +kubebuilder:rbac:groups=chat.chatbackend.io,resources=chatbackends,verbs=get;list;watch
// +kubebuilder:rbac:groups=chat.chatbackend.io,resources=chatbackends/status,verbs=patch
// +kubebuilder:rbac:groups=chat.chatbackend.io,resources=chatbackends/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=monitoring.coreos.com,resources=servicemonitors;prometheusrules,verbs=get;list;watch;create;patch;delete
//
// The secure metrics endpoint (main.go, --metrics-secure) asks the API
// server who a scraper is and whether it may get /metrics.
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
//
// No permission on CustomResourceDefinitions is needed to notice
// prometheus-operator: the RESTMapper reads the discovery endpoints (/apis),
// which every authenticated client may read (system:discovery).

// phase is one step of a reconcile. It checks its own preconditions in the
// scope, records what it saw there, and asks for a requeue only to poll
// something no watch reports (a missing Secret or CRD).
type phase func(context.Context, *scope) (ctrl.Result, error)

// phases are run by every reconcile; see doc.go. The chain runs in this
// order, each phase using what the ones before it recorded in the scope.
// The independent phases write children nothing in the chain reads, and
// each records its own fields of the scope (serviceURL, monitoring), so
// they run at the same time as the chain and as each other: a new
// ChatBackend's Services and PodDisruptionBudget are written while its env
// Secret and migrations Job are, not after them. Creating a fleet, a
// reconcile mostly waits on the API server, one request after the other.
func (r *ChatBackendReconciler) phases() (chain, independent []phase) {
	return []phase{
			r.reconcileEnvSecret,
			r.reconcileMigration,
			r.reconcileDeployment,
			r.reconcileIngest,
			r.collectEnvSecrets,
		}, []phase{
			r.reconcilePodDisruptionBudget,
			r.reconcileService,
			r.reconcileNetworkPolicy,
			r.reconcileMonitoring,
		}
}

// phaseOutcome is what one phase returned.
type phaseOutcome struct {
	res ctrl.Result
	err error
}

// runPhases runs every phase (phases says in which order) and returns what
// each returned, in the order of the chain and then the independent ones.
func (r *ChatBackendReconciler) runPhases(ctx context.Context, s *scope) []phaseOutcome {
	chain, independent := r.phases()
	out := make([]phaseOutcome, len(chain)+len(independent))
	var wg sync.WaitGroup
	wg.Go(func() {
		for i, p := range chain {
			out[i].res, out[i].err = p(ctx, s)
		}
	})
	for i, p := range independent {
		wg.Go(func() { out[len(chain)+i].res, out[len(chain)+i].err = p(ctx, s) })
	}
	wg.Wait()
	return out
}

// Reconcile runs every phase, then patches the status computed from the
// scope, whatever happened. Conflicts and errors are taken in phase order,
// so the first conflict reported is that of the first phase, as when the
// phases ran one after the other. A failing phase does not stop the later ones
// (each checks its own preconditions), so one broken child does not freeze
// the others.
func (r *ChatBackendReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	cb := &chatv1alpha1.ChatBackend{}
	if err := r.Get(ctx, req.NamespacedName, cb); err != nil {
		if apierrors.IsNotFound(err) {
			forgetMetrics(req.NamespacedName)
			r.fleet.release(req.NamespacedName)
			r.applied.forget(req.NamespacedName)
			r.secretInputs.forget(req.NamespacedName)
			r.statusWrites.forget(req.NamespacedName)
			r.ingestPresence.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	cb = r.statusWrites.latest(cb)
	if !cb.DeletionTimestamp.IsZero() {
		// Children carry controller owner references: the garbage
		// collector removes them.
		return ctrl.Result{}, nil
	}

	if cb.Annotations[chatv1alpha1.AnnotationReconcile] == chatv1alpha1.ReconcileDisabled {
		err := r.patchPaused(ctx, cb)
		recordConditions(cb)
		return ctrl.Result{}, err
	}

	r.applied.begin(req.NamespacedName)
	s := &scope{cb: cb, image: r.imageFor(cb)}
	before := cb.DeepCopy()
	defer func() {
		recordDesiredReplicas(s)
		if err := r.patchStatus(ctx, s, before); err != nil {
			retErr = kerrors.NewAggregate([]error{retErr, err})
		}
		recordConditions(s.cb)
		recordIngest(s)
	}()

	var (
		res  ctrl.Result
		errs []error
	)
	for _, o := range r.runPhases(ctx, s) {
		phaseRes, err := o.res, o.err
		var conflict *ownershipConflict
		if errors.As(err, &conflict) {
			// Someone else's object is in the way: a person must act, so
			// this is status and a slow recheck, not a backoff loop.
			r.recordConflict(ctx, s, conflict)
			phaseRes, err = ctrl.Result{RequeueAfter: orDefault(r.SecretRecheckInterval, DefaultSecretRecheckInterval)}, nil
		}
		if err != nil {
			errs = append(errs, err)
		}
		res = lowestNonZeroResult(res, phaseRes)
	}
	if err := kerrors.NewAggregate(errs); err != nil {
		// controller-runtime ignores the result when there is an error
		// (and warns): the error's backoff is the requeue.
		return ctrl.Result{}, err
	}
	return res, nil
}

func (r *ChatBackendReconciler) imageFor(cb *chatv1alpha1.ChatBackend) string {
	if cb.Spec.Image != "" {
		return cb.Spec.Image
	}
	return r.DefaultImage
}

// ManagerClientOptions are the client options the manager of this
// reconciler must use (main.go and the envtest suite share them).
//
// Secrets are never read from the cache: a cached client would keep a full
// copy of every Secret in the cluster, whatever it belongs to, and a real
// cluster showed what that costs (100 unrelated 900 kB Secrets took the
// operator from 13 to 129 MiB, 200 OOM-killed it). The few Secrets a
// reconcile reads are fetched from the API server instead, and the Secret
// watches below cache metadata only.
//
// Pods are read the same way: the reconciler only looks at the pods of a
// running migrations Job, and caching every pod of the cluster for that
// would cost more than the few direct reads.
func ManagerClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}, &corev1.Pod{}}}}
}

// ManagerCacheOptions are the cache options the manager of this reconciler
// must use (main.go and the envtest suite share them): the cache holds only
// what the operator made. In a cluster shared with hundreds of other
// workloads, caching every Deployment, Job, Service and PodDisruptionBudget
// costs memory in proportion to the cluster, not to the ChatBackends, and
// the initial LIST of all of them delays the first reconcile.
//
//   - The child kinds are listed and watched with the label every child
//     carries (specs.LabelManagedBy), so only the operator's own objects are
//     cached. An object of a child's name without that label (someone
//     else's, or one whose labels were edited away) is invisible to the
//     cache; checkOwnership and deleteOwned confirm a cache miss with the
//     API server, so such an object is still neither adopted nor
//     overwritten.
//   - Secrets are cached as metadata only (ManagerClientOptions) and
//     without annotations: `kubectl apply` of a Secret stores its whole
//     data in the kubectl.kubernetes.io/last-applied-configuration
//     annotation, so metadata-only alone would still keep Secret values in
//     the heap. The Secrets a ChatBackend references carry no label of
//     ours, so their watch cannot be narrowed by a selector; name,
//     namespace, labels and owner references are all it needs.
//   - managedFields, the largest part of most objects' metadata and never
//     read by the operator, are stripped from everything cached.
//
// With watchNamespaces (--watch-namespaces) every kind is listed and watched
// in those namespaces only, so Roles there are all the access the operator
// needs; none means the whole cluster.
func ManagerCacheOptions(watchNamespaces ...string) cache.Options {
	strip := cache.TransformStripManagedFields()
	var namespaces map[string]cache.Config
	for _, ns := range watchNamespaces {
		if namespaces == nil {
			namespaces = map[string]cache.Config{}
		}
		namespaces[ns] = cache.Config{}
	}
	return cache.Options{
		DefaultNamespaces: namespaces,
		// The default covers every child kind, the ServiceMonitors and
		// PrometheusRules too, whose CRDs may only appear later (a ByObject
		// entry would need them at start-up); the two kinds not made by
		// the operator are the exceptions.
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{specs.LabelManagedBy: specs.ManagedBy}),
		DefaultTransform:     strip,
		ByObject: map[client.Object]cache.ByObject{
			&chatv1alpha1.ChatBackend{}: {Label: labels.Everything(), Transform: strip},
			&corev1.Secret{}:            {Label: labels.Everything(), Transform: stripSecretMetadata},
		},
	}
}

// stripSecretMetadata keeps of a Secret's cached metadata what the watches
// use: no annotations (see ManagerCacheOptions) and no managedFields. Data
// never reaches the cache (metadata-only watches), but a full Secret is
// cleared too, should one ever be cached by mistake.
func stripSecretMetadata(in any) (any, error) {
	switch o := in.(type) {
	case *metav1.PartialObjectMetadata:
		o.Annotations, o.ManagedFields = nil, nil
	case *corev1.Secret:
		o.Annotations, o.ManagedFields, o.Data, o.StringData = nil, nil, nil, nil
	}
	return in, nil
}

// SetupWithManager registers the controller: it owns every child (so
// edits and deletions are reverted) and watches the Secrets the
// ChatBackends reference (metadata only, see ManagerClientOptions).
// ServiceMonitors and PrometheusRules are watched later, once their CRDs
// exist (watchMonitoring).
func (r *ChatBackendReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &chatv1alpha1.ChatBackend{}, secretRefIndex, func(o client.Object) []string {
		return specs.ReferencedSecretNames(&o.(*chatv1alpha1.ChatBackend).Spec)
	}); err != nil {
		return fmt.Errorf("index ChatBackends by Secret: %w", err)
	}

	r.monitoringAppeared = make(chan event.GenericEvent)
	if err := mgr.Add(manager.RunnableFunc(r.pollMonitoringCRDs)); err != nil {
		return fmt.Errorf("add the monitoring CRD poller: %w", err)
	}
	// A child is only ever created by a reconcile of its ChatBackend, which
	// records what it made in the status it writes: the creation's watch
	// event would requeue the ChatBackend for a reconcile with nothing to do
	// (on a fleet, several per new ChatBackend: its env Secret, Job, Services
	// and PodDisruptionBudget are created at once). Changes (a Job's
	// completion, a Deployment's rollout, a hand edit) and deletions still
	// reconcile, and at start-up every ChatBackend is reconciled anyway.
	notCreated := builder.WithPredicates(predicate.Funcs{CreateFunc: func(event.CreateEvent) bool { return false }})
	c, err := ctrl.NewControllerManagedBy(mgr).
		// Annotations do not change the generation, but pausing and
		// resuming (AnnotationReconcile) and chat.chatbackend.io/retry-migration
		// must reconcile at once.
		For(&chatv1alpha1.ChatBackend{}, builder.WithPredicates(
			predicate.Or(predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Owns(&corev1.Secret{}, builder.OnlyMetadata, notCreated).
		Owns(&batchv1.Job{}, notCreated).
		Owns(&batchv1.CronJob{}, notCreated).
		// The CronJob's runs are controlled by the CronJob: their labels
		// name the ChatBackend (ingestRuns), and their creation is news.
		Watches(&batchv1.Job{}, handler.EnqueueRequestsFromMapFunc(ingestRuns)).
		Owns(&appsv1.Deployment{}, notCreated).
		Owns(&policyv1.PodDisruptionBudget{}, notCreated).
		Owns(&corev1.Service{}, notCreated).
		Owns(&networkingv1.NetworkPolicy{}, notCreated).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.chatBackendsForSecret), builder.OnlyMetadata).
		WatchesRawSource(source.Channel(r.monitoringAppeared, handler.EnqueueRequestsFromMapFunc(r.allChatBackends))).
		Named("chatbackend").
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Build(r)
	if err != nil {
		return fmt.Errorf("build the ChatBackend controller: %w", err)
	}
	r.controller = c
	r.cache = mgr.GetCache()
	r.apiReader = mgr.GetAPIReader()
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
