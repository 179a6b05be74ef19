package controllers_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/config"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestMigrationGatesTheDeployment walks one ChatBackend through its life:
// first migration, first rollout, an upgrade whose migration fails, the
// retry on the next spec change, and the successful upgrade.
func TestMigrationGatesTheDeployment(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://app@db/chat"}))).To(Succeed())
	Expect(k8s.Create(ctx, secret(ns, "db-direct", map[string]string{"url": "postgres://app@db-primary/chat"}))).To(Succeed())
	cb := chatBackend(ns, "chat", "registry.example.com/chat-apiserver:v1")
	cb.Spec.Database.DirectURLSecretRef = &chatv1alpha1.SecretKeyRef{Name: "db-direct", Key: "url"}
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	// Create → env Secret and migrations Job; no Deployment yet.
	envData := map[string][]byte{
		"DATABASE_URL":        []byte("postgres://app@db/chat"),
		"DATABASE_DIRECT_URL": []byte("postgres://app@db-primary/chat"),
	}
	envName := specs.EnvSecretName(cb, specs.HashData(envData))
	env := &corev1.Secret{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, envName), env) }, timeout, interval).Should(Succeed())
	Expect(env.Data).To(Equal(envData))
	Expect(metav1.IsControlledBy(env, getCB(Default, ns, "chat"))).To(BeTrue())

	database := specs.DatabaseFingerprint(envData)
	jobV1 := specs.MigrationJobName(cb, "registry.example.com/chat-apiserver:v1", database)
	job := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, jobV1), job) }, timeout, interval).Should(Succeed())
	Expect(job.Spec.Template.Spec.Containers[0].Args).To(Equal([]string{"migrate"}))
	Expect(job.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name).To(Equal(envName))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionAvailable, metav1.ConditionFalse, chatv1alpha1.ReasonWaitingForMigration)
	Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat"), &appsv1.Deployment{}))).To(BeTrue(), "no Deployment before the first migration")

	// The Job succeeds → Deployment, Service and PDB.
	finishJob(t, ns, jobV1, true)
	dep := &appsv1.Deployment{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), dep) }, timeout, interval).Should(Succeed())
	Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v1"))
	Expect(dep.Spec.Template.Spec.Containers[0].Args).To(Equal([]string{"serve"}))
	Expect(*dep.Spec.Replicas).To(Equal(int32(2)), "replicas defaults to 2")
	// What the API server stored (after validation and server-side apply)
	// keeps what rollouts need: the preStop sleep, the grace period, the
	// startup probe, and requests so the pods are not BestEffort.
	api := dep.Spec.Template.Spec.Containers[0]
	Expect(api.Lifecycle.PreStop.Sleep).NotTo(BeNil())
	Expect(api.Lifecycle.PreStop.Sleep.Seconds).To(Equal(specs.PreStopSleepSeconds))
	Expect(*dep.Spec.Template.Spec.TerminationGracePeriodSeconds).To(Equal(specs.TerminationGracePeriodSeconds))
	Expect(api.StartupProbe.HTTPGet.Path).To(Equal("/healthz"))
	Expect(api.ReadinessProbe.TimeoutSeconds).To(Equal(specs.ReadinessTimeoutSeconds))
	Expect(api.Resources.Requests).To(HaveKey(corev1.ResourceMemory))
	Expect(job.Spec.Template.Spec.Containers[0].Resources.Requests).To(HaveKey(corev1.ResourceMemory))
	svc := &corev1.Service{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), svc) }, timeout, interval).Should(Succeed())
	Expect(svc.Spec.Ports).To(ConsistOf(HaveField("Name", "http")), "no /metrics on the Service users reach")
	metricsSvc := &corev1.Service{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat-metrics"), metricsSvc) }, timeout, interval).Should(Succeed())
	Expect(metricsSvc.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP))
	Expect(metricsSvc.Spec.Ports).To(ConsistOf(HaveField("Name", "metrics")))
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), &policyv1.PodDisruptionBudget{}) }, timeout, interval).Should(Succeed())
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded)
	st := getCB(Default, ns, "chat").Status
	Expect(st.MigratedImage).To(Equal("registry.example.com/chat-apiserver:v1"))
	Expect(st.URL).To(Equal("http://chat." + ns + ".svc:80"))
	Expect(st.Ready).To(Equal("0/2"), "READY counts ready pods, not desired ones")

	// The Deployment controller reports v1 rolled out → Ready, 2/2.
	rollOut(t, ns, "chat", 2)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady, "chat-apiserver:v1")
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionProgressing, metav1.ConditionFalse, chatv1alpha1.ReasonRolledOut)
	Expect(getCB(Default, ns, "chat").Status.Ready).To(Equal("2/2"))

	// Image change → a new Job, while the Deployment keeps v1.
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Image = "registry.example.com/chat-apiserver:v2" })
	jobV2 := specs.MigrationJobName(cb, "registry.example.com/chat-apiserver:v2", database)
	Expect(jobV2).NotTo(Equal(jobV1))
	Eventually(func() error { return k8s.Get(ctx, key(ns, jobV2), &batchv1.Job{}) }, timeout, interval).Should(Succeed())
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating)
	Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
	Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v1"))
	// v2 is not realised until migrated and rolled out: Ready is False
	// (Migrating) and says v1 keeps serving, which Available confirms.
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionProgressing, metav1.ConditionTrue, chatv1alpha1.ReasonMigrating, jobV2)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating,
		"keeps serving image registry.example.com/chat-apiserver:v1")
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionAvailable, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable)

	// A pod of the v2 Job fails but the Job retries it within its
	// backoffLimit: status.failed > 0 without a Failed condition is still a
	// running migration, not a failed one.
	failPodOnce(t, ns, jobV2)
	Consistently(func(g Gomega) {
		conds := getCB(g, ns, "chat").Status.Conditions
		degraded := meta.FindStatusCondition(conds, chatv1alpha1.ConditionDegraded)
		g.Expect(degraded).NotTo(BeNil())
		g.Expect(degraded.Status).To(Equal(metav1.ConditionFalse), "Degraded: %s", degraded.Message)
		migrated := meta.FindStatusCondition(conds, chatv1alpha1.ConditionMigrated)
		g.Expect(migrated).NotTo(BeNil())
		g.Expect(migrated.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(migrated.Reason).To(Equal(chatv1alpha1.ReasonMigrating), "Migrated: %s", migrated.Message)
		g.Expect(eventsOf(g, ns, "chat")).NotTo(ContainElement(HavePrefix(chatv1alpha1.ReasonMigrationFailed + ":")))
	}, 1500*time.Millisecond, 100*time.Millisecond).Should(Succeed())

	// The v2 Job fails → Migrated=False, Degraded=True, an Event; v1 keeps running.
	finishJob(t, ns, jobV2, false)
	c := eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationFailed)
	Expect(c.Message).To(ContainSubstring(jobV2))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed)
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonMigrationFailed, jobV2)
	Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
	Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v1"))
	Expect(getCB(Default, ns, "chat").Status.MigratedImage).To(Equal("registry.example.com/chat-apiserver:v1"))

	// The next spec change retries with a fresh Job (the failed one is
	// replaced); replicas 1 also drops the PDB.
	failed := &batchv1.Job{}
	Expect(k8s.Get(ctx, key(ns, jobV2), failed)).To(Succeed())
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Replicas = ptr.To[int32](1) })
	Eventually(func(g Gomega) {
		j := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, jobV2), j)).To(Succeed())
		g.Expect(j.UID).NotTo(Equal(failed.UID))
		g.Expect(j.Status.Conditions).To(BeEmpty())
	}, timeout, interval).Should(Succeed())
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat"), &policyv1.PodDisruptionBudget{}))
	}, timeout, interval).Should(BeTrue(), "no PDB for a single replica")

	finishJob(t, ns, jobV2, true)
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v2"))
		g.Expect(*dep.Spec.Replicas).To(Equal(int32(1)))
	}, timeout, interval).Should(Succeed())
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected)
	// The new template is rolling out while the v1 pods serve: not Ready
	// until the rollout completes.
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionProgressing, metav1.ConditionTrue, chatv1alpha1.ReasonRollingOut)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonRollingOut, "previous pods keep serving")
	// The Deployment controller reports the rollout done.
	rollOut(t, ns, "chat", 1)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionAvailable, metav1.ConditionTrue, chatv1alpha1.ReasonDeploymentAvailable)
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady, "chat-apiserver:v2")
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionProgressing, metav1.ConditionFalse, chatv1alpha1.ReasonRolledOut)
	Expect(getCB(Default, ns, "chat").Status.ReadyReplicas).To(HaveValue(Equal(int32(1))))
	Expect(getCB(Default, ns, "chat").Status.Ready).To(Equal("1/1"))

	// The v1 Job is superseded and cleaned up; v2's stays as its record.
	Eventually(func() bool { return apierrors.IsNotFound(k8s.Get(ctx, key(ns, jobV1), &batchv1.Job{})) }, timeout, interval).Should(BeTrue())
	Expect(k8s.Get(ctx, key(ns, jobV2), &batchv1.Job{})).To(Succeed())
}

