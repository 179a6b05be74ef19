//go:build benchoperator

// Package benchoperator measures the operator on a fleet: `make
// bench-operator` (see the Makefile for the sizes it passes).
//
// BenchmarkFleet starts a real kube-apiserver and etcd (envtest), creates N
// ChatBackends across M namespaces and, in the same namespaces, unrelated
// objects (Secrets of a given size and Deployments) as a cluster shared with
// other workloads holds, and only then starts the operator: the binary built
// from main.go, as a separate process with its production flags, so what is
// measured is exactly what a cluster runs and nothing of the benchmark's own
// memory is counted. Its figures come from the operator's own /metrics:
//
//   - converge-s (also ns/op): from the operator's start until every
//     ChatBackend has converged (converged below);
//   - baseline-s: the time the benchmark takes to create the same children
//     itself, with the same client limits (QPS, burst) and the same
//     parallelism as the operator, in fresh namespaces; converge/baseline
//     is the ratio of the two;
//   - baseline-apply-s, converge/baseline-apply: the same, each child
//     written by server-side apply as the operator writes them (a POST
//     costs the API server less than an apply);
//   - heap-peak-MiB, heap-rest-MiB: go_memstats_heap_inuse_bytes, the
//     highest seen while converging and the value at rest;
//   - requests/chatbackend: rest_client_requests_total (every request the
//     process made: reads, applies, status patches, Events, watches)
//     until convergence, divided by N;
//   - rest-requests/min: the same counter over a quiet window after
//     convergence, per minute; nothing changes then, so it must be near 0;
//   - reconciles/chatbackend and cpu-s: controller_runtime_reconcile_total
//     until convergence, divided by N, and the operator's
//     process_cpu_seconds_total then (on a machine whose cores are busy,
//     what the operator computes competes with the API server it waits on).
//
// Converged, honestly: envtest runs no controller-manager and no kubelet,
// so no Job ever runs and no Deployment ever becomes available. The
// benchmark plays the Job controller, marking each migrations Job complete
// as soon as it sees it (as the controllers' envtest suite does). A
// ChatBackend counts as converged when its Migrated condition is True for
// its generation with status.migratedImage the operator's default image, and
// its Deployment (running that image), its PodDisruptionBudget, its Service
// and its metrics Service all exist. Ready itself stays False (the pods never
// become available): that is the part envtest cannot show.
//
// The benchmark runs twice, with and without the unrelated objects: the
// operator's heap must not depend on them (only the ChatBackends' own
// objects are cached, and Secrets only as metadata).
package benchoperator

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

var (
	chatBackends = flag.Int("chatbackends", 200, "ChatBackends to create")
	namespaces   = flag.Int("namespaces", 50, "namespaces they (and the unrelated objects) are spread across")
	otherSecrets = flag.Int("unrelated-secrets", 2000, "unrelated Secrets created before the operator starts")
	secretBytes  = flag.Int("secret-bytes", 100<<10, "size of each unrelated Secret's data")
	otherDeploys = flag.Int("unrelated-deployments", 500, "unrelated Deployments created before the operator starts")
	restWindow   = flag.Duration("rest-window", time.Minute, "how long requests are counted at rest, after convergence")
	breakdown    = flag.Bool("request-breakdown", false, "log the operator's requests by verb, resource and code (from the API server's audit log, which costs the API server time on the operator's side only: off for timing)")
	convergeMax  = flag.Duration("converge-timeout", 15*time.Minute, "give up when the fleet has not converged by then")
	// The operator's own defaults (main.go); the baseline client uses the
	// same, so the comparison is of the work done, not of the limits.
	qps         = flag.Float64("kube-api-qps", 50, "--kube-api-qps of the operator, and the baseline client's QPS")
	burst       = flag.Int("kube-api-burst", 100, "--kube-api-burst of the operator, and the baseline client's burst")
	concurrency = flag.Int("max-concurrent-reconciles", 4, "--max-concurrent-reconciles of the operator, and the baseline's parallelism")
)

