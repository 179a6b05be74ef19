package controllers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/controllers"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

// The suite runs the real ChatBackend controller against a real
// kube-apiserver and etcd (envtest). envtest has no controller-manager: no
// Job or Deployment controller runs, so the tests set Job status themselves,
// exactly as the Job controller would.

const defaultImage = "registry.example.com/chat-apiserver:default"

var (
	scheme  = runtime.NewScheme()
	cfg     *rest.Config
	k8s     client.Client // direct, uncached: what the tests see is what is stored
	testEnv *envtest.Environment
	nsSeq   atomic.Int32
)

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(chatv1alpha1.AddToScheme(scheme))
	utilruntime.Must(monitoringv1.AddToScheme(scheme))
	utilruntime.Must(apiextensionsv1.AddToScheme(scheme))

	var err error
	testEnv, cfg, err = testutil.StartEnvtest(testutil.Envtest{
		Root:   "..",
		CRDs:   []string{filepath.Join("..", "config", "crd", "bases")},
		Scheme: scheme,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()

	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}

	// JSON logs go through reconcileErrorLog, which counts reconcile errors
	// per namespace: each test owns a namespace, so a test sees only the
	// errors of its own ChatBackends, not those of tests before it.
	var logOut io.Writer = &errorLog
	if os.Getenv("TEST_OPERATOR_LOGS") != "" {
		logOut = io.MultiWriter(&errorLog, os.Stderr)
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logOut)))
	// The tests' 1s rechecks reconcile every ChatBackend of every test each
	// second; client-go's default 20 QPS would throttle that into timeouts.
	mgrCfg := rest.CopyConfig(cfg)
	mgrCfg.QPS, mgrCfg.Burst = 500, 1000
	mgrCfg.Wrap(countStatusWrites)
	mgrCfg.Wrap(countChildRequests)
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:                 scheme,
		Client:                 controllers.ManagerClientOptions(),
		Cache:                  withoutOwnManagers(controllers.ManagerCacheOptions()),
		NewCache:               newRecordingCache,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &controllers.ChatBackendReconciler{
		Client:       mgr.GetClient(),
		Scheme:       mgr.GetScheme(),
		Recorder:     mgr.GetEventRecorder("chatbackend-operator"),
		DefaultImage: defaultImage,
		// Short, so "CRDs installed later" and "Secret created later" are
		// observed within the tests' timeouts even without a watch event.
		MonitoringRecheckInterval: time.Second,
		SecretRecheckInterval:     time.Second,
		MigrationRecheckInterval:  time.Second,
		// As --monitoring-labels=release=kps would.
		MonitoringLabels: map[string]string{"release": "kps"},
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager stopped with:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// ownManagerLabel marks the ChatBackends of a test that runs managers of its
// own (startOwnManager), to restart the operator with other settings: the
// suite's manager leaves them alone, as if it were not running.
const ownManagerLabel = "test.chatbackend.io/own-manager"

// withoutOwnManagers narrows the ChatBackend cache of the suite's manager to
// those without ownManagerLabel.
func withoutOwnManagers(opts cache.Options) cache.Options {
	notOwn, err := labels.NewRequirement(ownManagerLabel, selection.DoesNotExist, nil)
	utilruntime.Must(err)
	for obj, by := range opts.ByObject {
		if _, ok := obj.(*chatv1alpha1.ChatBackend); ok {
			by.Label = labels.NewSelector().Add(*notOwn)
			opts.ByObject[obj] = by
		}
	}
	return opts
}

// startOwnManager runs a manager of r (the test sets DefaultImage and the
// like) restricted to namespace ns, as main.go sets one up, until the
// returned stop is called (or the test ends).
func startOwnManager(t *testing.T, ns string, r *controllers.ChatBackendReconciler) (stop func()) {
	t.Helper()
	mgrCfg := rest.CopyConfig(cfg)
	mgrCfg.QPS, mgrCfg.Burst = 500, 1000
	cacheOpts := controllers.ManagerCacheOptions()
	cacheOpts.DefaultNamespaces = map[string]cache.Config{ns: {}}
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:                 scheme,
		Client:                 controllers.ManagerClientOptions(),
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		// The suite's manager has a controller of the same name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	r.Client, r.Scheme, r.Recorder = mgr.GetClient(), mgr.GetScheme(), mgr.GetEventRecorder("chatbackend-operator")
	ctx, cancel := context.WithCancel(context.Background())
	ExpectWithOffset(1, r.SetupWithManager(ctx, mgr)).To(Succeed())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			ExpectWithOffset(1, <-done).To(Succeed(), "manager stopped with an error")
		})
	}
	t.Cleanup(stop)
	return stop
}