// TestMigrationsRunOneAtATime: an image change while a migration runs waits
// for it instead of migrating the same database twice at once.
func TestMigrationsRunOneAtATime(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cb, jobV1 := createMigrating(t, ns, "postgres://db/chat")
	// A container of the v1 Job runs: it may be changing the schema.
	startJobPod(t, ns, jobV1, corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}})

	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Image = "registry.example.com/chat-apiserver:v2" })
	jobV2 := migrationJobName(cb, "registry.example.com/chat-apiserver:v2", "postgres://db/chat")
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating, "waiting for Job "+jobV1)
	Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, jobV2), &batchv1.Job{}))).To(BeTrue(), "no second migration while the first runs")

	finishJob(t, ns, jobV1, true)
	Eventually(func() error { return k8s.Get(ctx, key(ns, jobV2), &batchv1.Job{}) }, timeout, interval).Should(Succeed())
	Expect(getCB(Default, ns, "chat").Status.MigratedImage).To(BeEmpty(), "v1 is no longer wanted, so it is not deployed")
}

// TestFirstMigrationFailure: when the very first migration fails nothing
// serves, and the status says that rather than naming an empty image.
func TestFirstMigrationFailure(t *testing.T) {
	RegisterTestingT(t)
	ns := newNamespace(t)
	_, jobV1 := createMigrating(t, ns, "postgres://db/chat")

	finishJob(t, ns, jobV1, false)
	c := eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed,
		"no version serves yet")
	Expect(c.Message).NotTo(ContainSubstring(`""`))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationFailed)
	Expect(getCB(Default, ns, "chat").Status.Ready).To(Equal("0/2"))
}

