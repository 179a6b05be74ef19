package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// ingestState is what the ingest phase saw, for the status
// (setIngestStatus).
type ingestState struct {
	// jobs are the ingest runs of the ChatBackend: the CronJob's and
	// those started on a change.
	jobs []batchv1.Job
	// waiting says why no run can start yet; empty once they can.
	waiting string
	// scheduleProblem says why spec.ingest.schedule cannot be used.
	scheduleProblem string
	// interval is the schedule's longest gap between runs (0 without a
	// usable schedule), for the staleness gauges (recordIngest).
	interval time.Duration
	// result is the summary of a run that finished since the status last
	// recorded one (nil otherwise), message its sentence.
	result  *chatv1alpha1.IngestResult
	message string
}

// maxIngestMessage caps status.ingest.message (the CRD's MaxLength).
const maxIngestMessage = 2048

// reconcileIngest keeps spec.ingest's runs going: the CronJob
// `<name>-ingest`, and a Job at once when the sources or the image changed
// (specs.IngestJobName). Both run the migrated image with the env Secret
// the Deployment uses, and only once that image is migrated on that
// Secret's database, for the Deployment's reason: new code must not write
// to an old schema. It also reads what the latest finished run wrote
// (observeIngestRun).
func (r *ChatBackendReconciler) reconcileIngest(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	if cb.Spec.Ingest == nil {
		return ctrl.Result{}, r.removeIngest(ctx, cb)
	}
	r.ingestPresence.set(client.ObjectKeyFromObject(cb), ingestMade)
	jobs, err := r.ingestJobs(ctx, r.Client, cb)
	if err != nil {
		return ctrl.Result{}, err
	}
	s.ingest.jobs = jobs
	if err := r.observeIngestRun(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	interval, err := ingestInterval(cb.Spec.Ingest.ScheduleOrDefault(), time.Now())
	if err != nil {
		// The CRD's pattern lets through what only a parser sees (minute
		// 61); the API server would refuse the CronJob with a less
		// helpful message, and a retry would not change that.
		s.ingest.scheduleProblem = fmt.Sprintf("spec.ingest.schedule %q: %v", cb.Spec.Ingest.ScheduleOrDefault(), err)
		return ctrl.Result{}, nil
	}
	s.ingest.interval = interval
	if cb.Status.MigratedImage == "" || s.envHash == "" || cb.Status.MigratedDatabase != s.database {
		s.ingest.waiting = "the runs start once the image is migrated on the database of the env Secret"
		return ctrl.Result{}, nil
	}
	image := cb.Status.MigratedImage
	cj, err := specs.IngestCronJob(cb, image, s.envHash)
	if err != nil {
		return ctrl.Result{}, err
	}
	specs.SetPodUser(&cj.Spec.JobTemplate.Spec.Template.Spec, r.PodUser)
	specs.SetMountedSecretsHash(&cj.Spec.JobTemplate.Spec.Template, s.mountHash)
	if err := r.apply(ctx, cb, cj); err != nil {
		return ctrl.Result{}, err
	}
	if cb.Spec.Ingest.IsSuspended() {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.startIngest(ctx, s, image)
}

// startIngest creates the Job of the current sources and image unless it
// exists: each such pair runs once right away, the schedule does the rest.
// A run of the CronJob may overlap it; chat-apiserver's advisory lock
// serialises the two. The finished Jobs of earlier pairs are deleted, so
// they do not pile up with every change.
func (r *ChatBackendReconciler) startIngest(ctx context.Context, s *scope, image string) error {
	cb := s.cb
	name, err := specs.IngestJobName(cb, image)
	if err != nil {
		return err
	}
	exists := false
	for i := range s.ingest.jobs {
		exists = exists || s.ingest.jobs[i].Name == name
	}
	if err := r.deleteJobs(ctx, s.ingest.jobs, func(j *batchv1.Job) bool {
		return j.Name != name && metav1.IsControlledBy(j, cb) && jobFinished(j)
	}); err != nil {
		return err
	}
	if exists {
		return nil
	}
	job, err := specs.IngestJob(cb, image, s.envHash)
	if err != nil {
		return err
	}
	specs.SetPodUser(&job.Spec.Template.Spec, r.PodUser)
	specs.SetMountedSecretsHash(&job.Spec.Template, s.mountHash)
	if err := r.apply(ctx, cb, job); err != nil {
		return err
	}
	s.ingest.jobs = append(s.ingest.jobs, *job)
	r.event(ctx, cb, corev1.EventTypeNormal, "IngestStarted", "Ingest",
		fmt.Sprintf("Job %s is indexing %d source(s) with image %s", job.Name, len(cb.Spec.Ingest.Sources), image))
	return nil
}

// removeIngest deletes the CronJob and the Jobs of a spec.ingest that was
// removed, with their pods. The index is left as it is. Once they are
// gone it reads nothing more (ingestPresence). The cache is asked unless
// this process made some of them: it holds every CronJob the operator made
// (their labels), and confirming a miss with the API server, as getChild
// does, would cost a request per ChatBackend without spec.ingest.
func (r *ChatBackendReconciler) removeIngest(ctx context.Context, cb *chatv1alpha1.ChatBackend) error {
	key := client.ObjectKeyFromObject(cb)
	var reader client.Reader
	switch r.ingestPresence.get(key) {
	case ingestGone:
		return nil
	case ingestUnknown:
		reader = r.Client
	case ingestMade:
		reader = r.apiReader
		if reader == nil { // as getChild: a reconciler built without one reads its cache
			reader = r.Client
		}
	}
	cj := &batchv1.CronJob{}
	name := specs.IngestCronJobName(cb)
	err := reader.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: name}, cj)
	switch {
	case err == nil && metav1.IsControlledBy(cj, cb):
		if err := r.Delete(ctx, cj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete CronJob %s: %w", name, err)
		}
	case client.IgnoreNotFound(err) != nil:
		return fmt.Errorf("get CronJob %s: %w", name, err)
	}
	jobs, err := r.ingestJobs(ctx, reader, cb)
	if err != nil {
		return err
	}
	// The CronJob's runs go with it.
	if err := r.deleteJobs(ctx, jobs, func(j *batchv1.Job) bool { return metav1.IsControlledBy(j, cb) }); err != nil {
		return err
	}
	r.ingestPresence.set(key, ingestGone)
	return nil
}

