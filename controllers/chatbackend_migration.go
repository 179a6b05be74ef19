package controllers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// reconcileMigration makes sure the spec's image has been migrated on the
// database the env Secret points at before anything runs it, unless it is
// a downgrade from the migrated image (downgradeRefusal).
// status.migratedImage and status.migratedDatabase record the last pair
// whose Job succeeded; until the new pair's Job succeeds the Deployment
// keeps its image and its env Secret.
func (r *ChatBackendReconciler) reconcileMigration(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	if msg := downgradeRefusal(cb, s.image); msg != "" {
		// Nothing runs: the spec or the annotation must change, and both
		// bring a reconcile (watch predicates), so no requeue.
		s.migration = migrationRefused
		s.migrationMessage = msg
		r.eventOnce(ctx, cb, chatv1alpha1.ConditionDegraded, corev1.EventTypeWarning, chatv1alpha1.ReasonDowngradeRefused, "Migrate", msg)
		return ctrl.Result{}, nil
	}
	if s.envHash == "" {
		if cb.Status.MigratedImage == s.image {
			s.migration = migrationSucceeded
			s.migrationMessage = fmt.Sprintf("image %s is migrated", s.image)
			return ctrl.Result{}, nil
		}
		s.migration = migrationBlocked
		return ctrl.Result{}, nil
	}
	name := specs.MigrationJobName(cb, s.image, s.database)
	if cb.Status.MigratedImage == s.image && cb.Status.MigratedDatabase == s.database {
		s.migration = migrationSucceeded
		s.migrationMessage = fmt.Sprintf("image %s is migrated", s.image)
		return ctrl.Result{}, r.deleteSupersededJobs(ctx, cb, name)
	}

	job := &batchv1.Job{}
	err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		if wait := r.fleetRolloutWait(s, time.Now()); wait > 0 {
			return ctrl.Result{RequeueAfter: wait}, nil
		}
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
		cb.Status.MigratedDatabase = s.database
		if st := cb.Status.Migration; st != nil {
			// Only the honoured annotation value outlives a success: an
			// annotation left in place must not retry the next failure.
			cb.Status.Migration = &chatv1alpha1.MigrationStatus{RetryAnnotation: st.RetryAnnotation}
		}
		s.migration = migrationSucceeded
		s.migrationMessage = fmt.Sprintf("image %s is migrated", s.image)
		r.fleet.release(types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name})
		r.event(ctx, cb, corev1.EventTypeNormal, chatv1alpha1.ReasonMigrationSucceeded, "Migrate",
			fmt.Sprintf("Job %s migrated the database for image %s", name, s.image))
		return ctrl.Result{}, nil
	case jobConditionTrue(job, batchv1.JobFailed):
		return r.migrationFailed(ctx, s, job)
	default:
		return r.migrationRunning(ctx, s, job)
	}
}

// startMigration creates the migrations Job of the spec's image and
// database, unless another one still runs: two schema migrations racing on
// one database is how schemas get corrupted. A superseded Job that is still
// running is left to finish (interrupting a migration is worse); its
// completion event brings the reconcile back here. A superseded Job none of
// whose pods ever started a container, though, has not touched the
// database: it is deleted at once, so that correcting a mistyped image
// does not wait for the old Job's deadline.
func (r *ChatBackendReconciler) startMigration(ctx context.Context, s *scope, name string) error {
	cb := s.cb
	jobs, err := r.migrationJobs(ctx, cb)
	if err != nil {
		return err
	}
	for i := range jobs {
		j := &jobs[i]
		if jobFinished(j) {
			continue
		}
		started, err := r.jobStarted(ctx, j)
		if err != nil {
			return err
		}
		if started {
			s.migration = migrationRunning
			s.migrationMessage = fmt.Sprintf("waiting for Job %s (image %s) to finish before migrating to image %s",
				j.Name, j.Annotations[specs.AnnotationImage], s.image)
			return nil
		}
		if err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete superseded Job %s that never started: %w", j.Name, err)
		}
	}
	// Created once, never updated: the pod template of a Job is immutable,
	// and the Job stands for one image on one database.
	job := specs.MigrationJob(cb, s.image, s.envHash, s.database)
	specs.SetPodUser(&job.Spec.Template.Spec, r.PodUser)
	specs.SetMountedSecretsHash(&job.Spec.Template, s.mountHash)
	if err := r.apply(ctx, cb, job); err != nil {
		return err
	}
	s.migration = migrationRunning
	s.migrationMessage = fmt.Sprintf("Job %s is migrating the database for image %s", name, s.image)
	r.event(ctx, cb, corev1.EventTypeNormal, "MigrationStarted", "Migrate", s.migrationMessage)
	return nil
}

