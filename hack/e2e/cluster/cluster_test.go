//go:build e2e && linux

// Package clustere2e is the scenario of `make e2e-cluster` on a real
// single-node cluster (hack/cluster.sh): the chart installed with the image of
// `make image`, a ChatBackend from config/samples against PostgreSQL and the
// real BetterAuth on the node's host address, requests through its Service
// from a pod and through `kubectl port-forward`, a docs site indexed by the
// operator's ingest Job (ingest_test.go), then the day-2 paths: an
// upgrade under load, a broken image, a Secret change, deletion, helm uninstall.
//
// The cluster, the images and PostgreSQL belong to hack/e2e/cluster/run.sh,
// which passes them in the environment:
//
//	KUBECONFIG, E2E_HOST_IP, E2E_DATABASE_URL, E2E_IMAGE, E2E_IMAGE_NEXT,
//	E2E_CLIENT_IMAGE, E2E_CLIENT (the client binary, for the port-forward checks)
//
// Every wait is bounded.
package clustere2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/chatbackend/chatbackend/internal/betterauthtest"
)

const (
	ns        = "e2e"
	cbName    = "docs-chat"
	release   = "chatbackend-operator"
	releaseNS = "chatbackend-system"
)

var cbGVK = schema.GroupVersionKind{Group: "chat.chatbackend.io", Version: "v1alpha1", Kind: "ChatBackend"}

type env struct {
	t        *testing.T
	ctx      context.Context
	c        client.Client
	cs       *kubernetes.Clientset
	root     string
	hostIP   string
	dbURL    string
	image    string
	next     string
	clientIm string
	client   string
	auth     *betterauthtest.Server
	token    string
	mon      *monitoring
}

func mustEnv(t *testing.T, k string) string {
	v := os.Getenv(k)
	if v == "" {
		t.Skipf("%s is not set: run through `make e2e-cluster` (hack/e2e/cluster/run.sh)", k)
	}
	return v
}

func TestCluster(t *testing.T) {
	e := &env{t: t, hostIP: mustEnv(t, "E2E_HOST_IP"), dbURL: mustEnv(t, "E2E_DATABASE_URL"),
		image: mustEnv(t, "E2E_IMAGE"), next: mustEnv(t, "E2E_IMAGE_NEXT"),
		clientIm: mustEnv(t, "E2E_CLIENT_IMAGE"), client: mustEnv(t, "E2E_CLIENT"), mon: monitoringFromEnv(t)}
	mustEnv(t, "KUBECONFIG")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	e.ctx = ctx
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	if e.c, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		t.Fatal(err)
	}
	if e.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.root, _ = filepath.Abs("../../..")

	// The real BetterAuth, on the host address so pods verify its tokens.
	e.auth = betterauthtest.StartWithOptions(t, betterauthtest.Options{Host: e.hostIP, Expiration: "1h"})
	e.auth.SignUp(t, "e2e@example.com", "E2E", "correct horse battery")
	e.token = e.auth.Token(t, "e2e@example.com", "correct horse battery")

	// A failed step stops the scenario only when later steps need what it
	// makes; the day-2 steps each end with the ChatBackend READY again, so
	// one failing (e.g. requests dropped during a rollout) still lets the
	// others run and report.
	steps := []struct {
		name     string
		fn       func(*testing.T)
		required bool
	}{
		{"prometheus-operator and a Prometheus", e.installMonitoring, false},
		{"helm install", e.helmInstall, true},
		{"ChatBackend READY", e.applyChatBackend, true},
		{"a ChatBackend whose JWKS cannot be fetched", e.startJWKSDown, false},
		{"requests through the Service from a pod", e.checkFromPod, true},
		{"requests through kubectl port-forward", e.checkPortForward, false},
		{"the operator indexes a docs site; the API answers from it", e.indexFromSite, false},
		{"upgrade under load", e.upgrade, false},
		{"broken image keeps old pods serving", e.brokenImage, false},
		{"Secret change rolls the pods", e.secretChange, false},
		{"Prometheus scrapes, loads the rules, an alert fires", e.checkMonitoring, false},
		{"deleting the ChatBackend removes what it created", e.deleteChatBackend, true},
		{"helm uninstall leaves the CRD and ChatBackends", e.helmUninstall, false},
	}
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, s.fn)
		t.Logf("phase %-50s %6.1fs", s.name, time.Since(start).Seconds())
		if !ok && s.required {
			t.FailNow()
		}
	}
}

// --- helpers ------------------------------------------------------------------------