const (
	image = "registry.example.com/chat-apiserver:bench"
	// operatorUser is who the operator is to the API server.
	operatorUser = "operator"
	// setupParallelism is how many requests the untimed setup makes at once.
	setupParallelism = 16
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(chatv1alpha1.AddToScheme(scheme))
	// envtest logs through controller-runtime; the operator's own logs go
	// to operator.log in the benchmark's temporary directory.
	ctrllog.SetLogger(logr.Discard())
}

// BenchmarkFleet: see the package comment.
func BenchmarkFleet(b *testing.B) {
	manager := buildOperator(b)
	b.Run("unrelated=0", func(b *testing.B) { benchFleet(b, manager, 0, 0) })
	b.Run(fmt.Sprintf("unrelated=%dsecrets+%ddeployments", *otherSecrets, *otherDeploys), func(b *testing.B) {
		benchFleet(b, manager, *otherSecrets, *otherDeploys)
	})
}

// buildOperator builds main.go's binary, as `make build` does.
func buildOperator(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "manager")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the operator: %v\n%s", err, out)
	}
	return bin
}

// fleetResult is what one run measured.
type fleetResult struct {
	converge, baseline      time.Duration
	baselineApply           time.Duration
	heapPeak, heapRest      float64
	requests, restPerMinute float64
	reconciles, cpuSeconds  float64
	jobsCompleted           int64
}

func benchFleet(b *testing.B, manager string, secrets, deployments int) {
	b.StopTimer()
	var results []fleetResult
	for range b.N {
		results = append(results, runFleet(b, manager, secrets, deployments))
	}
	r := results[len(results)-1]
	b.ReportMetric(r.converge.Seconds(), "converge-s")
	b.ReportMetric(r.baseline.Seconds(), "baseline-s")
	b.ReportMetric(r.converge.Seconds()/r.baseline.Seconds(), "converge/baseline")
	b.ReportMetric(r.baselineApply.Seconds(), "baseline-apply-s")
	b.ReportMetric(r.converge.Seconds()/r.baselineApply.Seconds(), "converge/baseline-apply")
	b.ReportMetric(r.heapPeak/(1<<20), "heap-peak-MiB")
	b.ReportMetric(r.heapRest/(1<<20), "heap-rest-MiB")
	b.ReportMetric(r.requests/float64(*chatBackends), "requests/chatbackend")
	b.ReportMetric(r.restPerMinute, "rest-requests/min")
	b.ReportMetric(r.reconciles/float64(*chatBackends), "reconciles/chatbackend")
	b.ReportMetric(r.cpuSeconds, "cpu-s")
}

