package controllers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
	"github.com/chatbackend/chatbackend/controllers"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

const ingestImage = "registry.example.com/chat-apiserver:v1"

// ingestSpec is a private git source and a site.
// ingestingChatBackend is ChatBackend "chat" in ns with ingestSpec.
func ingestingChatBackend(ns string) *chatv1alpha1.ChatBackend {
	cb := chatBackend(ns, "chat", ingestImage)
	cb.Spec.Ingest = ingestSpec()
	return cb
}

func ingestSpec() *chatv1alpha1.IngestSpec {
	return &chatv1alpha1.IngestSpec{Sources: []chatv1alpha1.IngestSource{
		{Name: "product", Git: &chatv1alpha1.GitSource{URL: "https://git.example.com/product.git", Ref: "main", Path: "docs",
			SiteURL: "https://docs.example.com/", SecretRef: &chatv1alpha1.LocalSecretRef{Name: "git-token"}}},
		{Name: "blog", Site: &chatv1alpha1.SiteSource{URL: "https://blog.example.com/"}},
	}}
}

// ingestJobOf is the name of the Job the sources of the current spec run
// in at once.
func ingestJobOf(g Gomega, ns string) string {
	name, err := specs.IngestJobName(getCB(g, ns, "chat"), ingestImage)
	g.Expect(err).NotTo(HaveOccurred())
	return name
}

// endRun makes what the kubelet and the Job controller would for a run of
// Job name: a pod whose container terminated with exitCode and message,
// then the Job's Complete or Failed condition.
func endRun(t *testing.T, ns, name string, exitCode int32, message string) {
	t.Helper()
	startJobPod(t, ns, name, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: exitCode, Message: message, FinishedAt: metav1.NewTime(time.Now().Truncate(time.Second)),
	}})
	finishJob(t, ns, name, exitCode == 0)
}

func indexed(g Gomega, ns string) *metav1.Condition {
	return meta.FindStatusCondition(getCB(g, ns, "chat").Status.Conditions, chatv1alpha1.ConditionIndexed)
}