// ingestJobs lists the ingest runs, as reader sees them: the Jobs this
// ChatBackend controls and those its CronJob does.
func (r *ChatBackendReconciler) ingestJobs(ctx context.Context, reader client.Reader, cb *chatv1alpha1.ChatBackend) ([]batchv1.Job, error) {
	var list batchv1.JobList
	if err := reader.List(ctx, &list, client.InNamespace(cb.Namespace), client.MatchingLabels{
		specs.LabelInstance: cb.Name, specs.LabelComponent: specs.ComponentIngest,
	}); err != nil {
		return nil, fmt.Errorf("list ingest Jobs: %w", err)
	}
	cronJob := specs.IngestCronJobName(cb)
	jobs := list.Items[:0]
	for _, j := range list.Items {
		ref := metav1.GetControllerOf(&j)
		if ref != nil && (ref.UID == cb.UID || ref.Kind == "CronJob" && ref.Name == cronJob) {
			jobs = append(jobs, j)
		}
	}
	return jobs, nil
}

// observeIngestRun reads the summary of the latest finished run from its
// pod's termination message, unless status.ingest already holds it, and
// records a Warning Event when that run failed: once per run, since the
// next reconcile finds it in the status.
func (r *ChatBackendReconciler) observeIngestRun(ctx context.Context, s *scope) error {
	latest := latestFinishedJob(s.ingest.jobs)
	if latest == nil {
		return nil
	}
	if st := s.cb.Status.Ingest; st != nil && st.LastResult != nil && st.LastResult.Job == latest.Name {
		return nil
	}
	pods, err := r.jobPods(ctx, latest)
	if err != nil {
		return err
	}
	succeeded := jobConditionTrue(latest, batchv1.JobComplete)
	s.ingest.result, s.ingest.message = ingestResult(latest, succeeded, latestTermination(pods))
	if !succeeded {
		r.event(ctx, s.cb, corev1.EventTypeWarning, chatv1alpha1.ReasonIngestFailed, "Ingest", s.ingest.message)
	}
	return nil
}