// TestMissingSecretRecovers: a ChatBackend whose Secret is missing says
// which one, and recovers by itself once it is created.
func TestMissingSecretRecovers(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	errorsBefore := reconcileErrors(ns)
	cb := chatBackend(ns, "chat", "") // default image
	cb.Spec.OpenAI = &chatv1alpha1.OpenAISpec{APIKeySecretRef: &chatv1alpha1.SecretKeyRef{Name: "openai", Key: "key"}}
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	c := eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonSecretNotFound)
	Expect(c.Message).To(ContainSubstring(`Secret "db"`))
	Expect(c.Message).To(ContainSubstring("spec.database.urlSecretRef"))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionTrue, chatv1alpha1.ReasonSecretNotFound)
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonSecretNotFound, `Secret "db"`)
	var jobs batchv1.JobList
	Expect(k8s.List(ctx, &jobs, client.InNamespace(ns))).To(Succeed())
	Expect(jobs.Items).To(BeEmpty(), "no migration without the database URL")
	// Several 1s rechecks later: still no error retries, one warning Event.
	Consistently(func() int { return reconcileErrors(ns) }, 2500*time.Millisecond, 250*time.Millisecond).Should(Equal(errorsBefore))
	var events corev1.EventList
	Expect(k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
	warnings := 0
	for _, e := range events.Items {
		if e.Reason == chatv1alpha1.ReasonSecretNotFound {
			warnings++
			Expect(e.Count).To(BeNumerically("<=", 1), "the warning is not repeated")
		}
	}
	Expect(warnings).To(Equal(1))

	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://db/chat"}))).To(Succeed())
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonSecretNotFound, `Secret "openai"`)

	Expect(k8s.Create(ctx, secret(ns, "openai", map[string]string{"wrong": "sk-test"}))).To(Succeed())
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonSecretKeyNotFound, `no key "key"`)
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonSecretKeyNotFound, `no key "key"`)

	openai := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, "openai"), openai)).To(Succeed())
	openai.Data["key"] = []byte("sk-test")
	Expect(k8s.Update(ctx, openai)).To(Succeed())

	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected)
	Eventually(func() error {
		return k8s.Get(ctx, key(ns, migrationJobName(cb, defaultImage, "postgres://db/chat")), &batchv1.Job{})
	}, timeout, interval).Should(Succeed(), "the Job runs the operator's default image")
	env := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, specs.EnvSecretName(cb, specs.HashData(map[string][]byte{
		"DATABASE_URL": []byte("postgres://db/chat"), "OPENAI_API_KEY": []byte("sk-test"),
	}))), env)).To(Succeed())
	Expect(env.Data).To(HaveKeyWithValue("OPENAI_API_KEY", []byte("sk-test")))
}