// TestIngestRuns: with spec.ingest the operator runs `chat-apiserver
// ingest` once the image is migrated (a CronJob and a Job right away),
// again on a change of the sources, and tells from the runs' Jobs and their
// pods' termination messages what the index holds.
func TestIngestRuns(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://app@db/chat"}))).To(Succeed())
	cb := ingestingChatBackend(ns)
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	// Gated on the migration: nothing runs on an unmigrated schema.
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionIndexed, metav1.ConditionFalse, chatv1alpha1.ReasonIngestPending, "migrated")
	Consistently(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat-ingest"), &batchv1.CronJob{}))
	}, time.Second, interval).Should(BeTrue(), "no CronJob before the migration")
	var jobs batchv1.JobList
	Expect(k8s.List(ctx, &jobs, client.InNamespace(ns), client.MatchingLabels{specs.LabelComponent: specs.ComponentIngest})).To(Succeed())
	Expect(jobs.Items).To(BeEmpty(), "no ingest Job before the migration")

	migrate(t, ns, cb, "postgres://app@db/chat")

	cj := &batchv1.CronJob{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat-ingest"), cj) }, timeout, interval).Should(Succeed())
	Expect(cj.Spec.Schedule).To(Equal(chatv1alpha1.DefaultIngestSchedule))
	Expect(cj.Spec.ConcurrencyPolicy).To(Equal(batchv1.ForbidConcurrent))
	Expect(cj.Spec.Suspend).To(HaveValue(BeFalse()))
	Expect(metav1.IsControlledBy(cj, getCB(Default, ns, "chat"))).To(BeTrue())
	c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	Expect(c.Image).To(Equal(ingestImage))
	Expect(c.Args).To(Equal([]string{"ingest"}))
	Expect(c.TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError))
	Expect(c.EnvFrom[len(c.EnvFrom)-1].SecretRef.Name).To(Equal(envSecretName(cb, "postgres://app@db/chat")))

	first := ingestJobOf(Default, ns)
	job := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, first), job) }, timeout, interval).Should(Succeed())
	var sources string
	for _, e := range job.Spec.Template.Spec.Containers[0].Env {
		if e.Name == envvar.IngestSources {
			sources = e.Value
		}
	}
	parsed, err := source.Parse(sources)
	Expect(err).NotTo(HaveOccurred())
	Expect(parsed).To(HaveLen(2))
	eventuallyEvent(t, ns, "chat", "IngestStarted", first)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionIndexed, metav1.ConditionFalse, chatv1alpha1.ReasonIngestPending, first+" is indexing")

	// The run succeeds: its summary becomes status.ingest, Indexed=True.
	endRun(t, ns, first, 0, `{"pages":12,"chunks":80,"added":80,"updated":0,"removed":0,"errors":1,"message":"1 page failed: /broken: 404"}`)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionIndexed, metav1.ConditionTrue, chatv1alpha1.ReasonIngestSucceeded, "indexed 12 pages")
	st := getCB(Default, ns, "chat").Status.Ingest
	Expect(st).NotTo(BeNil())
	Expect(st.LastSuccessTime).NotTo(BeNil())
	Expect(st.LastScheduleTime).NotTo(BeNil())
	Expect(st.LastResult).To(Equal(&chatv1alpha1.IngestResult{Job: first, Succeeded: ptr.To(true), Pages: ptr.To[int32](12),
		Chunks: ptr.To[int32](80), ChunksAdded: ptr.To[int32](80), ChunksUpdated: ptr.To[int32](0), ChunksRemoved: ptr.To[int32](0),
		Errors: ptr.To[int32](1)}))
	Expect(st.Message).To(ContainSubstring("/broken: 404"))
	// The operator's metrics: the last success, and three hourly intervals.
	Eventually(func() map[string]float64 { return ingestSeries(ns, "chat") }, timeout, interval).Should(Equal(map[string]float64{
		controllers.IngestLastSuccessMetric: float64(st.LastSuccessTime.Unix()),
		controllers.IngestMaxAgeMetric:      3 * 3600,
	}))

	// A change of the sources runs again at once; the finished Job of the
	// old sources goes.
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Ingest.Sources[1].Site.MaxPages = 50 })
	second := ingestJobOf(Default, ns)
	Expect(second).NotTo(Equal(first))
	Eventually(func() error { return k8s.Get(ctx, key(ns, second), &batchv1.Job{}) }, timeout, interval).Should(Succeed())
	Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, key(ns, first), &batchv1.Job{})) }, timeout, interval).
		Should(BeTrue(), "the superseded Job is deleted")

	// It fails before writing a summary: its last log lines say why, in
	// the condition and in one Warning Event.
	endRun(t, ns, second, 1, "level=ERROR msg=\"clone https://git.example.com/product.git: authentication required\"")
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionIndexed, metav1.ConditionFalse, chatv1alpha1.ReasonIngestFailed, "authentication required")
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonIngestFailed, second)
	// More reconciles (an annotation change brings one) record no more.
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Annotations = map[string]string{"touch": "1"} })
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Annotations = map[string]string{"touch": "2"} })
	Consistently(func(g Gomega) int { return countEvents(g, ns, chatv1alpha1.ReasonIngestFailed) }, 2*time.Second, interval).
		Should(Equal(1), "one Event per failed run")
	Expect(getCB(Default, ns, "chat").Status.Ingest.LastSuccessTime).To(Equal(st.LastSuccessTime), "the last success stays")

	// A scheduled run (the CronJob's Job; envtest has no CronJob
	// controller, so the test makes it) leaves an empty index.
	scheduled := cronRun(t, ns, "chat-ingest-29000000")
	endRun(t, ns, scheduled, 0, `{"pages":0,"chunks":0,"added":0,"updated":0,"removed":80,"errors":0}`)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionIndexed, metav1.ConditionFalse, chatv1alpha1.ReasonIndexEmpty, "index is empty")
	Expect(getCB(Default, ns, "chat").Status.Ingest.LastSuccessTime.Before(st.LastSuccessTime)).To(BeFalse())

	// Removing spec.ingest removes the CronJob and the status.
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Ingest = nil })
	Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat-ingest"), &batchv1.CronJob{})) }, timeout, interval).
		Should(BeTrue(), "the CronJob goes with spec.ingest")
	Eventually(func(g Gomega) {
		g.Expect(indexed(g, ns)).To(BeNil())
		g.Expect(getCB(g, ns, "chat").Status.Ingest).To(BeNil())
	}, timeout, interval).Should(Succeed())
	Eventually(func() map[string]float64 { return ingestSeries(ns, "chat") }, timeout, interval).Should(BeEmpty())
	Eventually(func(g Gomega) {
		var jobs batchv1.JobList
		g.Expect(k8s.List(ctx, &jobs, client.InNamespace(ns), client.MatchingLabels{specs.LabelComponent: specs.ComponentIngest})).To(Succeed())
		for _, j := range jobs.Items {
			// The CronJob's runs go with it (envtest has no garbage collector).
			g.Expect(metav1.GetControllerOf(&j)).To(HaveField("Kind", "CronJob"), "Job %s outlived spec.ingest", j.Name)
		}
	}, timeout, interval).Should(Succeed(), "the runs started on a change go with spec.ingest")
	// Once they are gone, reconciles look for them no more.
	expectNoIngestReads(t, ns)
}