// migrationFailed records the failure in status.migration and retries the
// Job, by deleting it (the next reconcile creates it again), when something
// could make it pass: a spec or Secret change, a new value of the
// retry-migration annotation, or the end of the backoff since the failure
// (a database failing over during an upgrade heals without a person).
// Until then the failed Job stays, for its logs, and the reconcile comes
// back when the backoff ends.
func (r *ChatBackendReconciler) migrationFailed(ctx context.Context, s *scope, job *batchv1.Job) (ctrl.Result, error) {
	cb := s.cb
	st := recordMigrationFailure(cb, job)
	now := time.Now()
	if why := retryReason(cb, s, job, now); why != "" {
		if err := r.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete failed Job %s to retry: %w", job.Name, err)
		}
		st.RetryAnnotation = cb.Annotations[chatv1alpha1.AnnotationRetryMigration]
		s.migration = migrationRunning
		s.migrationMessage = fmt.Sprintf("retrying the migration for image %s after %s", s.image, why)
		// The delete event of the owned Job brings us back to create the
		// new one.
		return ctrl.Result{}, nil
	}
	reason := jobConditionMessage(job, batchv1.JobFailed)
	if msg, err := r.terminationMessage(ctx, job); err != nil {
		return ctrl.Result{}, err
	} else if msg != "" {
		reason += ": " + msg
	}
	s.migration = migrationFailed
	s.migrationMessage = fmt.Sprintf("Job %s failed (attempt %d): %s; %s. Retrying at %s, or at once when the annotation %s gets a new value. Check `kubectl logs job/%s`",
		job.Name, st.FailedAttempts, reason, servingNote(cb.Status.MigratedImage),
		st.NextRetryTime.UTC().Format(time.RFC3339), chatv1alpha1.AnnotationRetryMigration, job.Name)
	r.eventOnce(ctx, cb, chatv1alpha1.ConditionMigrated, corev1.EventTypeWarning, chatv1alpha1.ReasonMigrationFailed, "Migrate", s.migrationMessage)
	return ctrl.Result{RequeueAfter: st.NextRetryTime.Sub(now)}, nil
}

// recordMigrationFailure counts job's failure in status.migration, once:
// the failure is known by the time of the Job's Failed condition.
func recordMigrationFailure(cb *chatv1alpha1.ChatBackend, job *batchv1.Job) *chatv1alpha1.MigrationStatus {
	if cb.Status.Migration == nil {
		cb.Status.Migration = &chatv1alpha1.MigrationStatus{}
	}
	st := cb.Status.Migration
	if st.Job != job.Name {
		st.Job, st.FailedAttempts, st.LastFailureTime = job.Name, 0, nil
	}
	failedAt := jobConditionTime(job, batchv1.JobFailed)
	if st.LastFailureTime == nil || !st.LastFailureTime.Equal(&failedAt) {
		st.FailedAttempts++
		st.LastFailureTime = &failedAt
	}
	st.NextRetryTime = &metav1.Time{Time: failedAt.Add(MigrationRetryDelay(st.FailedAttempts))}
	return st
}