// TestSecretChangeRollsPods: new values in a referenced Secret reach a new
// env Secret and change the pod template, which rolls the pods. A new
// password for the same database needs no migration.
func TestSecretChangeRollsPods(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cb := createMigrated(t, ns, "postgres://app:old@db/chat")

	dep := &appsv1.Deployment{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), dep) }, timeout, interval).Should(Succeed())
	before := dep.Spec.Template.Annotations[specs.AnnotationEnvHash]
	Expect(before).NotTo(BeEmpty())

	db := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, "db"), db)).To(Succeed())
	db.Data["url"] = []byte("postgres://app:new@db/chat")
	Expect(k8s.Update(ctx, db)).To(Succeed())

	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Annotations[specs.AnnotationEnvHash]).NotTo(Equal(before))
	}, timeout, interval).Should(Succeed())
	Expect(dep.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name).To(Equal(
		specs.EnvSecretName(cb, specs.HashData(map[string][]byte{"DATABASE_URL": []byte("postgres://app:new@db/chat")}))))
	Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v1"))
}

// TestSecretsAreNotCached: the operator reads the Secrets it needs from the
// API server and watches Secret metadata only; a full copy of every Secret
// in the cluster in its cache OOM-killed it on a real cluster. The reconciles
// of the other tests (which read and write Secrets) have run by now; this
// one makes sure at least one has.
func TestSecretsAreNotCached(t *testing.T) {
	RegisterTestingT(t)
	ns := newNamespace(t)
	cb := createMigrated(t, ns, "postgres://db/chat")
	Eventually(func() error {
		return k8s.Get(context.Background(), key(ns, envSecretName(cb, "postgres://db/chat")), &corev1.Secret{})
	}, timeout, interval).Should(Succeed())

	_, full := cachedTypes.Load("*v1.Secret")
	Expect(full).To(BeFalse(), "Secrets are cached in full")
	_, fullList := cachedTypes.Load("*v1.SecretList")
	Expect(fullList).To(BeFalse(), "Secrets are listed from the cache")
	_, meta := cachedTypes.Load("*v1.PartialObjectMetadata")
	Expect(meta).To(BeTrue(), "the Secret watches cache metadata")
	_, pods := cachedTypes.Load("*v1.PodList")
	Expect(pods).To(BeFalse(), "pods are listed from the cache")
	_, deployments := cachedTypes.Load("*v1.Deployment")
	Expect(deployments).To(BeTrue(), "the recording works: Deployments are cached")
}

// TestDriftIsReverted: children deleted or edited by hand are put back.
func TestDriftIsReverted(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cb := createMigrated(t, ns, "postgres://db/chat")

	for _, obj := range []client.Object{&corev1.Service{}, &appsv1.Deployment{}, &corev1.Secret{}} {
		name := "chat"
		if _, ok := obj.(*corev1.Secret); ok {
			name = envSecretName(cb, "postgres://db/chat")
		}
		Eventually(func() error { return k8s.Get(ctx, key(ns, name), obj) }, timeout, interval).Should(Succeed())
		uid := obj.GetUID()
		Expect(k8s.Delete(ctx, obj)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, key(ns, name), obj)).To(Succeed())
			g.Expect(obj.GetUID()).NotTo(Equal(uid))
		}, timeout, interval).Should(Succeed(), "%T %s comes back", obj, name)
	}

	// An edit of a field the operator owns is reverted, replicas included:
	// scaling goes through the ChatBackend's scale subresource
	// (TestScaleSubresourceDrivesTheDeployment), not its Deployment.
	dep := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
	dep.Spec.Template.Spec.Containers[0].Image = "registry.example.com/evil:latest"
	dep.Spec.Replicas = ptr.To[int32](7)
	Expect(k8s.Update(ctx, dep)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v1"))
		g.Expect(*dep.Spec.Replicas).To(Equal(int32(2)))
	}, timeout, interval).Should(Succeed())

	// Steady state: no write churn on the Deployment. A reconcile of the
	// unchanged ChatBackend (made here by an annotation of no meaning to
	// the operator) sends no apply: nothing would change (apply.go,
	// appliedRecords).
	Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
	rv := dep.ResourceVersion
	Consistently(func(g Gomega) string {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		return dep.ResourceVersion
	}, 2500*time.Millisecond, 250*time.Millisecond).Should(Equal(rv), "no write churn on the Deployment")
	reconciles, patches := reconcileCount(ns), childPatches(ns)
	touched := getCB(Default, ns, "chat")
	metav1.SetMetaDataAnnotation(&touched.ObjectMeta, "test.chatbackend.io/touched", "yes")
	Expect(k8s.Update(ctx, touched)).To(Succeed())
	Eventually(func() int64 { return reconcileCount(ns) }, timeout, interval).
		Should(BeNumerically(">", reconciles), "the ChatBackend is reconciled")
	Consistently(func() int64 { return childPatches(ns) }, time.Second, 100*time.Millisecond).
		Should(Equal(patches), "a reconcile of an unchanged ChatBackend sent applies")

	// Left-out applies do not leave hand edits in place: an edit made now,
	// with the children's last applies on record, is still reverted.
	dep.Spec.Template.Spec.Containers[0].Image = "registry.example.com/evil:latest"
	Expect(k8s.Update(ctx, dep)).To(Succeed())
	svc := &corev1.Service{}
	Expect(k8s.Get(ctx, key(ns, "chat"), svc)).To(Succeed())
	selector := maps.Clone(svc.Spec.Selector)
	for k := range svc.Spec.Selector {
		svc.Spec.Selector[k] = "elsewhere"
	}
	Expect(k8s.Update(ctx, svc)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example.com/chat-apiserver:v1"))
		g.Expect(k8s.Get(ctx, key(ns, "chat"), svc)).To(Succeed())
		g.Expect(svc.Spec.Selector).To(Equal(selector))
	}, timeout, interval).Should(Succeed())
}