// TestNoIngestNoIngestReads: the reconciles of a ChatBackend that never had
// spec.ingest look for its CronJob and Jobs once, not every time: most of
// a fleet has none.
func TestNoIngestNoIngestReads(t *testing.T) {
	RegisterTestingT(t)
	ns := newNamespace(t)
	createMigrated(t, ns, "postgres://db/chat")
	Eventually(func() int64 { return ingestReadCount(ns) }, timeout, interval).ShouldNot(BeZero(), "the counting works")
	expectNoIngestReads(t, ns)
	Expect(reconcileErrors(ns)).To(BeZero())
}

// expectNoIngestReads: reconciles of ChatBackend "chat" (annotation
// changes bring them) neither read an ingest object from the cache nor get
// a CronJob from the API server. The first ones may still be removing.
func expectNoIngestReads(t *testing.T, ns string) {
	t.Helper()
	touches := 0
	Eventually(func(g Gomega) {
		cached, live, reconciles := ingestReadCount(ns), childRequestCount(ns, http.MethodGet, "cronjobs"), reconcileCount(ns)
		touches++
		touch(g, ns, "chat", touches)
		g.Eventually(func() int64 { return reconcileCount(ns) }, timeout, interval).Should(BeNumerically(">", reconciles))
		g.Consistently(func() int64 { return ingestReadCount(ns) }, 500*time.Millisecond, 50*time.Millisecond).
			Should(Equal(cached), "a reconcile looked up ingest objects in the cache")
		g.Expect(childRequestCount(ns, http.MethodGet, "cronjobs")).To(Equal(live), "a reconcile got the CronJob from the API server")
	}, timeout, interval).Should(Succeed())
}

// TestIngestSuspend: a suspended spec.ingest suspends the CronJob and
// starts no Job on a change; resuming runs the current sources.
func TestIngestSuspend(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://app@db/chat"}))).To(Succeed())
	cb := ingestingChatBackend(ns)
	cb.Spec.Ingest.Suspend = ptr.To(true)
	cb.Spec.Ingest.Schedule = "30 2 * * *"
	Expect(k8s.Create(ctx, cb)).To(Succeed())
	migrate(t, ns, cb, "postgres://app@db/chat")

	cj := &batchv1.CronJob{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat-ingest"), cj)).To(Succeed())
		g.Expect(cj.Spec.Suspend).To(HaveValue(BeTrue()))
		g.Expect(cj.Spec.Schedule).To(Equal("30 2 * * *"))
	}, timeout, interval).Should(Succeed())
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionIndexed, metav1.ConditionFalse, chatv1alpha1.ReasonIngestPending, "suspend")
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Ingest.Sources[0].Git.Ref = "v2" })
	Consistently(func(g Gomega) []batchv1.Job {
		var jobs batchv1.JobList
		g.Expect(k8s.List(ctx, &jobs, client.InNamespace(ns), client.MatchingLabels{specs.LabelComponent: specs.ComponentIngest})).To(Succeed())
		return jobs.Items
	}, 2*time.Second, interval).Should(BeEmpty(), "no run while suspended")
	Expect(ingestSeries(ns, "chat")).To(BeEmpty(), "no staleness expected while suspended")

	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Ingest.Suspend = nil })
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat-ingest"), cj)).To(Succeed())
		g.Expect(cj.Spec.Suspend).To(HaveValue(BeFalse()))
		g.Expect(k8s.Get(ctx, key(ns, ingestJobOf(g, ns)), &batchv1.Job{})).To(Succeed())
	}, timeout, interval).Should(Succeed(), "resuming runs the current sources")
	// The daily schedule allows three days.
	Eventually(func() float64 { return ingestSeries(ns, "chat")[controllers.IngestMaxAgeMetric] }, timeout, interval).
		Should(Equal(float64(3 * 24 * 3600)))
}