func (e *env) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(e.ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// eventually polls cond every 500 ms for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	end := time.Now().Add(d)
	last := ""
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if msg != "" {
			last = msg
		}
		if time.Now().After(end) {
			t.Fatalf("%s: not within %s (last: %s)", what, d, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (e *env) chatBackend(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(cbGVK)
	if err := e.c.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: cbName}, u); err != nil {
		t.Fatalf("get ChatBackend: %v", err)
	}
	return u
}

func condition(u *unstructured.Unstructured, typ string) (status, reason, message string) {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return fmt.Sprint(m["status"]), fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
		}
	}
	return "", "", ""
}

// waitReady waits for Ready=True of the current generation. Ready means the
// desired state is realised (kstatus): after an image or Secret change it
// waits for the migration and the whole rollout, old pods gone, not just
// for something to serve.
func (e *env) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	eventually(t, d, "ChatBackend Ready=True", func() (bool, string) {
		u := e.chatBackend(t)
		s, r, m := condition(u, "Ready")
		gen := u.GetGeneration()
		obs, _, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
		return s == "True" && obs == gen, fmt.Sprintf("Ready=%s %s: %s (generation %d, observed %d)", s, r, m, gen, obs)
	})
}

func (e *env) patchSpec(t *testing.T, spec map[string]any) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"spec": spec})
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(cbGVK)
	u.SetNamespace(ns)
	u.SetName(cbName)
	if err := e.c.Patch(e.ctx, u, client.RawPatch(types.MergePatchType, b)); err != nil {
		t.Fatalf("patch ChatBackend: %v", err)
	}
}

// apiPods are the ChatBackend's API pods (owned by its Deployment's ReplicaSets).
func (e *env) apiPods(t *testing.T) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := e.c.List(e.ctx, &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range pods.Items {
		if len(p.OwnerReferences) > 0 && p.OwnerReferences[0].Kind == "ReplicaSet" && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (e *env) serviceURL(t *testing.T) (url string, port int32) {
	t.Helper()
	var svc corev1.Service
	if err := e.c.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: cbName}, &svc); err != nil {
		t.Fatalf("get Service: %v", err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			// No cluster DNS on this node: the ClusterIP, which kube-proxy routes.
			return fmt.Sprintf("http://%s:%d", svc.Spec.ClusterIP, p.Port), p.Port
		}
	}
	t.Fatalf("Service %s has no http port", cbName)
	return "", 0
}

// clientPod starts the client image with args; restricted pod security.
func (e *env) clientPod(t *testing.T, name string, args ...string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			// /tmp carries `client stop`'s file to `client load`.
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "client", Image: e.clientIm, ImagePullPolicy: corev1.PullNever,
				Command:      append([]string{"/client"}, args...),
				VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if err := e.c.Create(e.ctx, pod); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
}

// podResult waits for the pod to finish and returns its log; fails unless it succeeded.
func (e *env) podResult(t *testing.T, name string, d time.Duration) string {
	t.Helper()
	var phase corev1.PodPhase
	eventually(t, d, "pod "+name+" finished", func() (bool, string) {
		var p corev1.Pod
		if err := e.c.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: name}, &p); err != nil {
			return false, err.Error()
		}
		phase = p.Status.Phase
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, string(phase)
	})
	logs, err := e.cs.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{}).DoRaw(e.ctx)
	if err != nil {
		t.Fatalf("logs of %s: %v", name, err)
	}
	if phase != corev1.PodSucceeded {
		t.Fatalf("pod %s %s:\n%s", name, phase, logs)
	}
	return string(logs)
}

// --- steps ------------------------------------------------------------------------------

func (e *env) helmInstall(t *testing.T) {
	repo, tag, _ := strings.Cut(e.image, ":")
	args := []string{"install", release, filepath.Join(e.root, "charts/chatbackend-operator"),
		"--namespace", releaseNS, "--create-namespace",
		"--set", "image.repository=" + repo, "--set", "image.tag=" + tag, "--set", "image.pullPolicy=Never",
		"--wait", "--timeout", "3m"}
	e.run(t, "helm", append(args, helmMonitoringArgs()...)...)
}

func (e *env) applyChatBackend(t *testing.T) {
	if err := e.c.Create(e.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	// The sample's Secret, pointed at the PostgreSQL on the host address.
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "docs-chat-db", Namespace: ns},
		StringData: map[string]string{"url": e.dbURL, "direct-url": e.dbURL}}
	if err := e.c.Create(e.ctx, sec); err != nil {
		t.Fatal(err)
	}
	e.createSample(t)
	start := time.Now()
	e.waitReady(t, 4*time.Minute)
	t.Logf("Ready after %.1fs; pods %d", time.Since(start).Seconds(), len(e.apiPods(t)))
}

