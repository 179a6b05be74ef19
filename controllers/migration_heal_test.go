package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

const (
	imageV1 = "registry.example.com/chat-apiserver:v1"
	imageV2 = "registry.example.com/chat-apiserver:v2"
)

// deploymentImage is the image the Deployment runs now.
func deploymentImage(g Gomega, ns string) string { return deploymentImageOf(g, ns, "chat") }

// TestStuckMigrationDoesNotBlockTheNextUpgrade: a mistyped image never
// starts its migrations pod. The Job has a deadline, the status says
// Degraded=MigrationStuck with a Warning Event, v1 keeps serving, and once
// the image is corrected the stuck Job (which never touched the database)
// is replaced at once instead of being waited for.
func TestStuckMigrationDoesNotBlockTheNextUpgrade(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cb := createMigrated(t, ns, "postgres://db/chat")
	rollOut(t, ns, "chat", 2)

	const typo = "registry.example.com/chat-apiserver:v2-typo"
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Image = typo })
	stuckJob := migrationJobName(cb, typo, "postgres://db/chat")
	job := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, stuckJob), job) }, timeout, interval).Should(Succeed())
	Expect(job.Spec.ActiveDeadlineSeconds).To(HaveValue(Equal(chatv1alpha1.DefaultMigrationActiveDeadlineSeconds)))
	Expect(job.Spec.Template.Spec.Containers[0].TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError))

	startJobPod(t, ns, stuckJob, corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
		Reason: "ImagePullBackOff", Message: `Back-off pulling image "` + typo + `"`}})
	c := eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationStuck, "ImagePullBackOff")
	Expect(c.Message).To(ContainSubstring("keeps serving image " + imageV1))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrationStuck)
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonMigrationStuck, stuckJob)
	Expect(deploymentImage(Default, ns)).To(Equal(imageV1))

	// The user corrects the image: the stuck Job goes, v2's comes, v1 serves.
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Image = imageV2 })
	jobV2 := migrationJobName(cb, imageV2, "postgres://db/chat")
	Eventually(func() error { return k8s.Get(ctx, key(ns, jobV2), &batchv1.Job{}) }, timeout, interval).Should(Succeed())
	Expect(apierrors.IsNotFound(k8s.Get(ctx, key(ns, stuckJob), &batchv1.Job{}))).To(BeTrue(), "the stuck Job is deleted")
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionDegraded, metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected)
	Expect(deploymentImage(Default, ns)).To(Equal(imageV1))

	finishJob(t, ns, jobV2, true)
	Eventually(func(g Gomega) { g.Expect(deploymentImage(g, ns)).To(Equal(imageV2)) }, timeout, interval).Should(Succeed())
}

// TestFailedMigrationRetriesByItself: a failed migration (the database was
// failing over, say) says why in the migrate command's own words, counts
// its attempts, and runs again after the backoff, or at once when the
// retry annotation gets a new value.
func TestFailedMigrationRetriesByItself(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://db/chat"}))).To(Succeed())
	cb := chatBackend(ns, "chat", imageV1)
	Expect(k8s.Create(ctx, cb)).To(Succeed())
	name := migrationJobName(cb, imageV1, "postgres://db/chat")
	first := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, name), first) }, timeout, interval).Should(Succeed())

	// The pod failed with the migrate command's error as its termination
	// message; the Job failed just now, so the backoff has a minute to run.
	startJobPod(t, ns, name, corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 1, Reason: "Error", FinishedAt: metav1.Now(),
		Message: "Error: migrate: connect to database: dial tcp 198.18.3.5:5432: connect: connection refused\n"}})
	finishJob(t, ns, name, false)
	c := eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrationFailed,
		"migrate: connect to database: dial tcp 198.18.3.5:5432: connect: connection refused")
	Expect(c.Message).To(ContainSubstring("attempt 1"))
	Expect(c.Message).To(ContainSubstring(chatv1alpha1.AnnotationRetryMigration))
	st := getCB(Default, ns, "chat").Status.Migration
	Expect(st).NotTo(BeNil())
	Expect(st.Job).To(Equal(name))
	Expect(st.FailedAttempts).To(Equal(int32(1)))
	Expect(st.LastFailureTime).NotTo(BeNil())
	Expect(st.NextRetryTime.Sub(st.LastFailureTime.Time)).To(Equal(time.Minute))
	Consistently(func(g Gomega) {
		j := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, name), j)).To(Succeed())
		g.Expect(j.UID).To(Equal(first.UID))
	}, 2*time.Second, 200*time.Millisecond).Should(Succeed(), "no retry before the backoff")

	// The annotation retries at once, and is honoured once.
	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) {
		metav1.SetMetaDataAnnotation(&cb.ObjectMeta, chatv1alpha1.AnnotationRetryMigration, "2026-12-01T10:00")
	})
	second := &batchv1.Job{}
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, name), second)).To(Succeed())
		g.Expect(second.UID).NotTo(Equal(first.UID))
	}, timeout, interval).Should(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(getCB(g, ns, "chat").Status.Migration.RetryAnnotation).To(Equal("2026-12-01T10:00"))
	}, timeout, interval).Should(Succeed())

	// The second attempt failed three minutes ago: past its two-minute
	// backoff, it is retried without anyone asking.
	finishJobAt(t, ns, name, false, time.Now().Add(-3*time.Minute))
	Eventually(func(g Gomega) {
		j := &batchv1.Job{}
		g.Expect(k8s.Get(ctx, key(ns, name), j)).To(Succeed())
		g.Expect(j.UID).NotTo(Equal(second.UID))
		g.Expect(j.UID).NotTo(Equal(first.UID))
		g.Expect(getCB(g, ns, "chat").Status.Migration.FailedAttempts).To(Equal(int32(2)))
	}, timeout, interval).Should(Succeed())

	finishJob(t, ns, name, true)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded)
	st = getCB(Default, ns, "chat").Status.Migration
	Expect(st.FailedAttempts).To(BeZero())
	Expect(st.RetryAnnotation).To(Equal("2026-12-01T10:00"), "the honoured value is kept, so it does not retry a later failure")
	Expect(reconcileErrors(ns)).To(BeZero(), "waiting is a requeue, not an error")
}