// reconcileErrorLog counts controller-runtime's "Reconciler error" log lines
// by the namespace of the reconciled object.
type reconcileErrorLog struct {
	mu    sync.Mutex
	byNS  map[string]int
	carry []byte
}

var errorLog reconcileErrorLog

func (l *reconcileErrorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.carry = append(l.carry, p...)
	for {
		i := bytes.IndexByte(l.carry, '\n')
		if i < 0 {
			return len(p), nil
		}
		var line struct {
			Msg       string `json:"msg"`
			Namespace string `json:"namespace"`
		}
		if json.Unmarshal(l.carry[:i], &line) == nil && line.Msg == "Reconciler error" {
			if l.byNS == nil {
				l.byNS = map[string]int{}
			}
			l.byNS[line.Namespace]++
		}
		l.carry = l.carry[i+1:]
	}
}

func (l *reconcileErrorLog) count(ns string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byNS[ns]
}

// cachedTypes records the types the manager's cache was asked to hold in
// full (informers started, reads served), so a test can tell which objects
// the operator keeps a copy of.
var cachedTypes sync.Map // reflect type name → true

type recordingCache struct{ cache.Cache }

// chatBackendReads counts the manager's cache reads of ChatBackends, by
// namespace: each reconcile starts with one, so it tells a test that its
// ChatBackend was reconciled, also by a reconcile that sent no request.
var chatBackendReads sync.Map // namespace → *atomic.Int64

// ingestReads counts the manager's cache reads of ingest objects (a
// CronJob looked up, ingest Jobs listed), by namespace.
var ingestReads sync.Map // namespace → *atomic.Int64

func ingestReadCount(ns string) int64 {
	n, _ := ingestReads.LoadOrStore(ns, new(atomic.Int64))
	return n.(*atomic.Int64).Load()
}