// retryReason says why a failed Job should run again now, or "" if it
// should not yet.
func retryReason(cb *chatv1alpha1.ChatBackend, s *scope, job *batchv1.Job, now time.Time) string {
	st := cb.Status.Migration
	switch {
	case job.Annotations[specs.AnnotationGeneration] != strconv.FormatInt(cb.Generation, 10) ||
		job.Annotations[specs.AnnotationEnvHash] != s.envHash ||
		job.Spec.Template.Annotations[specs.AnnotationMountedSecretsHash] != s.mountHash:
		return "a spec or Secret change"
	case cb.Annotations[chatv1alpha1.AnnotationRetryMigration] != "" &&
		cb.Annotations[chatv1alpha1.AnnotationRetryMigration] != st.RetryAnnotation:
		return fmt.Sprintf("the annotation %s=%s", chatv1alpha1.AnnotationRetryMigration, cb.Annotations[chatv1alpha1.AnnotationRetryMigration])
	case !now.Before(st.NextRetryTime.Time):
		return fmt.Sprintf("failed attempt %d and a backoff of %s", st.FailedAttempts, MigrationRetryDelay(st.FailedAttempts))
	default:
		return ""
	}
}

// migrationRunning reports a Job still at work. A pod that cannot start (an
// image tag that does not exist, a missing Secret, no node that fits) does
// not fail the Job before its deadline, and nothing about it reaches the
// Job's status: look at the pods, and look again later, since their changes
// do not trigger a reconcile.
//
// Only while the Job counts an active pod, though: every pod that can be
// waiting (pending, unschedulable, pulling, crash-looping) is active, and a
// Job without one has nothing to show. That is every Job just created, whose
// own watch event reconciles it before the Job controller made its pod; the
// Job controller's status write counting the pod brings the next reconcile,
// which looks. Without this, a fleet's first reconciles after creating
// their Jobs each listed pods for nothing.
func (r *ChatBackendReconciler) migrationRunning(ctx context.Context, s *scope, job *batchv1.Job) (ctrl.Result, error) {
	s.migration = migrationRunning
	s.migrationMessage = fmt.Sprintf("Job %s is migrating the database for image %s", job.Name, s.image)
	recheck := ctrl.Result{RequeueAfter: orDefault(r.MigrationRecheckInterval, DefaultMigrationRecheckInterval)}
	if job.Status.Active == 0 {
		return recheck, nil
	}
	pods, err := r.jobPods(ctx, job)
	if err != nil {
		return ctrl.Result{}, err
	}
	if problem, stuck := migrationPodProblem(pods, time.Now()); problem != "" {
		s.migrationMessage = fmt.Sprintf("Job %s cannot migrate to image %s: %s; %s",
			job.Name, s.image, problem, servingNote(s.cb.Status.MigratedImage))
		if stuck {
			s.migration = migrationStuck
			// Once per stuck Job: the kubelet alternates ErrImagePull and
			// ImagePullBackOff, which must not make an Event each time.
			if c := meta.FindStatusCondition(s.cb.Status.Conditions, chatv1alpha1.ConditionDegraded); c == nil ||
				c.Reason != chatv1alpha1.ReasonMigrationStuck || !strings.Contains(c.Message, job.Name) {
				r.event(ctx, s.cb, corev1.EventTypeWarning, chatv1alpha1.ReasonMigrationStuck, "Migrate", s.migrationMessage)
			}
		}
	}
	return recheck, nil
}

// stuckWaitingReasons are the kubelet's reasons for a container that will
// not start without a change from someone: retrying the pull or the
// config lookup does not help a name that does not exist.
var stuckWaitingReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "CreateContainerConfigError": true,
}

// UnschedulableStuckAfter is how long a migrations pod may stay
// unschedulable before the migration counts as stuck: long enough for a
// cluster autoscaler to add a node.
const UnschedulableStuckAfter = 5 * time.Minute