// childPatches counts the manager's PATCH requests (server-side applies)
// to the children in ns.
func childPatches(ns string) int64 {
	var n int64
	for _, resource := range []string{"secrets", "jobs", "deployments", "poddisruptionbudgets", "services", "networkpolicies", "servicemonitors", "prometheusrules"} {
		n += childRequestCount(ns, http.MethodPatch, resource)
	}
	return n
}

// TestMonitoringFollowsTheCRDs: without prometheus-operator the status says
// so and nothing loops; once its CRDs are installed the ServiceMonitor and
// PrometheusRule appear (and pass the real CRD schemas), and are put back
// when deleted.
func TestMonitoringFollowsTheCRDs(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://db/chat"}))).To(Succeed())
	cb := chatBackend(ns, "chat", "registry.example.com/chat-apiserver:v1")
	cb.Spec.Monitoring.ServiceMonitor.Labels = map[string]string{"release": "prom-a", "team": "chat"}
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	errorsBefore := reconcileErrors(ns)
	c := eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMonitoringReady, metav1.ConditionFalse, chatv1alpha1.ReasonCRDNotInstalled)
	Expect(c.Message).To(ContainSubstring("prometheus-operator"))
	Consistently(func() int { return reconcileErrors(ns) }, 1500*time.Millisecond, 250*time.Millisecond).Should(Equal(errorsBefore),
		"missing CRDs are a status, not an error loop")

	_, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{
		Paths:              []string{filepath.Join("..", "config", "crd", "external")},
		ErrorIfPathMissing: true,
	})
	Expect(err).NotTo(HaveOccurred())

	// The labels Prometheus selects on: the operator's --monitoring-labels
	// (release=kps in this suite) unless the spec says otherwise, and the
	// status says which went where.
	c = eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMonitoringReady, metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled)
	Expect(c.Message).To(MatchRegexp(`ServiceMonitor chat with labels [^;]*release=prom-a,team=chat`))
	Expect(c.Message).To(MatchRegexp(`PrometheusRule chat with labels [^;]*release=kps`))
	sm := &monitoringv1.ServiceMonitor{}
	Expect(k8s.Get(ctx, key(ns, "chat"), sm)).To(Succeed())
	Expect(sm.Labels).To(HaveKeyWithValue("release", "prom-a"))
	Expect(sm.Labels).To(HaveKeyWithValue("team", "chat"))
	Expect(sm.Spec.Endpoints).To(HaveLen(1))
	Expect(sm.Spec.Endpoints[0].Port).To(Equal("metrics"))
	// It selects the metrics Service, and only it.
	var services corev1.ServiceList
	Expect(k8s.List(ctx, &services, client.InNamespace(ns), client.MatchingLabels(sm.Spec.Selector.MatchLabels))).To(Succeed())
	Expect(services.Items).To(ConsistOf(HaveField("Name", "chat-metrics")))
	rule := &monitoringv1.PrometheusRule{}
	Expect(k8s.Get(ctx, key(ns, "chat"), rule)).To(Succeed())
	Expect(rule.Labels).To(HaveKeyWithValue("release", "kps"))
	Expect(rule.Spec.Groups).NotTo(BeEmpty())
	Expect(metav1.IsControlledBy(rule, getCB(Default, ns, "chat"))).To(BeTrue())

	uid := sm.UID
	Expect(k8s.Delete(ctx, sm)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), sm)).To(Succeed())
		g.Expect(sm.UID).NotTo(Equal(uid))
	}, timeout, interval).Should(Succeed(), "the ServiceMonitor comes back")

	// Disabling the PrometheusRule removes it.
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Monitoring.PrometheusRule.Enabled = ptr.To(false) })
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, "chat"), &monitoringv1.PrometheusRule{}))
	}, timeout, interval).Should(BeTrue())
}

