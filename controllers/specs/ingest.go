package specs

import (
	"encoding/json"
	"fmt"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
)

// ComponentIngest labels the ingest CronJob, its Jobs and their pods.
const ComponentIngest = "ingest"

// IngestAuthDir holds one directory per git source with a secretRef, named
// after the source, where its Secret's keys are files (source.Git.AuthDir).
// /etc/chatbackend is the operator's (the CRD refuses user mounts there).
const IngestAuthDir = "/etc/chatbackend/ingest-auth"

// ingestAuthVolumePrefix starts the name of each credentials volume; the
// CRD reserves it in spec.volumes. The source name's 48 characters keep
// the volume name within a DNS label.
const ingestAuthVolumePrefix = "ingest-auth-"

// Bounds of an ingest run.
const (
	// IngestTmpSizeLimit caps the emptyDir at /tmp (os.TempDir, where the
	// shallow clone goes): a repository far larger than its docs evicts
	// the pod instead of filling the node's disk.
	IngestTmpSizeLimit = "1Gi"
	// IngestActiveDeadlineSeconds bounds a run, its retries included: a
	// run that hangs must not hold the CronJob (concurrencyPolicy Forbid)
	// for ever.
	IngestActiveDeadlineSeconds int64 = 3600
	// ingestBackoffLimit: one retry rides out a blip of the database or
	// the git host; the next scheduled run retries anyway.
	ingestBackoffLimit int32 = 1
	// IngestStartingDeadlineSeconds: a run missed by more than this (the
	// controller was down) is skipped rather than started late; the next
	// schedule runs instead.
	IngestStartingDeadlineSeconds int64 = 300
	// History kept by the CronJob: enough runs to read recent logs and
	// compare, few enough not to pile up pods.
	ingestSuccessfulJobsHistory int32 = 3
	ingestFailedJobsHistory     int32 = 3
)

// IngestCronJobName is the CronJob of a ChatBackend's ingest runs. A
// CronJob's name must leave 11 characters of the 63 of a label value for
// the Jobs it names (<cronjob>-<minutes since epoch>), so the longest
// ChatBackend names (46 characters) are shortened, with a hash that keeps
// them apart.
func IngestCronJobName(cb *chatv1alpha1.ChatBackend) string {
	const maxLen = 52
	name := cb.Name + "-ingest"
	if len(name) <= maxLen {
		return name
	}
	return cb.Name[:maxLen-len("-ingest")-9] + "-" + ShortHash(cb.Name) + "-ingest"
}

// IngestJobName is the Job that runs at once when a ChatBackend with
// spec.ingest is created, and again when its sources or the image change:
// it is named after both, so a change makes a new Job and an unchanged
// spec never runs twice. 46 + 15 characters fit the 63 of a label value.
func IngestJobName(cb *chatv1alpha1.ChatBackend, image string) (string, error) {
	sources, err := IngestSourcesJSON(cb)
	if err != nil {
		return "", err
	}
	return cb.Name + "-ingest-" + ShortHash(sources+"\x00"+image), nil
}

// IngestSources is spec.ingest.sources in the contract's terms
// (apiserver/rag/ingest/source), each git source's credentials pointed at
// the directory IngestPod mounts them in.
func IngestSources(cb *chatv1alpha1.ChatBackend) []source.Spec {
	if cb.Spec.Ingest == nil {
		return nil
	}
	out := make([]source.Spec, 0, len(cb.Spec.Ingest.Sources))
	for _, s := range cb.Spec.Ingest.Sources {
		spec := source.Spec{Name: s.Name}
		if g := s.Git; g != nil {
			spec.Git = &source.Git{URL: g.URL, Ref: g.Ref, Path: g.Path, SiteURL: g.SiteURL, RouteBase: g.RouteBase}
			if g.SecretRef != nil {
				spec.Git.AuthDir = IngestAuthDir + "/" + s.Name
			}
		}
		if site := s.Site; site != nil {
			spec.Site = &source.Site{URL: site.URL, MaxPages: int(site.MaxPages)}
		}
		out = append(out, spec)
	}
	return out
}

// IngestSourcesJSON is the value of INGEST_SOURCES.
func IngestSourcesJSON(cb *chatv1alpha1.ChatBackend) (string, error) {
	b, err := json.Marshal(IngestSources(cb))
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", envvar.IngestSources, err)
	}
	return string(b), nil
}

