package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// reconcileEnvSecret copies the referenced secret values into
// `<name>-env-<hash>` (specs.EnvSecret says why content-addressed) and
// records the hash and the database fingerprint in the scope.
// A missing Secret or key is the user's to fix, not a transient error: it
// is reported in the status and an Event, and the Secret watch (plus a slow
// requeue) brings the reconcile back, instead of an error backoff loop.
// When no referenced Secret changed since the last reconcile, nothing is
// read or applied (secretInputs).
func (r *ChatBackendReconciler) reconcileEnvSecret(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	r.recordIgnoredEnv(ctx, s)
	if rec, ok := r.secretInputs.unchanged(ctx, r.cache, cb); ok {
		r.applied.keep(types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}, childKey(&corev1.Secret{}, rec.envSecret))
		s.envHash, s.mountHash, s.database = rec.envHash, rec.mountHash, rec.database
		return ctrl.Result{}, nil
	}
	read := secretReads{}
	data := map[string][]byte{}
	for _, ref := range specs.EnvSecretRefs(&cb.Spec) {
		sec, err := r.readSecret(ctx, cb.Namespace, ref.Ref.Name, read)
		switch {
		case apierrors.IsNotFound(err):
			s.secretProblem = &condition{reason: chatv1alpha1.ReasonSecretNotFound,
				message: fmt.Sprintf("Secret %q referenced by %s not found", ref.Ref.Name, ref.Field)}
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("get Secret %s (%s): %w", ref.Ref.Name, ref.Field, err)
		default:
			v, ok := sec.Data[ref.Ref.Key]
			if !ok {
				s.secretProblem = &condition{reason: chatv1alpha1.ReasonSecretKeyNotFound,
					message: fmt.Sprintf("Secret %q has no key %q (referenced by %s)", ref.Ref.Name, ref.Ref.Key, ref.Field)}
			}
			data[ref.EnvName] = v
		}
		if s.secretProblem != nil {
			return r.secretProblem(ctx, s), nil
		}
	}
	mountHash, err := r.hashMountedSecrets(ctx, s, read)
	if err != nil || s.secretProblem != nil {
		return r.secretProblem(ctx, s), err
	}
	env := specs.EnvSecret(cb, data)
	if err := r.apply(ctx, cb, env); err != nil {
		return ctrl.Result{}, err
	}
	s.envHash = specs.HashData(data)
	s.mountHash = mountHash
	s.database = specs.DatabaseFingerprint(data)
	r.secretInputs.remember(cb, secretInputsRecord{
		versions: read.versions(), envSecret: env.Name, envSecretVersion: env.ResourceVersion,
		envHash: s.envHash, mountHash: s.mountHash, database: s.database,
	})
	return ctrl.Result{}, nil
}

// secretReads are the referenced Secrets one reconcile read, by name, so
// that a Secret referenced twice (a URL and a direct URL) is read once.
// They live as long as the reconcile: no Secret value is kept beyond it.
type secretReads map[string]*corev1.Secret

// versions are the resourceVersions of the Secrets read, for secretInputs.
func (read secretReads) versions() map[string]string {
	v := make(map[string]string, len(read))
	for name, sec := range read {
		v[name] = sec.ResourceVersion
	}
	return v
}

// readSecret reads a referenced Secret from the API server (Secrets are
// not cached, ManagerClientOptions), once per reconcile.
func (r *ChatBackendReconciler) readSecret(ctx context.Context, namespace, name string, read secretReads) (*corev1.Secret, error) {
	if sec, ok := read[name]; ok {
		return sec, nil
	}
	sec := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, sec); err != nil {
		return nil, err
	}
	read[name] = sec
	return sec, nil
}

// secretProblem reports s.secretProblem (if any) in an Event and brings
// the reconcile back after the recheck interval.
func (r *ChatBackendReconciler) secretProblem(ctx context.Context, s *scope) ctrl.Result {
	if s.secretProblem == nil {
		return ctrl.Result{}
	}
	r.eventOnce(ctx, s.cb, chatv1alpha1.ConditionReady, corev1.EventTypeWarning, s.secretProblem.reason, "ResolveSecrets", s.secretProblem.message)
	return ctrl.Result{RequeueAfter: orDefault(r.SecretRecheckInterval, DefaultSecretRecheckInterval)}
}