// TestInvalidSpecsAreRefused: the CRD's validation rules reject specs that
// cannot work, with messages that say what to fix.
func TestInvalidSpecsAreRefused(t *testing.T) {
	RegisterTestingT(t)
	ns := newNamespace(t)
	cases := []struct {
		name    string
		objName string
		mutate  func(*chatv1alpha1.ChatBackend)
		message string
	}{
		{"betterAuthURL not a URL", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Auth.BetterAuthURL = "auth.example.com" },
			"betterAuthURL must be an absolute http(s) URL"},
		{"betterAuthURL not http", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Auth.BetterAuthURL = "ftp://auth.example.com" },
			"betterAuthURL must be an absolute http(s) URL"},
		{"empty secret name", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Database.URLSecretRef.Name = "" },
			"secret name must not be empty"},
		{"empty secret key", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Database.URLSecretRef.Key = "" },
			"secret key must not be empty"},
		{"negative replicas", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Replicas = ptr.To[int32](-1) },
			"replicas must not be negative"},
		{"CORS origin without a scheme", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.CORS = &chatv1alpha1.CORSSpec{AllowedOrigins: []string{"docs.example.com"}}
		}, "allowed origin docs.example.com is not an http(s) origin scheme://host[:port]"},
		{"CORS wildcard", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.CORS = &chatv1alpha1.CORSSpec{AllowedOrigins: []string{"https://docs.example.com", "*"}}
		}, `spec.cors.allowedOrigins[1]: Invalid value: "*": allowed origin * is not an http(s) origin`},
		{"CORS origin with a path", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.CORS = &chatv1alpha1.CORSSpec{AllowedOrigins: []string{"https://docs.example.com/docs"}}
		}, "allowed origin https://docs.example.com/docs is not an http(s) origin scheme://host[:port] such as https://docs.example.com: no path"},
		{"service port out of range", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Service.Port = 70000 },
			"service.port must be between 1 and 65535"},
		{"bad qdrant URL", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Qdrant = &chatv1alpha1.QdrantSpec{URL: "qdrant:6333"} },
			"qdrant.url must be an absolute http(s) URL"},
		{"credentials in qdrant.url", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Qdrant = &chatv1alpha1.QdrantSpec{URL: "https://admin:s3cret@qdrant.example.com:6333"}
		}, "qdrant.url must not contain credentials (user:password@): put the API key in a Secret and reference it with qdrant.apiKeySecretRef"},
		{"credentials in openai.baseURL", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.OpenAI = &chatv1alpha1.OpenAISpec{BaseURL: "https://sk-key@llm.example.com/v1"}
		}, "openai.baseURL must not contain credentials (user:password@)"},
		{"credentials in betterAuthURL", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Auth.BetterAuthURL = "https://u:p@auth.example.com" },
			"betterAuthURL must not contain credentials (user:password@)"},
		{"credentials in jwksURL", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Auth.JWKSURL = "http://user@auth.example.com/api/auth/jwks"
		}, "jwksURL must not contain credentials (user:password@)"},
		{"volume named tmp", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, "volume names tmp, database-tls and trusted-ca are reserved for the operator's /tmp and TLS files"},
		{"mount on /tmp", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/tmp"}}
		}, "mount path /tmp and volume tmp are reserved"},
		// The least accepted grace period is the one the drain needs.
		{"grace period shorter than the drain", "chat", func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.TerminationGracePeriodSeconds = specs.TerminationGracePeriodSeconds - 1
		}, "terminationGracePeriodSeconds must be at least 35: the 5 s preStop delay and the server's 25 s drain must fit in it"},
		{"migration deadline too short", "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Migration.ActiveDeadlineSeconds = 5 },
			"migration.activeDeadlineSeconds must be between 30 and 86400"},
		{"name too long", "a23456789012345678901234567890123456789012345678", func(*chatv1alpha1.ChatBackend) {},
			"metadata.name must be at most 46 characters"},
		{"name not a DNS label", "9chat", func(*chatv1alpha1.ChatBackend) {},
			"metadata.name must start with a letter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			cb := chatBackend(ns, tc.objName, "registry.example.com/chat-apiserver:v1")
			tc.mutate(cb)
			err := k8s.Create(context.Background(), cb)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}

	// The sample users start from is valid.
	raw, err := os.ReadFile(filepath.Join("..", "config", "samples", "chatbackend-minimal.yaml"))
	Expect(err).NotTo(HaveOccurred())
	sample := &chatv1alpha1.ChatBackend{}
	Expect(yaml.UnmarshalStrict(raw, sample)).To(Succeed())
	sample.Namespace = ns
	Expect(k8s.Create(context.Background(), sample)).To(Succeed())

	// And a valid one with every optional field passes.
	cb := chatBackend(ns, "complete", "registry.example.com/chat-apiserver:v1")
	cb.Spec.Auth.JWKSURL = "https://auth.example.com/api/auth/jwks"
	cb.Spec.Auth.Algorithms = []string{"EdDSA", "RS256"}
	cb.Spec.CORS = &chatv1alpha1.CORSSpec{AllowedOrigins: []string{"https://docs.example.com", "http://localhost:3000"}}
	// An @ after the host (path, query) is no user info.
	cb.Spec.Qdrant = &chatv1alpha1.QdrantSpec{URL: "http://qdrant:6333/base@v1?x=a@b", Collection: "docs"}
	cb.Spec.OpenAI = &chatv1alpha1.OpenAISpec{BaseURL: "https://api.openai.com/v1", ChatModel: "gpt-4o-mini"}
	cb.Spec.Service = chatv1alpha1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Port: 8080}
	cb.Spec.Monitoring.ServiceMonitor.Interval = "30s"
	cb.Spec.TerminationGracePeriodSeconds = specs.TerminationGracePeriodSeconds
	cb.Spec.Volumes = []corev1.Volume{{Name: "db-ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-ca"}}}}
	cb.Spec.VolumeMounts = []corev1.VolumeMount{{Name: "db-ca", MountPath: "/etc/db-ca", ReadOnly: true}}
	Expect(k8s.Create(context.Background(), cb)).To(Succeed())
}

