package specs

import (
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// migrationBackoffLimit: a couple of retries ride out a database that is
// briefly unreachable; more would only delay reporting a broken migration.
const migrationBackoffLimit int32 = 2

// MigrationJob runs `chat-apiserver migrate` with image, reading the env
// Secret of envHash, whose database fingerprint is database. envHash is
// recorded so that a failed Job is retried when the Secret data it ran
// with changes.
//
// The Job is created once and never updated: a Job's pod template is
// immutable, and the Job's identity is the image and the database it
// migrates.
func MigrationJob(cb *chatv1alpha1.ChatBackend, image, envHash, database string) *batchv1.Job {
	meta := objectMeta(cb, MigrationJobName(cb, image, database), ComponentMigrations)
	meta.Annotations = map[string]string{
		AnnotationImage:      image,
		AnnotationDatabase:   database,
		AnnotationGeneration: strconv.FormatInt(cb.Generation, 10),
		AnnotationEnvHash:    envHash,
	}
	pod := podSpec(cb, image, envHash, []string{"migrate"})
	if r := cb.Spec.Migration.Resources; r != nil {
		pod.Containers[0].Resources = DefaultResources(*r)
	}
	// A failed attempt leaves its pod for `kubectl logs`; the Job's
	// backoffLimit makes the retries.
	pod.RestartPolicy = corev1.RestartPolicyNever
	// The migrate command's error (the last lines it wrote) becomes the
	// failed container's termination message, which the reconciler puts in
	// the Migrated condition: no `kubectl logs` needed to see why.
	pod.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To(migrationBackoffLimit),
			// A pod that can never start (an image that does not exist, a
			// node that never fits) would otherwise keep the Job, and every
			// later upgrade waiting behind it, running for ever.
			ActiveDeadlineSeconds: ptr.To(cb.Spec.Migration.ActiveDeadlineSecondsOrDefault()),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMetadata(cb.Spec.Migration.PodMetadata, Labels(cb, ComponentMigrations), nil),
				Spec:       pod,
			},
		},
	}
}