// hashMountedSecrets checks that the Secrets the pods mount as files
// (specs.MountedSecrets: TLS material) and their keys exist, setting
// s.secretProblem if not: a pod would otherwise wait in
// ContainerCreating with no word in the status. It returns the hash of
// their data (specs.AnnotationMountedSecretsHash says why), "" when there
// are none. Their values are read live, like the env Secret's, and kept
// nowhere.
func (r *ChatBackendReconciler) hashMountedSecrets(ctx context.Context, s *scope, read secretReads) (string, error) {
	mounted := specs.MountedSecrets(&s.cb.Spec)
	if len(mounted) == 0 {
		return "", nil
	}
	data := map[string][]byte{}
	for _, m := range mounted {
		sec, err := r.readSecret(ctx, s.cb.Namespace, m.Name, read)
		if apierrors.IsNotFound(err) {
			s.secretProblem = &condition{reason: chatv1alpha1.ReasonSecretNotFound,
				message: fmt.Sprintf("Secret %q referenced by %s not found", m.Name, m.Field)}
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("get Secret %s (%s): %w", m.Name, m.Field, err)
		}
		for _, k := range m.Keys {
			v, ok := sec.Data[k]
			if !ok {
				s.secretProblem = &condition{reason: chatv1alpha1.ReasonSecretKeyNotFound,
					message: fmt.Sprintf("Secret %q has no key %q (referenced by %s)", m.Name, k, m.Field)}
				return "", nil
			}
			data[m.Field+"/"+k] = v
		}
	}
	return specs.HashData(data), nil
}

// recordIgnoredEnv notes in the scope the spec.env entries the pods will
// not get because the operator sets those variables itself, and records a
// Warning Event when that list changes: silently dropping a variable the
// user asked for (DATABASE_URL pointing elsewhere, say) would leave them
// debugging the wrong thing. status.ignoredEnv is the memory that makes the
// Event once per change, as eventOnce uses a condition's message.
//
// Why not refuse such entries at admission with CEL: which variables the
// operator sets depends on the spec (QDRANT_URL only with spec.qdrant, the
// Secret-fed ones only with their reference), so a CEL rule would either
// refuse entries that work today or copy that logic, and a stricter rule
// would make existing ChatBackends fail validation on their next edit.
func (r *ChatBackendReconciler) recordIgnoredEnv(ctx context.Context, s *scope) {
	s.ignoredEnv = specs.IgnoredEnv(s.cb)
	if len(s.ignoredEnv) == 0 || slices.Equal(s.ignoredEnv, s.cb.Status.IgnoredEnv) {
		return
	}
	r.event(ctx, s.cb, corev1.EventTypeWarning, chatv1alpha1.ReasonEnvIgnored, "ResolveEnv", fmt.Sprintf(
		"spec.env sets %s, which the operator sets itself from the spec's fields or referenced Secrets: those entries are ignored (status.ignoredEnv)",
		strings.Join(s.ignoredEnv, ", ")))
}

// collectEnvSecrets deletes the env Secrets nothing uses any more: not the
// current one, not the one the Deployment's template reads, not one a
// running migrations Job reads. It waits until the Deployment is rolled
// out, because the pods of its previous ReplicaSet still read their
// Secret until they are gone. The Secret `<name>-env` of operator versions
// before content addressing goes the same way.
func (r *ChatBackendReconciler) collectEnvSecrets(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	if s.envHash == "" || (s.deployment != nil && !rolledOut(cb, s.deployment)) {
		return ctrl.Result{}, nil
	}
	keep := map[string]bool{specs.EnvSecretName(cb, s.envHash): true}
	if s.deployment != nil {
		keepEnvFrom(keep, &s.deployment.Spec.Template.Spec)
	}
	jobs, err := r.migrationJobs(ctx, cb)
	if err != nil {
		return ctrl.Result{}, err
	}
	// Running ingest runs too: a pod of theirs not started yet would not
	// find its env Secret.
	jobs = append(jobs, s.ingest.jobs...)
	for i := range jobs {
		if !jobFinished(&jobs[i]) {
			keepEnvFrom(keep, &jobs[i].Spec.Template.Spec)
		}
	}
	var list metav1.PartialObjectMetadataList
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := r.secretMetadataReader().List(ctx, &list, client.InNamespace(cb.Namespace), client.MatchingLabels{specs.LabelInstance: cb.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list env Secrets: %w", err)
	}
	for i := range list.Items {
		sec := &list.Items[i]
		isEnv := sec.Name == cb.Name+"-env" || strings.HasPrefix(sec.Name, specs.EnvSecretPrefix(cb))
		if !isEnv || keep[sec.Name] || !metav1.IsControlledBy(sec, cb) {
			continue
		}
		if err := r.Delete(ctx, sec); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete unused env Secret %s: %w", sec.Name, err)
		}
	}
	return ctrl.Result{}, nil
}

// keepEnvFrom marks the Secrets a pod template reads through envFrom.
func keepEnvFrom(keep map[string]bool, pod *corev1.PodSpec) {
	for _, c := range pod.Containers {
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				keep[e.SecretRef.Name] = true
			}
		}
	}
}