// runFleet is one measurement on a control plane of its own. Only the
// convergence runs with the benchmark timer on.
func runFleet(b *testing.B, manager string, secrets, deployments int) fleetResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	apiServerFlags := map[string]string{}
	var auditLog string
	if *breakdown {
		var err error
		if apiServerFlags, auditLog, err = auditFlags(b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
	// envtest's default range, a /24, holds 254 Service IPs: fewer than
	// two Services per ChatBackend of a fleet. The addresses are only
	// allocated, never routed.
	apiServerFlags["service-cluster-ip-range"] = "198.18.0.0/16"
	env, cfg, err := testutil.StartEnvtest(testutil.Envtest{
		Root:           filepath.Join("..", ".."),
		CRDs:           []string{filepath.Join("..", "..", "config", "crd", "bases")},
		APIServerFlags: apiServerFlags,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	setupCfg := rest.CopyConfig(cfg)
	setupCfg.QPS, setupCfg.Burst = 1000, 2000
	c, err := client.New(setupCfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	if err := createFleet(ctx, c, "fleet", secrets, deployments); err != nil {
		b.Fatal(err)
	}
	b.Logf("setup: %d ChatBackends in %d namespaces, %d unrelated Secrets of %d bytes, %d unrelated Deployments in %s",
		*chatBackends, *namespaces, secrets, *secretBytes, deployments, time.Since(start).Round(time.Second))

	watched, err := watchFleet(ctx, setupCfg)
	if err != nil {
		b.Fatal(err)
	}
	completed := &atomic.Int64{}
	go completeJobs(ctx, watched, c, completed)

	op := startOperator(b, env, manager)
	res := fleetResult{}
	b.StartTimer()
	res.converge, res.heapPeak = waitConverged(ctx, b, watched, op)
	b.StopTimer()
	m := op.scrape(b)
	convergedAt := auditOffset(auditLog)
	res.requests, res.reconciles, res.cpuSeconds = m.requests, m.reconciles, m.cpuSeconds
	res.heapPeak = max(res.heapPeak, m.heapInUse)
	time.Sleep(*restWindow)
	rest := op.scrape(b)
	res.restPerMinute = (rest.requests - m.requests) / restWindow.Minutes()
	res.heapRest = rest.heapInUse
	res.jobsCompleted = completed.Load()
	op.stop(b)
	if *breakdown {
		lines, err := requestBreakdown(auditLog, convergedAt)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("the operator's requests until convergence (kube-apiserver audit log), by verb, resource and code:\n%s",
			strings.Join(lines, "\n"))
	}

	res.baseline = baseline(ctx, b, cfg, "baseline", create)
	res.baselineApply = baseline(ctx, b, cfg, "baseline-apply", serverSideApply)
	b.Logf("converged in %s (%d Jobs completed by the benchmark), baseline %s (by server-side apply %s); heap in use peak %.1f MiB, at rest %.1f MiB; "+
		"%.0f requests (%.1f per ChatBackend), %.2f per minute at rest; %.1f reconciles per ChatBackend, %.1f s of CPU",
		res.converge.Round(time.Millisecond), res.jobsCompleted, res.baseline.Round(time.Millisecond), res.baselineApply.Round(time.Millisecond),
		res.heapPeak/(1<<20), res.heapRest/(1<<20), res.requests, res.requests/float64(*chatBackends), res.restPerMinute,
		res.reconciles/float64(*chatBackends), res.cpuSeconds)
	return res
}

// namespace is the i-th namespace of a set.
func namespace(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i%*namespaces) }

// createFleet makes the namespaces, their database Secret, the unrelated
// objects and the ChatBackends.
func createFleet(ctx context.Context, c client.Client, prefix string, secrets, deployments int) error {
	if err := createNamespaces(ctx, c, prefix); err != nil {
		return err
	}
	payload := make([]byte, *secretBytes)
	if _, err := rand.Read(payload); err != nil {
		return fmt.Errorf("random Secret data: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallelism)
	for i := range secrets {
		g.Go(func() error {
			return c.Create(gctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace(prefix, i), Name: fmt.Sprintf("other-%d", i)},
				Data:       map[string][]byte{"payload": payload},
			})
		})
	}
	for i := range deployments {
		g.Go(func() error {
			return c.Create(gctx, unrelatedDeployment(namespace(prefix, i), fmt.Sprintf("other-%d", i)))
		})
	}
	for i := range *chatBackends {
		g.Go(func() error { return c.Create(gctx, chatBackend(namespace(prefix, i), fmt.Sprintf("chat-%d", i))) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("create the fleet: %w", err)
	}
	return nil
}

// createNamespaces makes the namespaces of a set, each with the database
// Secret its ChatBackends reference.
func createNamespaces(ctx context.Context, c client.Client, prefix string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(setupParallelism)
	for i := range *namespaces {
		ns := namespace(prefix, i)
		g.Go(func() error {
			if err := c.Create(gctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return err
			}
			return c.Create(gctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
				Data:       map[string][]byte{"url": []byte(databaseURL(ns))},
			})
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("create namespaces: %w", err)
	}
	return nil
}

func databaseURL(ns string) string { return "postgres://chat@db." + ns + "/chat" }

func chatBackend(ns, name string) *chatv1alpha1.ChatBackend {
	return &chatv1alpha1.ChatBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: chatv1alpha1.ChatBackendSpec{
			// No spec.image: the operator's default, as most fleets run.
			Auth:     chatv1alpha1.AuthSpec{BetterAuthURL: "https://auth.example.com"},
			Database: chatv1alpha1.DatabaseSpec{URLSecretRef: chatv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
		},
	}
}

func unrelatedDeployment(ns, name string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.example.com/other:1",
					Env: []corev1.EnvVar{{Name: "SOME_SETTING", Value: strings.Repeat("x", 512)}},
				}}},
			},
		},
	}
}