// TestCORSOriginsMatchTheAPIServer: the CRD accepts exactly the origins
// chat-apiserver accepts at start-up, so that a ChatBackend the cluster takes
// never gives crash-looping pods, and one it refuses says so at apply time.
// Each origin goes through the real CRD validation and, as the operator
// passes it (specs.Env), through the server's own configuration loader.
func TestCORSOriginsMatchTheAPIServer(t *testing.T) {
	RegisterTestingT(t)
	ns := newNamespace(t)
	cases := []struct {
		origin string
		valid  bool
	}{
		{"https://docs.example.com", true},
		{"https://docs.example.com/", true}, // the server drops the trailing slash
		{"http://localhost:3000", true},
		{"http://[::1]:8080", true},
		{"HTTPS://docs.example.com", true}, // schemes are case-insensitive
		{"*", false},
		{"https://docs.example.com/docs", false},
		{"https://docs.example.com/docs/", false},
		{"docs.example.com", false},
		{"//docs.example.com", false},
		{"ftp://docs.example.com", false},
		{"https://", false},
		{"https://docs.example.com?lang=en", false},
		{"https://docs.example.com/?lang=en", false},
		{"https://docs.example.com/#top", false},
		{"https://user@docs.example.com", false},
		{"https://docs.example.com,blog.example.com", false}, // the server splits on commas
		{"https://docs.example.com:port", false},
	}
	for i, tc := range cases {
		t.Run(tc.origin, func(t *testing.T) {
			g := NewWithT(t)
			cb := chatBackend(ns, fmt.Sprintf("cors%d", i), "registry.example.com/chat-apiserver:v1")
			cb.Spec.CORS = &chatv1alpha1.CORSSpec{AllowedOrigins: []string{tc.origin}}

			env := map[string]string{"DATABASE_URL": "postgres://app@db/chat"}
			for _, e := range specs.Env(cb) {
				env[e.Name] = e.Value
			}
			_, serverErr := config.LoadFrom(config.FromMap(env))

			crdErr := k8s.Create(context.Background(), cb)
			if tc.valid {
				g.Expect(serverErr).NotTo(HaveOccurred())
				g.Expect(crdErr).NotTo(HaveOccurred())
				return
			}
			g.Expect(serverErr).To(MatchError(ContainSubstring("CORS_ALLOWED_ORIGINS")))
			g.Expect(apierrors.IsInvalid(crdErr)).To(BeTrue(), "want Invalid, got %v", crdErr)
			g.Expect(crdErr.Error()).To(ContainSubstring("allowed origin " + tc.origin + " is not an http(s) origin"))
		})
	}
}