// TestIngestValidation: the CRD refuses sources that are not exactly one
// of git and site, twice the same name, and schedules that are no cron.
func TestIngestValidation(t *testing.T) {
	ns := newNamespace(t)
	cases := []struct {
		name    string
		mutate  func(*chatv1alpha1.IngestSpec)
		message string
	}{
		{"git and site", func(in *chatv1alpha1.IngestSpec) {
			in.Sources[1].Git = in.Sources[0].Git
		}, "each source sets exactly one of git and site"},
		{"neither", func(in *chatv1alpha1.IngestSpec) { in.Sources[1].Site = nil }, "each source sets exactly one of git and site"},
		{"duplicate names", func(in *chatv1alpha1.IngestSpec) { in.Sources[1].Name = "product" }, "Duplicate value"},
		{"no sources", func(in *chatv1alpha1.IngestSpec) { in.Sources = nil }, "spec.ingest.sources"},
		{"bad schedule", func(in *chatv1alpha1.IngestSpec) { in.Schedule = "every hour" }, "schedule must be a cron expression"},
		{"credentials in git.url", func(in *chatv1alpha1.IngestSpec) {
			in.Sources[0].Git.URL = "https://user:token@git.example.com/product.git"
		}, "git.url must not contain credentials"},
		{"parent in git.path", func(in *chatv1alpha1.IngestSpec) { in.Sources[0].Git.Path = "docs/../../etc" }, "without '..'"},
		{"relative siteURL", func(in *chatv1alpha1.IngestSpec) { in.Sources[0].Git.SiteURL = "docs.example.com" }, "git.siteURL must be an absolute http(s) URL"},
		{"bad source name", func(in *chatv1alpha1.IngestSpec) { in.Sources[0].Name = "Product Docs" }, "source name must be lowercase"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cb := ingestingChatBackend(ns)
			tc.mutate(cb.Spec.Ingest)
			err := k8s.Create(context.Background(), cb)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}
	g := NewWithT(t)
	// The credentials volumes' names are the operator's.
	cb := chatBackend(ns, "chat", ingestImage)
	cb.Spec.Volumes = []corev1.Volume{{Name: "ingest-auth-docs", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	err := k8s.Create(context.Background(), cb)
	g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
	g.Expect(err.Error()).To(ContainSubstring("ingest-auth-* for its git credentials"))

	cb = ingestingChatBackend(ns)
	cb.Spec.Ingest.Schedule = "0 9 * * 1-5"
	cb.Spec.Ingest.Sources[0].Git.URL = "git@git.example.com:org/product.git"
	g.Expect(k8s.Create(context.Background(), cb)).To(Succeed(), "scp-like git URLs and weekday schedules are valid")
}

// cronRun makes the Job the CronJob controller would start from the
// CronJob chat-ingest, named name.
func cronRun(t *testing.T, ns, name string) string {
	t.Helper()
	cj := &batchv1.CronJob{}
	ExpectWithOffset(1, k8s.Get(context.Background(), key(ns, "chat-ingest"), cj)).To(Succeed())
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: cj.Spec.JobTemplate.Labels},
		Spec:       cj.Spec.JobTemplate.Spec,
	}
	ExpectWithOffset(1, controllerutil.SetControllerReference(cj, job, scheme)).To(Succeed())
	ExpectWithOffset(1, k8s.Create(context.Background(), job)).To(Succeed())
	return name
}

func countEvents(g Gomega, ns, reason string) int {
	n := 0
	for _, e := range eventsOf(g, ns, "chat") {
		if strings.HasPrefix(e, reason+": ") {
			n++
		}
	}
	return n
}

// ingestSeries reads the ingest gauges of one ChatBackend from the
// registry the manager serves, by metric name.
func ingestSeries(ns, name string) map[string]float64 {
	mfs, err := ctrlmetrics.Registry.Gather()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != controllers.IngestLastSuccessMetric && mf.GetName() != controllers.IngestMaxAgeMetric {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["chatbackend_namespace"] == ns && l["chatbackend"] == name {
				out[mf.GetName()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestIngestPrinterColumn: `kubectl get chatbackends -o wide` shows when
// the index was last refreshed.
func TestIngestPrinterColumn(t *testing.T) {
	g := NewWithT(t)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: "chatbackends.chat.chatbackend.io"}, crd)).To(Succeed())
	g.Expect(crd.Spec.Versions[0].AdditionalPrinterColumns).To(ContainElement(And(
		HaveField("Name", "Indexed"), HaveField("Type", "date"), HaveField("Priority", int32(1)),
		HaveField("JSONPath", ".status.ingest.lastSuccessTime"))))
}