// createSample applies config/samples/chatbackend-minimal.yaml with its
// BetterAuth URL pointed at the test's server.
func (e *env) createSample(t *testing.T) {
	t.Helper()
	if err := e.c.Create(e.ctx, e.sample(t)); err != nil {
		t.Fatalf("create ChatBackend: %v", err)
	}
}

// sample is config/samples/chatbackend-minimal.yaml in namespace ns, its
// BetterAuth URL pointed at the test's server.
func (e *env) sample(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.root, "config/samples/chatbackend-minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(b, &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(ns)
	if err := unstructured.SetNestedField(u.Object, e.auth.URL, "spec", "auth", "betterAuthURL"); err != nil {
		t.Fatal(err)
	}
	return u
}

type checkResult struct {
	MeID           string   `json:"me_id"`
	ConversationID string   `json:"conversation_id"`
	Events         []string `json:"events"`
	Answer         string   `json:"answer"`
}

func assertCheck(t *testing.T, out string) {
	t.Helper()
	var r checkResult
	if err := json.Unmarshal([]byte(lastLine(out)), &r); err != nil {
		t.Fatalf("client check output %q: %v", out, err)
	}
	if r.MeID == "" || r.ConversationID == "" || r.Answer == "" {
		t.Fatalf("client check: %+v", r)
	}
	t.Logf("me %s, conversation %s, events %v, answer %.60q", r.MeID, r.ConversationID, r.Events, r.Answer)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func (e *env) checkFromPod(t *testing.T) {
	url, _ := e.serviceURL(t)
	e.clientPod(t, "client-check", "check", "-url", url, "-token", e.token)
	assertCheck(t, e.podResult(t, "client-check", 2*time.Minute))
}

func (e *env) checkPortForward(t *testing.T) {
	base, stop := e.portForward(t)
	defer stop()
	assertCheck(t, e.run(t, e.client, "check", "-url", base, "-token", e.token))
}

// portForward runs `kubectl port-forward` to the ChatBackend's Service and
// returns the local base URL, and the function that stops it.
func (e *env) portForward(t *testing.T) (base string, stop func()) {
	t.Helper()
	_, port := e.serviceURL(t)
	ctx, cancel := context.WithCancel(e.ctx)
	pf := exec.CommandContext(ctx, "kubectl", "port-forward", "-n", ns, "svc/"+cbName, fmt.Sprintf("0:%d", port))
	stdout, err := pf.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pf.Stderr = os.Stderr
	if err := pf.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	stop = func() { cancel(); _ = pf.Wait() }
	local := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				local <- m[1]
			}
		}
	}()
	select {
	case lport := <-local:
		return "http://127.0.0.1:" + lport, stop
	case <-time.After(30 * time.Second):
		stop()
		t.Fatal("kubectl port-forward printed no local port within 30s")
		return "", nil
	}
}

// migrationJobFor finds the migrations Job whose pod runs image.
func (e *env) migrationJobFor(t *testing.T, image string) *batchv1.Job {
	t.Helper()
	var jobs batchv1.JobList
	// Only the migrations Jobs: an ingest Job runs the same image, after.
	if err := e.c.List(e.ctx, &jobs, client.InNamespace(ns),
		client.MatchingLabels{"app.kubernetes.io/component": "migrations"}); err != nil {
		t.Fatal(err)
	}
	for i, j := range jobs.Items {
		for _, c := range j.Spec.Template.Spec.Containers {
			if c.Image == image {
				return &jobs.Items[i]
			}
		}
	}
	return nil
}

func (e *env) startLoad(t *testing.T, name string) {
	t.Helper()
	url, _ := e.serviceURL(t)
	e.clientPod(t, name, "load", "-url", url, "-max", "10m")
	eventually(t, time.Minute, "load pod running", func() (bool, string) {
		var p corev1.Pod
		err := e.c.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: name}, &p)
		return err == nil && p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
}