// TestNewDatabaseIsMigratedBeforeUse: pointing the database Secret at
// another database (a restored copy, a new host) migrates it before any
// pod uses it: the Deployment keeps its env Secret, the old database's,
// until that migration succeeded. A new password is the same database: it
// rolls the pods without migrating again.
func TestNewDatabaseIsMigratedBeforeUse(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const oldURL, newURL = "postgres://app:pw@db/chat", "postgres://app:pw@db-restored/chat"
	cb := createMigrated(t, ns, oldURL)
	rollOut(t, ns, "chat", 2)
	envFrom := func(g Gomega) string {
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		return dep.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name
	}
	Eventually(envFrom, timeout, interval).Should(Equal(envSecretName(cb, oldURL)))
	Expect(getCB(Default, ns, "chat").Status.MigratedDatabase).To(Equal(
		specs.DatabaseFingerprint(map[string][]byte{"DATABASE_URL": []byte(oldURL)})))

	db := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, "db"), db)).To(Succeed())
	db.Data["url"] = []byte(newURL)
	Expect(k8s.Update(ctx, db)).To(Succeed())

	jobNew := migrationJobName(cb, imageV1, newURL)
	job := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, jobNew), job) }, timeout, interval).Should(Succeed())
	Expect(job.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name).To(Equal(envSecretName(cb, newURL)))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating)
	Consistently(func(g Gomega) {
		g.Expect(envFrom(g)).To(Equal(envSecretName(cb, oldURL)), "no pod may use the unmigrated database")
		g.Expect(k8s.Get(ctx, key(ns, envSecretName(cb, oldURL)), &corev1.Secret{})).To(Succeed())
	}, 1500*time.Millisecond, 100*time.Millisecond).Should(Succeed())

	finishJob(t, ns, jobNew, true)
	Eventually(envFrom, timeout, interval).Should(Equal(envSecretName(cb, newURL)))
	Eventually(func(g Gomega) string { return getCB(g, ns, "chat").Status.MigratedDatabase }, timeout, interval).Should(Equal(
		specs.DatabaseFingerprint(map[string][]byte{"DATABASE_URL": []byte(newURL)})))
	// The old Secret stays while old pods may read it, and goes after the
	// rollout.
	Expect(k8s.Get(ctx, key(ns, envSecretName(cb, oldURL)), &corev1.Secret{})).To(Succeed())
	rollOut(t, ns, "chat", 2)
	Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, key(ns, envSecretName(cb, oldURL)), &corev1.Secret{}))
	}, timeout, interval).Should(BeTrue())

	// A new password: same database, new env Secret at once, no migration.
	const rotated = "postgres://app:rotated@db-restored/chat"
	Expect(k8s.Get(ctx, key(ns, "db"), db)).To(Succeed())
	db.Data["url"] = []byte(rotated)
	Expect(k8s.Update(ctx, db)).To(Succeed())
	Eventually(envFrom, timeout, interval).Should(Equal(envSecretName(cb, rotated)))
	Expect(migrationJobName(cb, imageV1, rotated)).To(Equal(jobNew))
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionMigrated, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded)
}
