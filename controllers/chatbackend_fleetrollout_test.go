package controllers_test

import (
	"context"
	"sort"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers"
)

// TestFleetRolloutDelay: an operator upgrade (a restart with a new default
// image) upgrades the ChatBackends that follow the default image one after
// another, --rollout-delay apart, the waiting ones saying so in their
// status; a ChatBackend whose own spec.image changes is not held back.
func TestFleetRolloutDelay(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const (
		dbURL    = "postgres://db/chat"
		oldImage = "registry.example.com/chat-apiserver:1.0.0"
		newImage = "registry.example.com/chat-apiserver:1.1.0"
		delay    = 3 * time.Second
	)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": dbURL}))).To(Succeed())
	reconciler := func(defaultImage string) *controllers.ChatBackendReconciler {
		return &controllers.ChatBackendReconciler{DefaultImage: defaultImage, RolloutDelay: delay,
			SecretRecheckInterval: time.Second, MigrationRecheckInterval: time.Second, MonitoringRecheckInterval: time.Second}
	}

	// The previous operator version installed them: a first install is
	// not delayed.
	stop := startOwnManager(t, ns, reconciler(oldImage))
	followers := []string{"a", "b", "c"}
	for _, name := range append(followers, "pinned") {
		image := ""
		if name == "pinned" {
			image = oldImage
		}
		cb := chatBackend(ns, name, image)
		cb.Labels = map[string]string{ownManagerLabel: "true"}
		Expect(k8s.Create(ctx, cb)).To(Succeed())
	}
	for _, name := range append(followers, "pinned") {
		migrateTo(t, ns, name, oldImage, dbURL)
	}
	stop()
	// Stopping cancels the reconciles in flight, which log errors.
	errorsBefore := reconcileErrors(ns)

	// The upgrade: the operator restarts with a new default image, and
	// someone moves the pinned ChatBackend to it too.
	startOwnManager(t, ns, reconciler(newImage))
	Eventually(func(g Gomega) {
		cb := getCB(g, ns, "pinned")
		cb.Spec.Image = newImage
		g.Expect(k8s.Update(ctx, cb)).To(Succeed())
	}, timeout, interval).Should(Succeed())

	// The first follower starts at once, and so does the pinned one; the
	// others wait, and say until when.
	Eventually(func() []string { return jobsFor(ns, newImage, dbURL, append(followers, "pinned")) }, timeout, interval).
		Should(HaveLen(2))
	started := jobsFor(ns, newImage, dbURL, followers)
	Expect(started).To(HaveLen(1), "one follower upgrades first")
	Expect(jobsFor(ns, newImage, dbURL, []string{"pinned"})).To(HaveLen(1), "an explicit spec.image is not delayed")
	for _, name := range followers {
		if name == started[0] {
			continue
		}
		c := eventuallyConditionWith(t, ns, name, chatv1alpha1.ConditionMigrated, metav1.ConditionFalse,
			chatv1alpha1.ReasonRolloutDelayed, "waiting for this ChatBackend's fleet rollout slot at ")
		Expect(c.Message).To(ContainSubstring("the Deployment keeps serving image " + oldImage))
		eventuallyCondition(t, ns, name, chatv1alpha1.ConditionProgressing, metav1.ConditionFalse, chatv1alpha1.ReasonRolloutDelayed)
		eventuallyCondition(t, ns, name, chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonRolloutDelayed)
		eventuallyCondition(t, ns, name, chatv1alpha1.ConditionDegraded, metav1.ConditionFalse, chatv1alpha1.ReasonAsExpected)
		Expect(deploymentImageOf(Default, ns, name)).To(Equal(oldImage), "a waiting ChatBackend keeps its image")
	}

	// Nothing but their own requeue brings the others: each migrates in
	// its turn, and its Deployment follows.
	for _, name := range append(followers, "pinned") {
		migrateTo(t, ns, name, newImage, dbURL)
		Eventually(func(g Gomega) string { return deploymentImageOf(g, ns, name) }, timeout, interval).Should(Equal(newImage))
	}
	var created []time.Time
	for _, name := range followers {
		job := &batchv1.Job{}
		Expect(k8s.Get(ctx, key(ns, migrationJobName(getCB(Default, ns, name), newImage, dbURL)), job)).To(Succeed())
		created = append(created, job.CreationTimestamp.Time)
	}
	sort.Slice(created, func(i, j int) bool { return created[i].Before(created[j]) })
	for i := 1; i < len(created); i++ {
		// Creation times have a resolution of one second.
		Expect(created[i].Sub(created[i-1])).To(BeNumerically(">=", delay-time.Second),
			"the followers' migrations started %s apart, not one per rollout delay", created[i].Sub(created[i-1]))
	}
	Expect(reconcileErrors(ns)).To(Equal(errorsBefore))
}

// migrateTo waits for the migrations Job of image for ChatBackend name and
// lets it succeed.
func migrateTo(t *testing.T, ns, name, image, dbURL string) {
	t.Helper()
	job := migrationJobName(getCB(Default, ns, name), image, dbURL)
	Eventually(func() error { return k8s.Get(context.Background(), key(ns, job), &batchv1.Job{}) }, timeout, interval).
		Should(Succeed(), "no migrations Job for %s on image %s", name, image)
	finishJob(t, ns, job, true)
	Eventually(func(g Gomega) {
		g.Expect(getCB(g, ns, name).Status.MigratedImage).To(Equal(image))
	}, timeout, interval).Should(Succeed())
}

// jobsFor names those of the ChatBackends that have a migrations Job for
// image.
func jobsFor(ns, image, dbURL string, names []string) []string {
	var with []string
	for _, name := range names {
		job := migrationJobName(getCB(Default, ns, name), image, dbURL)
		if k8s.Get(context.Background(), key(ns, job), &batchv1.Job{}) == nil {
			with = append(with, name)
		}
	}
	return with
}

// deploymentImageOf is the image Deployment name runs now.
func deploymentImageOf(g Gomega, ns, name string) string {
	dep := &appsv1.Deployment{}
	g.Expect(k8s.Get(context.Background(), key(ns, name), dep)).To(Succeed())
	return dep.Spec.Template.Spec.Containers[0].Image
}