func countIngestRead(ns string) {
	n, _ := ingestReads.LoadOrStore(ns, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

func reconcileCount(ns string) int64 {
	n, _ := chatBackendReads.LoadOrStore(ns, new(atomic.Int64))
	return n.(*atomic.Int64).Load()
}

// mgrCache is the manager's cache, for tests that check what it holds.
var mgrCache cache.Cache

func newRecordingCache(cfg *rest.Config, opts cache.Options) (cache.Cache, error) {
	c, err := cache.New(cfg, opts)
	mgrCache = c
	return recordingCache{c}, err
}

// statusWrites counts the manager's requests to the ChatBackend status
// subresource, by namespace.
var statusWrites sync.Map // namespace → *atomic.Int64

func statusWriteCount(ns string) int64 {
	n, _ := statusWrites.LoadOrStore(ns, new(atomic.Int64))
	return n.(*atomic.Int64).Load()
}

func countStatusWrites(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		// /apis/chat.chatbackend.io/v1alpha1/namespaces/<ns>/chatbackends/<name>/status
		parts := strings.Split(req.URL.Path, "/")
		if req.Method != http.MethodGet && len(parts) == 9 && parts[6] == "chatbackends" && parts[8] == "status" {
			n, _ := statusWrites.LoadOrStore(parts[5], new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
		return rt.RoundTrip(req)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// childRequests counts the manager's requests to the children of
// ChatBackends, by namespace, method and resource ("PATCH services").
var childRequests sync.Map // "namespace method resource" → *atomic.Int64

func childRequestCount(ns, method, resource string) int64 {
	n, _ := childRequests.LoadOrStore(ns+" "+method+" "+resource, new(atomic.Int64))
	return n.(*atomic.Int64).Load()
}

func countChildRequests(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		// /api/v1/namespaces/<ns>/<resource>/<name>, /apis/<group>/<version>/namespaces/<ns>/<resource>/<name>
		parts := strings.Split(req.URL.Path, "/")
		for i := 0; i+3 < len(parts); i++ {
			if parts[i] == "namespaces" && parts[i+2] != "chatbackends" {
				n, _ := childRequests.LoadOrStore(parts[i+1]+" "+req.Method+" "+parts[i+2], new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				break
			}
		}
		return rt.RoundTrip(req)
	})
}

func (c recordingCache) record(obj runtime.Object) { cachedTypes.Store(fmt.Sprintf("%T", obj), true) }

func (c recordingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	c.record(obj)
	if _, ok := obj.(*chatv1alpha1.ChatBackend); ok {
		n, _ := chatBackendReads.LoadOrStore(key.Namespace, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	if _, ok := obj.(*batchv1.CronJob); ok {
		countIngestRead(key.Namespace)
	}
	return c.Cache.Get(ctx, key, obj, opts...)
}

func (c recordingCache) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	c.record(list)
	if _, ok := list.(*batchv1.JobList); ok {
		lo := (&client.ListOptions{}).ApplyOptions(opts)
		// The selector also names the instance: ask what it requires of
		// the component label, not whether a set of that label alone matches.
		if v, ok := lo.LabelSelector.RequiresExactMatch(specs.LabelComponent); lo.LabelSelector != nil && ok && v == specs.ComponentIngest {
			countIngestRead(lo.Namespace)
		}
	}
	return c.Cache.List(ctx, list, opts...)
}

func (c recordingCache) GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error) {
	c.record(obj)
	return c.Cache.GetInformer(ctx, obj, opts...)
}

// --- helpers shared by the tests ---

const (
	timeout  = 15 * time.Second
	interval = 50 * time.Millisecond
)

// newNamespace gives each test its own namespace: envtest never deletes
// namespaces, so tests must not share names.
func newNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", nsSeq.Add(1), time.Now().UnixNano()%100000)
	ExpectWithOffset(1, k8s.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	// Without a namespace controller nothing in it is ever deleted; remove
	// the ChatBackends so that they stop being reconciled during later tests.
	t.Cleanup(func() {
		_ = k8s.DeleteAllOf(context.Background(), &chatv1alpha1.ChatBackend{}, client.InNamespace(name))
	})
	return name
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func chatBackend(ns, name, image string) *chatv1alpha1.ChatBackend {
	return &chatv1alpha1.ChatBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: chatv1alpha1.ChatBackendSpec{
			Image: image,
			Auth:  chatv1alpha1.AuthSpec{BetterAuthURL: "https://auth.example.com"},
			Database: chatv1alpha1.DatabaseSpec{
				URLSecretRef: chatv1alpha1.SecretKeyRef{Name: "db", Key: "url"},
			},
		},
	}
}

func key(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

// getCB returns the current ChatBackend.
func getCB(g Gomega, ns, name string) *chatv1alpha1.ChatBackend {
	cb := &chatv1alpha1.ChatBackend{}
	g.Expect(k8s.Get(context.Background(), key(ns, name), cb)).To(Succeed())
	return cb
}

// eventuallyCondition waits until condition t of the ChatBackend has status
// and reason, for the current generation, and returns it.
func eventuallyCondition(t *testing.T, ns, name, condType string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	return eventuallyConditionWith(t, ns, name, condType, status, reason, "")
}

// eventuallyConditionWith is eventuallyCondition whose message must also
// contain substr.
func eventuallyConditionWith(t *testing.T, ns, name, condType string, status metav1.ConditionStatus, reason, substr string) metav1.Condition {
	t.Helper()
	var got metav1.Condition
	EventuallyWithOffset(2, func(g Gomega) {
		cb := getCB(g, ns, name)
		c := meta.FindStatusCondition(cb.Status.Conditions, condType)
		g.Expect(c).NotTo(BeNil(), "condition %s", condType)
		g.Expect(c.ObservedGeneration).To(Equal(cb.Generation), "condition %s observed generation", condType)
		g.Expect(c.Status).To(Equal(status), "condition %s: %s", condType, c.Message)
		g.Expect(c.Reason).To(Equal(reason), "condition %s: %s", condType, c.Message)
		g.Expect(c.Message).To(ContainSubstring(substr), "condition %s", condType)
		got = *c
	}, timeout, interval).Should(Succeed())
	return got
}

// finishJob sets the status the Job controller of Kubernetes 1.36 sets: its
// status validation demands SuccessCriteriaMet before Complete (FailureTarget
// before Failed), a start time, and a completion time on success.
func finishJob(t *testing.T, ns, name string, succeed bool) {
	t.Helper()
	finishJobAt(t, ns, name, succeed, time.Now())
}

// finishJobAt is finishJob as if the Job had finished at at.
func finishJobAt(t *testing.T, ns, name string, succeed bool, at time.Time) {
	t.Helper()
	EventuallyWithOffset(2, func(g Gomega) {
		job := &batchv1.Job{}
		g.Expect(k8s.Get(context.Background(), key(ns, name), job)).To(Succeed())
		start := metav1.NewTime(at.Add(-time.Minute).Truncate(time.Second))
		now := metav1.NewTime(at.Truncate(time.Second))
		if job.Status.StartTime == nil { // immutable once set (failPodOnce)
			job.Status.StartTime = &start
		}
		job.Status.Active = 0
		job.Status.Ready = ptr.To[int32](0)
		job.Status.Terminating = ptr.To[int32](0)
		cond := func(t batchv1.JobConditionType, reason, msg string) batchv1.JobCondition {
			return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: reason, Message: msg,
				LastProbeTime: now, LastTransitionTime: now}
		}
		if succeed {
			job.Status.Succeeded = 1
			job.Status.CompletionTime = &now
			job.Status.Conditions = []batchv1.JobCondition{
				cond(batchv1.JobSuccessCriteriaMet, "CompletionsReached", "Reached expected number of succeeded pods"),
				cond(batchv1.JobComplete, "CompletionsReached", "Reached expected number of succeeded pods"),
			}
		} else {
			job.Status.Failed = 3
			job.Status.Conditions = []batchv1.JobCondition{
				cond(batchv1.JobFailureTarget, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"),
				cond(batchv1.JobFailed, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit"),
			}
		}
		g.Expect(k8s.Status().Update(context.Background(), job)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

// startJobPod makes what the Job controller and the kubelet would: a pod
// of Job name whose container is in state, and returns it. A pod not yet
// terminated is counted in the Job's status.active, as the Job controller
// counts it (the operator looks at a Job's pods only while it has some).
func startJobPod(t *testing.T, ns, name string, state corev1.ContainerState) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	job := &batchv1.Job{}
	ExpectWithOffset(1, k8s.Get(ctx, key(ns, name), job)).To(Succeed())
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("%s-%d", name, podSeq.Add(1)), Labels: map[string]string{batchv1.JobNameLabel: name}},
		Spec:       job.Spec.Template.Spec,
	}
	ExpectWithOffset(1, controllerutil.SetControllerReference(job, pod, scheme)).To(Succeed())
	ExpectWithOffset(1, k8s.Create(ctx, pod)).To(Succeed())
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: specs.ContainerName, Image: job.Spec.Template.Spec.Containers[0].Image, State: state}}
	ExpectWithOffset(1, k8s.Status().Update(ctx, pod)).To(Succeed())
	if state.Terminated == nil {
		EventuallyWithOffset(1, func(g Gomega) {
			g.Expect(k8s.Get(ctx, key(ns, name), job)).To(Succeed())
			start := metav1.NewTime(time.Now().Truncate(time.Second))
			job.Status.StartTime = &start
			job.Status.Active = 1
			job.Status.Ready = ptr.To[int32](0)
			job.Status.Terminating = ptr.To[int32](0)
			g.Expect(k8s.Status().Update(ctx, job)).To(Succeed())
		}, timeout, interval).Should(Succeed())
	}
	return pod
}

var podSeq atomic.Int64

// migrationJobName is the Job that migrates image for cb on the database
// of DATABASE_URL dbURL (without a direct URL).
func migrationJobName(cb *chatv1alpha1.ChatBackend, image, dbURL string) string {
	return specs.MigrationJobName(cb, image, specs.DatabaseFingerprint(map[string][]byte{envvar.DatabaseURL: []byte(dbURL)}))
}

// envSecretName is cb's env Secret holding only DATABASE_URL dbURL.
func envSecretName(cb *chatv1alpha1.ChatBackend, dbURL string) string {
	return specs.EnvSecretName(cb, specs.HashData(map[string][]byte{envvar.DatabaseURL: []byte(dbURL)}))
}

// failPodOnce sets the status of a Job whose pod failed once and is being
// retried within the Job's backoffLimit: status.failed is 1 but there is no
// Failed condition, because the Job itself has not failed (yet).
func failPodOnce(t *testing.T, ns, name string) {
	t.Helper()
	EventuallyWithOffset(1, func(g Gomega) {
		job := &batchv1.Job{}
		g.Expect(k8s.Get(context.Background(), key(ns, name), job)).To(Succeed())
		start := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
		job.Status.StartTime = &start
		job.Status.Active = 1
		job.Status.Ready = ptr.To[int32](0)
		job.Status.Terminating = ptr.To[int32](0)
		job.Status.Failed = 1
		job.Status.Conditions = nil
		g.Expect(k8s.Status().Update(context.Background(), job)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

// eventsOf lists "Reason: message" of the Events on the ChatBackend.
func eventsOf(g Gomega, ns, name string) []string {
	var list corev1.EventList
	g.Expect(k8s.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "ChatBackend" && e.InvolvedObject.Name == name {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

// eventuallyEvent waits for an Event on the ChatBackend with reason whose
// note contains substr.
func eventuallyEvent(t *testing.T, ns, name, reason, substr string) {
	t.Helper()
	EventuallyWithOffset(1, func(g Gomega) {
		g.Expect(eventsOf(g, ns, name)).To(ContainElement(And(HavePrefix(reason+": "), ContainSubstring(substr))),
			"no %s event containing %q", reason, substr)
	}, timeout, interval).Should(Succeed())
}

// reconcileErrors is how many reconciles of ChatBackends in namespace ns
// returned an error so far. User mistakes such as a missing Secret, and a
// cluster without prometheus-operator, must not count: they are status, not
// errors retried with backoff.
func reconcileErrors(ns string) int { return errorLog.count(ns) }