// completeJobs plays the Job controller: every migrations Job is marked
// complete as soon as it is seen, with the status the Job controller of
// Kubernetes 1.36 sets (its validation wants SuccessCriteriaMet before
// Complete, a start and a completion time).
func completeJobs(ctx context.Context, watched client.Reader, c client.Client, completed *atomic.Int64) {
	done := map[types.UID]bool{}
	for ctx.Err() == nil {
		var jobs batchv1.JobList
		if err := watched.List(ctx, &jobs, client.MatchingLabels{specs.LabelComponent: specs.ComponentMigrations}); err == nil {
			for i := range jobs.Items {
				job := &jobs.Items[i]
				if done[job.UID] {
					continue
				}
				if err := c.Status().Update(ctx, completeJob(job)); err == nil {
					done[job.UID] = true
					completed.Add(1)
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func completeJob(job *batchv1.Job) *batchv1.Job {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	started := metav1.NewTime(now.Add(-time.Second))
	cond := func(t batchv1.JobConditionType) batchv1.JobCondition {
		return batchv1.JobCondition{Type: t, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
			Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now}
	}
	job.Status = batchv1.JobStatus{
		StartTime: &started, CompletionTime: &now, Succeeded: 1,
		Ready: ptr.To[int32](0), Terminating: ptr.To[int32](0),
		Conditions: []batchv1.JobCondition{cond(batchv1.JobSuccessCriteriaMet), cond(batchv1.JobComplete)},
	}
	return job
}

// watchFleet starts the benchmark's own cache of what it looks at while the
// operator converges (the ChatBackends and the operator's children), synced
// before the operator starts. Polling with LISTs instead (of every
// ChatBackend, Deployment, PodDisruptionBudget and Service every half
// second, of every Job five times a second) loaded the API server during
// the operator's run only, not during the baseline's, and so counted the
// benchmark's own load against the operator.
func watchFleet(ctx context.Context, cfg *rest.Config) (cache.Cache, error) {
	watched, err := cache.New(cfg, cache.Options{
		Scheme:               scheme,
		DefaultLabelSelector: labels.SelectorFromSet(labels.Set{specs.LabelManagedBy: specs.ManagedBy}),
		ByObject:             map[client.Object]cache.ByObject{&chatv1alpha1.ChatBackend{}: {Label: labels.Everything()}},
	})
	if err != nil {
		return nil, fmt.Errorf("the benchmark's cache: %w", err)
	}
	for _, obj := range []client.Object{&chatv1alpha1.ChatBackend{}, &appsv1.Deployment{}, &policyv1.PodDisruptionBudget{}, &corev1.Service{}, &batchv1.Job{}} {
		if _, err := watched.GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("watch %T: %w", obj, err)
		}
	}
	go func() { _ = watched.Start(ctx) }()
	if !watched.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the benchmark's cache did not sync")
	}
	return watched, nil
}

// waitConverged polls until every ChatBackend has converged (package
// comment) and returns how long that took from the operator's start, and
// the highest heap in use seen meanwhile.
func waitConverged(ctx context.Context, b *testing.B, c client.Reader, op *operator) (time.Duration, float64) {
	deadline := time.Now().Add(*convergeMax)
	var heapPeak float64
	for {
		n, err := convergedCount(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		if n == *chatBackends {
			return time.Since(op.started), heapPeak
		}
		if m, err := op.metrics(); err == nil {
			heapPeak = max(heapPeak, m.heapInUse)
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d ChatBackends converged within %s", n, *chatBackends, *convergeMax)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// convergedCount counts the ChatBackends that have converged.
func convergedCount(ctx context.Context, c client.Reader) (int, error) {
	var cbs chatv1alpha1.ChatBackendList
	var deps appsv1.DeploymentList
	var pdbs policyv1.PodDisruptionBudgetList
	var svcs corev1.ServiceList
	managed := client.MatchingLabels{specs.LabelManagedBy: specs.ManagedBy}
	for _, l := range []client.ObjectList{&deps, &pdbs, &svcs} {
		if err := c.List(ctx, l, managed); err != nil {
			return 0, fmt.Errorf("list children: %w", err)
		}
	}
	if err := c.List(ctx, &cbs); err != nil {
		return 0, fmt.Errorf("list ChatBackends: %w", err)
	}
	have := map[string]bool{}
	for _, d := range deps.Items {
		if len(d.Spec.Template.Spec.Containers) > 0 && d.Spec.Template.Spec.Containers[0].Image == image {
			have["deployment/"+d.Namespace+"/"+d.Name] = true
		}
	}
	for _, p := range pdbs.Items {
		have["pdb/"+p.Namespace+"/"+p.Name] = true
	}
	for _, s := range svcs.Items {
		have["service/"+s.Namespace+"/"+s.Name] = true
	}
	n := 0
	for i := range cbs.Items {
		cb := &cbs.Items[i]
		migrated := meta.FindStatusCondition(cb.Status.Conditions, chatv1alpha1.ConditionMigrated)
		if migrated == nil || migrated.Status != metav1.ConditionTrue || migrated.ObservedGeneration != cb.Generation ||
			cb.Status.MigratedImage != image {
			continue
		}
		ns := cb.Namespace + "/"
		if have["deployment/"+ns+cb.Name] && have["service/"+ns+cb.Name] && have["service/"+ns+specs.MetricsServiceName(cb)] &&
			(have["pdb/"+ns+cb.Name] || !specs.WantsPodDisruptionBudget(cb)) {
			n++
		}
	}
	return n, nil
}

// operator is the running manager process.
type operator struct {
	cmd         *exec.Cmd
	started     time.Time
	metricsAddr string
	exited      chan error
}

// startOperator runs the manager binary against env as a cluster-admin
// user, with plain-HTTP metrics on loopback for the benchmark to read.
func startOperator(b *testing.B, env *envtest.Environment, manager string) *operator {
	user, err := env.AddUser(envtest.User{Name: operatorUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		b.Fatal(err)
	}
	op := &operator{metricsAddr: testutil.FreeAddr(b), exited: make(chan error, 1)}
	// Kept after the benchmark, to read what the operator did.
	logs, err := os.CreateTemp("", "bench-operator-*.log")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = logs.Close() })
	b.Logf("operator logs: %s", logs.Name())
	op.cmd = exec.Command(manager,
		"--kubeconfig="+path,
		"--metrics-bind-address="+op.metricsAddr,
		"--metrics-secure=false",
		"--health-probe-bind-address=0",
		"--default-apiserver-image="+image,
		fmt.Sprintf("--kube-api-qps=%g", *qps),
		fmt.Sprintf("--kube-api-burst=%d", *burst),
		fmt.Sprintf("--max-concurrent-reconciles=%d", *concurrency),
	)
	op.cmd.Stdout, op.cmd.Stderr = logs, logs
	op.started = time.Now()
	if err := op.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() { op.exited <- op.cmd.Wait() }()
	b.Cleanup(func() {
		if op.cmd.ProcessState == nil {
			_ = op.cmd.Process.Kill()
		}
	})
	return op
}

// stop ends the operator as Kubernetes does, with SIGTERM.
func (op *operator) stop(b *testing.B) {
	if err := op.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-op.exited:
		if err != nil {
			b.Fatalf("operator exited with %v", err)
		}
	case <-time.After(time.Minute):
		b.Fatal("operator did not stop within a minute of SIGTERM")
	}
}

// operatorMetrics are the figures read from the operator's /metrics.
type operatorMetrics struct{ heapInUse, requests, reconciles, cpuSeconds float64 }

func (op *operator) scrape(b *testing.B) operatorMetrics {
	m, err := op.metrics()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func (op *operator) metrics() (operatorMetrics, error) {
	resp, err := http.Get("http://" + op.metricsAddr + "/metrics")
	if err != nil {
		return operatorMetrics{}, fmt.Errorf("scrape the operator: %w", err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return operatorMetrics{}, fmt.Errorf("parse the operator's metrics: %w", err)
	}
	return operatorMetrics{
		heapInUse:  sum(families["go_memstats_heap_inuse_bytes"]),
		requests:   sum(families["rest_client_requests_total"]),
		reconciles: sum(families["controller_runtime_reconcile_total"]),
		cpuSeconds: sum(families["process_cpu_seconds_total"]),
	}, nil
}

// sum adds every series of a gauge or counter family.
func sum(mf *dto.MetricFamily) float64 {
	var total float64
	for _, m := range mf.GetMetric() {
		total += m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	return total
}

// baseline times creating the children the operator made, directly, in a
// fresh set of namespaces (prefix): for each ChatBackend its env Secret,
// migrations Job, Deployment, PodDisruptionBudget, Service and metrics
// Service, as package specs builds them, each written by write, by as many
// workers as the operator reconciles ChatBackends at once and under the same
// client limits. The ChatBackends themselves are not created (nothing would
// reconcile them; the operator has stopped), so their owner references
// point at made-up UIDs, which the API server accepts.
func baseline(ctx context.Context, b *testing.B, cfg *rest.Config, prefix string, write writeFunc) time.Duration {
	setup, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	if err := createNamespaces(ctx, setup, prefix); err != nil {
		b.Fatal(err)
	}
	limited := rest.CopyConfig(cfg)
	limited.QPS, limited.Burst = float32(*qps), *burst
	c, err := client.New(limited, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for range *concurrency {
		wg.Go(func() {
			for i := range work {
				if err := createChildren(ctx, c, prefix, i, write); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	for i := range *chatBackends {
		work <- i
	}
	close(work)
	wg.Wait()
	took := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return took
}

// writeFunc writes one new child.
type writeFunc func(context.Context, client.Client, client.Object) error

// create is the cheapest write there is: a POST.
func create(ctx context.Context, c client.Client, obj client.Object) error { return c.Create(ctx, obj) }

// serverSideApply writes as the operator does, a server-side apply PATCH
// (which costs the API server more than a POST: it tracks field ownership).
func serverSideApply(ctx context.Context, c client.Client, obj client.Object) error {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("convert %T: %w", obj, err)
	}
	delete(m, "status")
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(&unstructured.Unstructured{Object: m}),
		client.FieldOwner("bench"), client.ForceOwnership)
}

// createChildren writes the children of the i-th ChatBackend of the
// baseline set prefix.
func createChildren(ctx context.Context, c client.Client, prefix string, i int, write writeFunc) error {
	cb := chatBackend(namespace(prefix, i), fmt.Sprintf("chat-%d", i))
	cb.UID = types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i))
	data := map[string][]byte{envvar.DatabaseURL: []byte(databaseURL(cb.Namespace))}
	hash := specs.HashData(data)
	children := []client.Object{
		specs.EnvSecret(cb, data),
		specs.MigrationJob(cb, image, hash, specs.DatabaseFingerprint(data)),
		specs.Deployment(cb, image, hash),
		specs.PodDisruptionBudget(cb),
		specs.Service(cb),
		specs.MetricsService(cb),
	}
	for _, obj := range children {
		if err := controllerutil.SetControllerReference(cb, obj, scheme); err != nil {
			return fmt.Errorf("owner of %s: %w", obj.GetName(), err)
		}
		if err := write(ctx, c, obj); err != nil {
			return fmt.Errorf("write %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return nil
}