// createMigrated creates the db Secret and ChatBackend "chat" (image v1) in ns
// and lets its migration succeed, so the Deployment exists.
func createMigrated(t *testing.T, ns, dbURL string) *chatv1alpha1.ChatBackend {
	t.Helper()
	cb, _ := createMigrating(t, ns, dbURL)
	migrate(t, ns, cb, dbURL)
	return cb
}

// createMigrating creates the Secret "db" holding dbURL and the ChatBackend
// "chat" on image v1, and waits for its migrations Job, whose name it
// returns; the Job is left running.
func createMigrating(t *testing.T, ns, dbURL string) (*chatv1alpha1.ChatBackend, string) {
	t.Helper()
	ctx := context.Background()
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": dbURL}))).To(Succeed())
	cb := chatBackend(ns, "chat", "registry.example.com/chat-apiserver:v1")
	Expect(k8s.Create(ctx, cb)).To(Succeed())
	job := migrationJobName(cb, cb.Spec.Image, dbURL)
	Eventually(func() error { return k8s.Get(ctx, key(ns, job), &batchv1.Job{}) }, timeout, interval).Should(Succeed())
	return cb, job
}

// migrate waits for the migrations Job of cb's image on dbURL and lets it
// succeed.
func migrate(t *testing.T, ns string, cb *chatv1alpha1.ChatBackend, dbURL string) {
	t.Helper()
	name := migrationJobName(cb, cb.Spec.Image, dbURL)
	Eventually(func() error { return k8s.Get(context.Background(), key(ns, name), &batchv1.Job{}) }, timeout, interval).Should(Succeed())
	finishJob(t, ns, name, true)
	eventuallyCondition(t, ns, cb.Name, chatv1alpha1.ConditionMigrated, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded)
}

// rollOut sets the status the Deployment controller writes once every one of
// replicas pods runs the current template and is available.
func rollOut(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	setDeploymentStatus(t, ns, name, appsv1.DeploymentStatus{
		Replicas: replicas, UpdatedReplicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas,
	})
}

// setDeploymentStatus writes st as the Deployment controller would, for the
// Deployment's current generation and with Available=True.
func setDeploymentStatus(t *testing.T, ns, name string, st appsv1.DeploymentStatus) {
	t.Helper()
	EventuallyWithOffset(1, func(g Gomega) {
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(context.Background(), key(ns, name), dep)).To(Succeed())
		now := metav1.Now()
		st.ObservedGeneration = dep.Generation
		st.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
			Reason: "MinimumReplicasAvailable", LastUpdateTime: now, LastTransitionTime: now}}
		dep.Status = st
		g.Expect(k8s.Status().Update(context.Background(), dep)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

// patchCB changes the ChatBackend's spec, retrying on conflicts with the
// operator's status writes.
func patchCB(ns, name string, mutate func(*chatv1alpha1.ChatBackend)) {
	EventuallyWithOffset(1, func(g Gomega) {
		cb := getCB(g, ns, name)
		mutate(cb)
		g.Expect(k8s.Update(context.Background(), cb)).To(Succeed())
	}, timeout, interval).Should(Succeed())
}

// TestPrinterColumns: `kubectl get chatbackends` shows READY as ready/desired
// pods (as for Deployments, not the desired count alone), the Ready
// condition's reason as STATUS, IMAGE, the in-cluster URL and AGE.
func TestPrinterColumns(t *testing.T) {
	g := NewWithT(t)
	crd := &apiextensionsv1.CustomResourceDefinition{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: "chatbackends.chat.chatbackend.io"}, crd)).To(Succeed())
	var names []string
	paths := map[string]string{}
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Priority == 0 {
			names = append(names, strings.ToUpper(c.Name))
		}
		paths[strings.ToUpper(c.Name)] = c.JSONPath
	}
	g.Expect(names).To(Equal([]string{"READY", "STATUS", "IMAGE", "URL", "AGE"}))
	g.Expect(paths).To(HaveKeyWithValue("URL", ".status.url"))
	g.Expect(paths).To(HaveKeyWithValue("READY", ".status.ready"))
	g.Expect(paths).To(HaveKeyWithValue("UP-TO-DATE", ".status.updatedReplicas"))
}