// stopLoad ends the load loop (kubectl exec of the client's stop) and returns
// its counts.
func (e *env) stopLoad(t *testing.T, name string) (requests, errors int, samples []string) {
	t.Helper()
	// `client stop` writes the stop file and exits, while `client load`
	// sees it, prints and exits; when load (the container's first process)
	// wins, the kernel kills the exec'd stop with the pod's PID namespace
	// (exit 137). That is not a failure: the load's own output below says
	// whether it stopped, and a stop that never arrived times out there.
	if out, err := exec.CommandContext(e.ctx, "kubectl", "exec", "-n", ns, name, "--", "/client", "stop").CombinedOutput(); err != nil {
		t.Logf("kubectl exec %s -- /client stop: %v (%s); reading the load's result", name, err, strings.TrimSpace(string(out)))
	}
	var r struct {
		Requests, Errors int
		Samples          []string
	}
	out := e.podResult(t, name, time.Minute)
	if err := json.Unmarshal([]byte(lastLine(out)), &r); err != nil {
		t.Fatalf("load output %q: %v", out, err)
	}
	return r.Requests, r.Errors, r.Samples
}

func (e *env) upgrade(t *testing.T) {
	e.startLoad(t, "client-load-upgrade")
	time.Sleep(3 * time.Second) // some requests before the rollout
	e.patchSpec(t, map[string]any{"image": e.next})

	// The migrations Job of the new image completes before any pod runs it.
	var jobDone time.Time
	var firstNewPod time.Time
	eventually(t, 4*time.Minute, "rollout to "+e.next, func() (bool, string) {
		if j := e.migrationJobFor(t, e.next); j != nil && j.Status.CompletionTime != nil {
			jobDone = j.Status.CompletionTime.Time
		}
		pods := e.apiPods(t)
		allNew := len(pods) > 0
		for _, p := range pods {
			if p.Spec.Containers[0].Image == e.next {
				if firstNewPod.IsZero() || p.CreationTimestamp.Time.Before(firstNewPod) {
					firstNewPod = p.CreationTimestamp.Time
				}
				if jobDone.IsZero() {
					t.Fatalf("pod %s runs %s before its migrations Job completed", p.Name, e.next)
				}
			}
			allNew = allNew && p.Spec.Containers[0].Image == e.next && ready(p)
		}
		return allNew, fmt.Sprintf("%d pods, job done %v", len(pods), !jobDone.IsZero())
	})
	if firstNewPod.Before(jobDone.Truncate(time.Second)) {
		t.Errorf("first new pod created %s, before the migrations Job completed %s", firstNewPod, jobDone)
	}
	e.waitReady(t, 2*time.Minute)
	time.Sleep(3 * time.Second) // the old pods' shutdown is part of the rollout
	n, failed, samples := e.stopLoad(t, "client-load-upgrade")
	t.Logf("rollout under load: %d requests, %d errors %v", n, failed, samples)
	if n < 100 {
		t.Errorf("only %d requests during the rollout: the load loop did not run", n)
	}
	if failed != 0 {
		t.Errorf("%d of %d requests failed during the rollout: %v", failed, n, samples)
	}
}

func (e *env) brokenImage(t *testing.T) {
	before := e.apiPods(t)
	broken := strings.SplitN(e.next, ":", 2)[0] + ":does-not-exist"
	e.patchSpec(t, map[string]any{"image": broken})
	// Why: the migrations Job's pod cannot pull the image. A bare
	// "Migrating" would leave the user waiting for a Job that never runs.
	var last string
	end := time.Now().Add(90 * time.Second)
	for {
		u := e.chatBackend(t)
		var bad []string
		for _, typ := range []string{"Ready", "Migrated", "Degraded"} {
			if st, r, m := condition(u, typ); st != "" {
				bad = append(bad, fmt.Sprintf("%s=%s %s: %s", typ, st, r, m))
			}
		}
		last = strings.Join(bad, "; ")
		if strings.Contains(strings.ToLower(last), "pull") {
			t.Logf("status: %s", last)
			break
		}
		if time.Now().After(end) {
			t.Errorf("after 90s the status does not say the image cannot be pulled: %s", last)
			break
		}
		time.Sleep(time.Second)
	}
	// The old pods still serve, unchanged.
	after := e.apiPods(t)
	if len(after) != len(before) {
		t.Errorf("pods %d before the broken image, %d after", len(before), len(after))
	}
	for _, p := range after {
		if p.Spec.Containers[0].Image != e.next || !ready(p) {
			t.Errorf("pod %s: image %s ready %v", p.Name, p.Spec.Containers[0].Image, ready(p))
		}
	}
	url, _ := e.serviceURL(t)
	e.clientPod(t, "client-check-broken", "check", "-url", url, "-token", e.token)
	assertCheck(t, e.podResult(t, "client-check-broken", 2*time.Minute))
	e.patchSpec(t, map[string]any{"image": e.next})
	e.waitReady(t, 3*time.Minute)
}