// IngestCronJob runs `chat-apiserver ingest` on spec.ingest.schedule with
// image (the migrated one, as the Deployment) and the env Secret of
// envHash. Runs never overlap (Forbid; chat-apiserver also takes an
// advisory lock, since the Job of IngestJob may run meanwhile).
func IngestCronJob(cb *chatv1alpha1.ChatBackend, image, envHash string) (*batchv1.CronJob, error) {
	job, err := ingestJobSpec(cb, image, envHash)
	if err != nil {
		return nil, err
	}
	in := cb.Spec.Ingest
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: objectMeta(cb, IngestCronJobName(cb), ComponentIngest),
		Spec: batchv1.CronJobSpec{
			Schedule:                   in.ScheduleOrDefault(),
			Suspend:                    ptr.To(in.IsSuspended()),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    ptr.To(IngestStartingDeadlineSeconds),
			SuccessfulJobsHistoryLimit: ptr.To(ingestSuccessfulJobsHistory),
			FailedJobsHistoryLimit:     ptr.To(ingestFailedJobsHistory),
			JobTemplate: batchv1.JobTemplateSpec{
				// The operator's labels go on the Jobs too: its cache only
				// holds objects carrying them, and the status reads the
				// runs from there.
				ObjectMeta: metav1.ObjectMeta{Labels: Labels(cb, ComponentIngest)},
				Spec:       job,
			},
		},
	}, nil
}

// IngestJob is the run started at once (IngestJobName). Created once,
// never updated: a Job's pod template is immutable.
func IngestJob(cb *chatv1alpha1.ChatBackend, image, envHash string) (*batchv1.Job, error) {
	name, err := IngestJobName(cb, image)
	if err != nil {
		return nil, err
	}
	job, err := ingestJobSpec(cb, image, envHash)
	if err != nil {
		return nil, err
	}
	meta := objectMeta(cb, name, ComponentIngest)
	meta.Annotations = map[string]string{AnnotationImage: image, AnnotationEnvHash: envHash}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec:       job,
	}, nil
}

func ingestJobSpec(cb *chatv1alpha1.ChatBackend, image, envHash string) (batchv1.JobSpec, error) {
	pod, err := ingestPod(cb, image, envHash)
	if err != nil {
		return batchv1.JobSpec{}, err
	}
	return batchv1.JobSpec{
		BackoffLimit:          ptr.To(ingestBackoffLimit),
		ActiveDeadlineSeconds: ptr.To(IngestActiveDeadlineSeconds),
		Template: corev1.PodTemplateSpec{
			// A Job's pod as the migrations one: the same opt-outs (a
			// service-mesh sidecar that never exits would keep the run
			// from completing) apply.
			ObjectMeta: podMetadata(cb.Spec.Migration.PodMetadata, Labels(cb, ComponentIngest), nil),
			Spec:       pod,
		},
	}, nil
}

// ingestPod is the API's pod (podSpec: image, env Secret, scheduling,
// identity, hardening) running `chat-apiserver ingest` on INGEST_SOURCES,
// with a size-limited /tmp for the clone and each git source's
// credentials mounted read-only at its AuthDir.
func ingestPod(cb *chatv1alpha1.ChatBackend, image, envHash string) (corev1.PodSpec, error) {
	sources, err := IngestSourcesJSON(cb)
	if err != nil {
		return corev1.PodSpec{}, err
	}
	pod := podSpec(cb, image, envHash, []string{"ingest"})
	// As the migrations pod: failed attempts stay for `kubectl logs`.
	pod.RestartPolicy = corev1.RestartPolicyNever
	c := &pod.Containers[0]
	// chat-apiserver writes the run's summary (a JSON line) as the
	// termination message, which the operator turns into status.ingest;
	// a run that dies before writing it leaves its last log lines instead.
	c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	c.Env = append(c.Env, corev1.EnvVar{Name: envvar.IngestSources, Value: sources})
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == tmpVolume {
			pod.Volumes[i].EmptyDir.SizeLimit = ptr.To(resource.MustParse(IngestTmpSizeLimit))
		}
	}
	for _, s := range cb.Spec.Ingest.Sources {
		if s.Git == nil || s.Git.SecretRef == nil {
			continue
		}
		name := ingestAuthVolumePrefix + s.Name
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			// Readable by the pod's group only (fsGroup below): an SSH
			// identity is a private key.
			SecretName: s.Git.SecretRef.Name, DefaultMode: ptr.To(keyMode),
		}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: name, MountPath: IngestAuthDir + "/" + s.Name, ReadOnly: true})
		keysReadableByGroup(&pod)
	}
	return pod, nil
}