// latestFinishedJob is the run that finished last, or nil.
func latestFinishedJob(jobs []batchv1.Job) *batchv1.Job {
	var latest *batchv1.Job
	var at time.Time
	for i := range jobs {
		j := &jobs[i]
		if t, ok := jobFinishTime(j); ok && (latest == nil || t.After(at)) {
			latest, at = j, t
		}
	}
	return latest
}

// jobFinishTime is when job completed or failed.
func jobFinishTime(job *batchv1.Job) (time.Time, bool) {
	switch {
	case jobConditionTrue(job, batchv1.JobComplete):
		return jobConditionTime(job, batchv1.JobComplete).Time, true
	case jobConditionTrue(job, batchv1.JobFailed):
		return jobConditionTime(job, batchv1.JobFailed).Time, true
	}
	return time.Time{}, false
}

// latestTermination is the termination message of the container that
// terminated last among pods: the run's summary, or its last log lines
// when it died before writing one (FallbackToLogsOnError).
func latestTermination(pods []corev1.Pod) string {
	var msg string
	var at time.Time
	for _, pod := range pods {
		for _, cs := range pod.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && !t.FinishedAt.Time.Before(at) {
				msg, at = t.Message, t.FinishedAt.Time
			}
		}
	}
	return strings.TrimSpace(msg)
}

// parseIngestSummary finds the summary in a termination message: its last
// line that decodes as one (logs may precede it when the run failed).
func parseIngestSummary(msg string) (source.Result, bool) {
	lines := strings.Split(msg, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var sum source.Result
		if json.Unmarshal([]byte(line), &sum) == nil {
			return sum, true
		}
	}
	return source.Result{}, false
}

// ingestResult is the status' account of a finished run: its counts, and
// a sentence saying what it did or why it failed.
func ingestResult(job *batchv1.Job, succeeded bool, termination string) (*chatv1alpha1.IngestResult, string) {
	res := &chatv1alpha1.IngestResult{Job: job.Name, Succeeded: &succeeded}
	sum, ok := parseIngestSummary(termination)
	// A failed run's counts say nothing about the index: left unknown.
	if ok && succeeded {
		res.Pages, res.Chunks, res.Errors = count32(sum.Pages), count32(sum.Chunks), count32(sum.Errors)
		res.ChunksAdded, res.ChunksUpdated, res.ChunksRemoved = count32(sum.Added), count32(sum.Updated), count32(sum.Removed)
	}
	var msg string
	switch {
	case succeeded && ok:
		msg = fmt.Sprintf("Job %s indexed %d pages (%d chunks added, %d updated, %d removed, %d pages failed); %d chunks in the index",
			job.Name, sum.Pages, sum.Added, sum.Updated, sum.Removed, sum.Errors, sum.Chunks)
	case succeeded:
		msg = fmt.Sprintf("Job %s succeeded without a summary", job.Name)
	default:
		why := jobConditionMessage(job, batchv1.JobFailed)
		if ok && sum.Message != "" {
			why += ": " + sum.Message
		} else if termination != "" {
			why += ": " + strings.Join(strings.Fields(termination), " ")
		}
		msg = fmt.Sprintf("Job %s failed: %s. Check `kubectl logs job/%s`", job.Name, why, job.Name)
	}
	if succeeded && ok && sum.Message != "" {
		msg += ": " + sum.Message
	}
	if len(msg) > maxIngestMessage {
		msg = msg[:maxIngestMessage-3] + "..."
	}
	return res, msg
}

// count32 is a count of the summary as the status stores it.
func count32(n int) *int32 {
	return ptr.To(int32(min(n, math.MaxInt32))) //nolint:gosec // clamped
}

