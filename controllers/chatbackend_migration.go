package controllers

import (
	"context"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

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
		return ctrl.Result{}, r.startMigration(ctx, s, name)
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
		return ctrl.Result{}, nil
	case jobConditionTrue(job, batchv1.JobFailed):
		return ctrl.Result{}, r.migrationFailed(ctx, s, job)
	default:
		return r.migrationRunning(ctx, s, job)
	}
}

// startMigration creates the migrations Job of the spec's image, unless
// another one still runs: two schema migrations racing on one database is
// how schemas get corrupted. A superseded Job that is still running is left
// to finish (interrupting a migration is worse); its completion event
// brings the reconcile back here.
func (r *ChatBackendReconciler) startMigration(ctx context.Context, s *scope, name string) error {
	cb := s.cb
	jobs, err := r.migrationJobs(ctx, cb)
	if err != nil {
		return err
	}
	for i := range jobs {
		if !jobFinished(&jobs[i]) {
			s.migration = migrationRunning
			s.migrationMessage = fmt.Sprintf("waiting for Job %s (image %s) to finish before migrating to image %s",
				jobs[i].Name, jobs[i].Annotations[specs.AnnotationImage], s.image)
			return nil
		}
	}
	// Created once, never updated: the pod template of a Job is immutable,
	// and the Job stands for one image.
	if err := r.apply(ctx, cb, specs.MigrationJob(cb, s.image, s.envHash)); err != nil {
		return err
	}
	s.migration = migrationRunning
	s.migrationMessage = fmt.Sprintf("Job %s is migrating the database for image %s", name, s.image)
	r.event(ctx, cb, corev1.EventTypeNormal, "MigrationStarted", "Migrate", s.migrationMessage)
	return nil
}

// migrationFailed retries a failed Job only when something changed that
// could make it pass: a new spec generation or new secret values.
// Otherwise the failed Job stays, for its logs, and the status says so.
func (r *ChatBackendReconciler) migrationFailed(ctx context.Context, s *scope, job *batchv1.Job) error {
	cb := s.cb
	if job.Annotations[specs.AnnotationGeneration] != strconv.FormatInt(cb.Generation, 10) ||
		job.Annotations[specs.AnnotationEnvHash] != s.envHash {
		if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete failed Job %s to retry: %w", job.Name, err)
		}
		s.migration = migrationRunning
		s.migrationMessage = fmt.Sprintf("retrying the migration for image %s after a spec or Secret change", s.image)
		// The delete event of the owned Job brings us back to create the
		// new one.
		return nil
	}
	s.migration = migrationFailed
	s.migrationMessage = fmt.Sprintf("Job %s failed: %s; %s. Check `kubectl logs job/%s`",
		job.Name, jobConditionMessage(job, batchv1.JobFailed), servingNote(cb.Status.MigratedImage), job.Name)
	r.eventOnce(ctx, cb, chatv1alpha1.ConditionMigrated, corev1.EventTypeWarning, chatv1alpha1.ReasonMigrationFailed, "Migrate", s.migrationMessage)
	return nil
}

// migrationRunning reports a Job still at work. A pod that cannot start (an
// image tag that does not exist, a crash loop) never fails the Job, and
// nothing about it reaches the Job's status: look at the pods, and look
// again later, since their changes do not trigger a reconcile.
func (r *ChatBackendReconciler) migrationRunning(ctx context.Context, s *scope, job *batchv1.Job) (ctrl.Result, error) {
	s.migration = migrationRunning
	s.migrationMessage = fmt.Sprintf("Job %s is migrating the database for image %s", job.Name, s.image)
	problem, err := r.migrationPodProblem(ctx, job)
	if err != nil {
		return ctrl.Result{}, err
	}
	if problem != "" {
		s.migrationMessage = fmt.Sprintf("Job %s cannot migrate to image %s: %s; %s",
			job.Name, s.image, problem, servingNote(s.cb.Status.MigratedImage))
	}
	return ctrl.Result{RequeueAfter: orDefault(r.MigrationRecheckInterval, DefaultMigrationRecheckInterval)}, nil
}

// migrationPodProblem says why a pod of the running migrations Job is stuck
// waiting (ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
// CreateContainerConfigError, ...), or "" when none is. The pods are read
// from the API server, never cached (ManagerClientOptions): only the pods
// of one Job, only while it runs.
func (r *ChatBackendReconciler) migrationPodProblem(ctx context.Context, job *batchv1.Job) (string, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return "", fmt.Errorf("list the pods of Job %s: %w", job.Name, err)
	}
	for _, pod := range pods.Items {
		if !metav1.IsControlledBy(&pod, job) {
			continue
		}
		for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
				return fmt.Sprintf("pod %s: %s: %s", pod.Name, w.Reason, w.Message), nil
			}
		}
	}
	return "", nil
}

// servingNote says what serves while a migration failed: the previous image,
// or nothing at all before the first migration succeeded.
func servingNote(migratedImage string) string {
	if migratedImage == "" {
		return "no version serves yet (the Deployment is created once a migration succeeds)"
	}
	return fmt.Sprintf("the Deployment keeps serving image %s", migratedImage)
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