func (e *env) secretChange(t *testing.T) {
	old := map[types.UID]bool{}
	for _, p := range e.apiPods(t) {
		old[p.UID] = true
	}
	var sec corev1.Secret
	if err := e.c.Get(e.ctx, types.NamespacedName{Namespace: ns, Name: "docs-chat-db"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data["url"] = []byte(e.dbURL + "&application_name=chatbackend-e2e")
	if err := e.c.Update(e.ctx, &sec); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "pods rolled after the Secret change", func() (bool, string) {
		pods := e.apiPods(t)
		for _, p := range pods {
			if old[p.UID] || !ready(p) {
				return false, fmt.Sprintf("pod %s old=%v ready=%v", p.Name, old[p.UID], ready(p))
			}
		}
		return len(pods) > 0, ""
	})
	e.waitReady(t, 2*time.Minute)
}

// owned lists the namespace's objects owned by uid, as kind/name.
func (e *env) owned(t *testing.T, uid types.UID) []string {
	t.Helper()
	lists := map[string]client.ObjectList{
		"Deployment": &unstructured.UnstructuredList{}, "Service": &corev1.ServiceList{}, "Secret": &corev1.SecretList{},
		"ConfigMap": &corev1.ConfigMapList{}, "Job": &batchv1.JobList{}, "ServiceAccount": &corev1.ServiceAccountList{},
		"PodDisruptionBudget": &unstructured.UnstructuredList{},
	}
	lists["Deployment"].(*unstructured.UnstructuredList).SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DeploymentList"})
	lists["PodDisruptionBudget"].(*unstructured.UnstructuredList).SetGroupVersionKind(schema.GroupVersionKind{Group: "policy", Version: "v1", Kind: "PodDisruptionBudgetList"})
	var out []string
	for kind, l := range lists {
		if err := e.c.List(e.ctx, l, client.InNamespace(ns)); err != nil {
			t.Fatalf("list %s: %v", kind, err)
		}
		objs, err := metaItems(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			for _, ref := range o.GetOwnerReferences() {
				if ref.UID == uid {
					out = append(out, kind+"/"+o.GetName())
				}
			}
		}
	}
	return out
}

// metaItems are the items of any list, typed or unstructured, as objects
// with metadata.
func metaItems(l client.ObjectList) ([]metav1.Object, error) {
	items, err := meta.ExtractList(l)
	if err != nil {
		return nil, fmt.Errorf("items of %T: %w", l, err)
	}
	out := make([]metav1.Object, 0, len(items))
	for _, it := range items {
		o, err := meta.Accessor(it)
		if err != nil {
			return nil, fmt.Errorf("metadata of %T: %w", it, err)
		}
		out = append(out, o)
	}
	return out, nil
}

func (e *env) deleteChatBackend(t *testing.T) {
	u := e.chatBackend(t)
	created := e.owned(t, u.GetUID())
	t.Logf("the ChatBackend owns %v", created)
	if len(created) < 3 {
		t.Fatalf("the ChatBackend owns only %v", created)
	}
	if err := e.c.Delete(e.ctx, u); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "everything the ChatBackend created is gone", func() (bool, string) {
		left := e.owned(t, u.GetUID())
		return len(left) == 0 && len(e.apiPods(t)) == 0, fmt.Sprintf("left %v", left)
	})
}

func (e *env) helmUninstall(t *testing.T) {
	// A ChatBackend exists while the chart goes.
	e.createSample(t)
	e.waitReady(t, 3*time.Minute)
	e.run(t, "helm", "uninstall", release, "--namespace", releaseNS, "--wait", "--timeout", "2m")
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	if err := e.c.Get(e.ctx, types.NamespacedName{Name: "chatbackends.chat.chatbackend.io"}, crd); err != nil {
		t.Errorf("the CRD after helm uninstall: %v", err)
	}
	u := e.chatBackend(t)
	if u.GetDeletionTimestamp() != nil {
		t.Errorf("the ChatBackend is being deleted after helm uninstall")
	}
	var deps unstructured.UnstructuredList
	deps.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DeploymentList"})
	if err := e.c.List(e.ctx, &deps, client.InNamespace(releaseNS)); err != nil {
		t.Fatal(err)
	}
	if len(deps.Items) != 0 {
		t.Errorf("%d Deployments left in %s after helm uninstall", len(deps.Items), releaseNS)
	}
}