// migrationPodProblem says why a pod of the running migrations Job is
// waiting (ErrImagePull, ImagePullBackOff, CrashLoopBackOff,
// CreateContainerConfigError, unschedulable, ...), or "" when none is, and
// whether that waiting is stuck (stuckWaitingReasons, or unschedulable for
// UnschedulableStuckAfter).
func migrationPodProblem(pods []corev1.Pod, now time.Time) (problem string, stuck bool) {
	for _, pod := range pods {
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
				return fmt.Sprintf("pod %s: Unschedulable since %s: %s", pod.Name, c.LastTransitionTime.UTC().Format(time.RFC3339), c.Message),
					now.Sub(c.LastTransitionTime.Time) >= UnschedulableStuckAfter
			}
		}
		if problem, reason := podWaitingProblem(&pod); problem != "" {
			return problem, stuckWaitingReasons[reason]
		}
	}
	return "", false
}

// jobPods are the pods job controls. They are read from the API server,
// never cached (ManagerClientOptions): only the pods of one Job, only while
// it runs or just failed.
func (r *ChatBackendReconciler) jobPods(ctx context.Context, job *batchv1.Job) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := r.List(ctx, &list, client.InNamespace(job.Namespace), client.MatchingLabels{batchv1.JobNameLabel: job.Name}); err != nil {
		return nil, fmt.Errorf("list the pods of Job %s: %w", job.Name, err)
	}
	pods := list.Items[:0]
	for _, pod := range list.Items {
		if metav1.IsControlledBy(&pod, job) {
			pods = append(pods, pod)
		}
	}
	return pods, nil
}

// jobStarted reports whether a container of job ever ran, i.e. whether
// the migration may have touched the database.
func (r *ChatBackendReconciler) jobStarted(ctx context.Context, job *batchv1.Job) (bool, error) {
	if job.Status.Succeeded > 0 || job.Status.Failed > 0 {
		return true, nil
	}
	pods, err := r.jobPods(ctx, job)
	if err != nil {
		return false, err
	}
	for _, pod := range pods {
		for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
			if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil || cs.Started != nil && *cs.Started {
				return true, nil
			}
		}
	}
	return false, nil
}

// maxTerminationMessage caps what of the migrate command's last words goes
// into a condition message.
const maxTerminationMessage = 1024

// terminationMessage is the migrate command's own error: the termination
// message of the latest failed container of job (its last log lines, by
// FallbackToLogsOnError), or "" when no pod is left to tell.
func (r *ChatBackendReconciler) terminationMessage(ctx context.Context, job *batchv1.Job) (string, error) {
	pods, err := r.jobPods(ctx, job)
	if err != nil {
		return "", err
	}
	var msg string
	var at time.Time
	for _, pod := range pods {
		for _, cs := range pod.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && t.Message != "" && !t.FinishedAt.Time.Before(at) {
				msg, at = t.Message, t.FinishedAt.Time
			}
		}
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > maxTerminationMessage {
		msg = "..." + msg[len(msg)-maxTerminationMessage:]
	}
	return msg, nil
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
	return r.deleteJobs(ctx, jobs, func(j *batchv1.Job) bool { return j.Name != keep && jobFinished(j) })
}

// deleteJobs deletes the jobs that del selects, with their pods (in the
// background: the Job controller's garbage collection does the pods).
func (r *ChatBackendReconciler) deleteJobs(ctx context.Context, jobs []batchv1.Job, del func(*batchv1.Job) bool) error {
	for i := range jobs {
		j := &jobs[i]
		if !del(j) {
			continue
		}
		if err := r.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete Job %s: %w", j.Name, err)
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

// jobConditionTime is when condition t of job last changed.
func jobConditionTime(job *batchv1.Job, t batchv1.JobConditionType) metav1.Time {
	for _, c := range job.Status.Conditions {
		if c.Type == t {
			return c.LastTransitionTime
		}
	}
	return metav1.Time{}
}