// setIngestStatus computes status.ingest and the Indexed condition from the
// scope (and the status' own record of earlier runs, whose Jobs the
// CronJob's history limits delete).
func setIngestStatus(cb *chatv1alpha1.ChatBackend, s *scope) {
	if cb.Spec.Ingest == nil {
		cb.Status.Ingest = nil
		meta.RemoveStatusCondition(&cb.Status.Conditions, chatv1alpha1.ConditionIndexed)
		return
	}
	st := cb.Status.Ingest
	if st == nil {
		st = &chatv1alpha1.IngestStatus{}
	}
	running := ""
	for i := range s.ingest.jobs {
		j := &s.ingest.jobs[i]
		if created := j.CreationTimestamp; !created.IsZero() && (st.LastScheduleTime == nil || st.LastScheduleTime.Before(&created)) {
			st.LastScheduleTime = &created
		}
		if jobConditionTrue(j, batchv1.JobComplete) {
			done := jobConditionTime(j, batchv1.JobComplete)
			if st.LastSuccessTime == nil || st.LastSuccessTime.Before(&done) {
				st.LastSuccessTime = &done
			}
		}
		if !jobFinished(j) {
			running = j.Name
		}
	}
	if s.ingest.result != nil {
		st.LastResult, st.Message = s.ingest.result, s.ingest.message
	}
	if *st == (chatv1alpha1.IngestStatus{}) {
		st = nil
	}
	cb.Status.Ingest = st
	c := indexedCondition(cb, s, running)
	meta.SetStatusCondition(&cb.Status.Conditions, metav1.Condition{Type: chatv1alpha1.ConditionIndexed,
		Status: c.status, Reason: c.reason, Message: c.message, ObservedGeneration: cb.Generation})
}

// indexedCondition: True when the latest finished run succeeded and left
// chunks in the index; otherwise False, with what to wait for or fix.
func indexedCondition(cb *chatv1alpha1.ChatBackend, s *scope, running string) condition {
	st := cb.Status.Ingest
	switch {
	case s.ingest.scheduleProblem != "":
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonInvalidSchedule, s.ingest.scheduleProblem}
	case st == nil || st.LastResult == nil:
		msg := "no ingest run finished yet"
		switch {
		case running != "":
			msg = fmt.Sprintf("Job %s is indexing", running)
		case s.ingest.waiting != "":
			msg += "; " + s.ingest.waiting
		case cb.Spec.Ingest.IsSuspended():
			msg += "; spec.ingest.suspend is true"
		}
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonIngestPending, msg}
	case st.LastResult.Succeeded == nil || !*st.LastResult.Succeeded:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonIngestFailed, st.Message}
	case st.LastResult.Chunks != nil && *st.LastResult.Chunks == 0:
		return condition{metav1.ConditionFalse, chatv1alpha1.ReasonIndexEmpty,
			st.Message + ": the index is empty; check the sources' url, ref and path"}
	default:
		return condition{metav1.ConditionTrue, chatv1alpha1.ReasonIngestSucceeded, st.Message}
	}
}

// IngestStaleAfterSchedules is how many intervals of spec.ingest.schedule
// may pass without a successful run before ChatBackendIndexStale fires.
const IngestStaleAfterSchedules = 3

// maxScheduleSamples bounds the walk over a schedule's next runs
// (ingestInterval): a run every minute reaches the horizon after a week
// of samples.
const maxScheduleSamples = 16384

// ingestInterval is the longest gap between two runs of schedule, over
// the next eight days (so weekends count), or at least two gaps for a
// monthly or yearly one.
func ingestInterval(schedule string, now time.Time) (time.Duration, error) {
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return 0, err
	}
	horizon := now.Add(8 * 24 * time.Hour)
	var longest time.Duration
	t := sched.Next(now)
	for i := 0; i < maxScheduleSamples && (t.Before(horizon) || i < 2); i++ {
		next := sched.Next(t)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(t))
		t = next
	}
	return longest, nil
}

// ingestRuns maps a run of an ingest CronJob to its ChatBackend, which the
// labels of the CronJob's job template name (the Job's controller is the
// CronJob, so Owns does not see it).
func ingestRuns(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	ref := metav1.GetControllerOf(o)
	if ref == nil || ref.Kind != "CronJob" || l[specs.LabelComponent] != specs.ComponentIngest || l[specs.LabelInstance] == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: l[specs.LabelInstance]}}}
}
