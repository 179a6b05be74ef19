package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// reconcileEnvSecret copies the referenced secret values into `<name>-env`.
// A missing Secret or key is the user's to fix, not a transient error: it
// is reported in the status and an Event, and the Secret watch (plus a slow
// requeue) brings the reconcile back, instead of an error backoff loop.
func (r *ChatBackendReconciler) reconcileEnvSecret(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	data := map[string][]byte{}
	for _, ref := range specs.EnvSecretRefs(&cb.Spec) {
		sec := &corev1.Secret{}
		err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: ref.Ref.Name}, sec)
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
			r.eventOnce(ctx, cb, chatv1alpha1.ConditionReady, corev1.EventTypeWarning, s.secretProblem.reason, "ResolveSecrets", s.secretProblem.message)
			return ctrl.Result{RequeueAfter: orDefault(r.SecretRecheckInterval, DefaultSecretRecheckInterval)}, nil
		}
	}
	if err := r.apply(ctx, cb, specs.EnvSecret(cb, data)); err != nil {
		return ctrl.Result{}, err
	}
	s.envHash = specs.HashData(data)
	return ctrl.Result{}, nil
}

// reconcileDeployment runs the last migrated image. Without a migrated
// image there is no Deployment yet; without the env Secret the existing
// Deployment is left untouched rather than rolled with missing values.
func (r *ChatBackendReconciler) reconcileDeployment(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	if cb.Status.MigratedImage == "" || s.envHash == "" {
		dep := &appsv1.Deployment{}
		err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}, dep)
		if err == nil && metav1.IsControlledBy(dep, cb) {
			s.deployment = dep
		} else if client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("get Deployment %s: %w", cb.Name, err)
		}
		return ctrl.Result{}, nil
	}
	dep := specs.Deployment(cb, cb.Status.MigratedImage, s.envHash)
	if err := r.apply(ctx, cb, dep); err != nil {
		return ctrl.Result{}, err
	}
	s.deployment = dep
	return ctrl.Result{}, r.observeStuckRollout(ctx, s)
}

func (r *ChatBackendReconciler) reconcilePodDisruptionBudget(ctx context.Context, s *scope) (ctrl.Result, error) {
	if !specs.WantsPodDisruptionBudget(s.cb) {
		return ctrl.Result{}, r.deleteOwned(ctx, s.cb, &policyv1.PodDisruptionBudget{}, s.cb.Name)
	}
	return ctrl.Result{}, r.apply(ctx, s.cb, specs.PodDisruptionBudget(s.cb))
}

// reconcileService applies the API Service and the in-cluster-only metrics
// Service.
func (r *ChatBackendReconciler) reconcileService(ctx context.Context, s *scope) (ctrl.Result, error) {
	if err := r.apply(ctx, s.cb, specs.Service(s.cb)); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.apply(ctx, s.cb, specs.MetricsService(s.cb)); err != nil {
		return ctrl.Result{}, err
	}
	s.serviceURL = specs.ServiceURL(s.cb)
	return ctrl.Result{}, nil
}

// deleteOwned deletes the object named name if this ChatBackend controls
// it; an object of the same name that someone else made is left alone.
func (r *ChatBackendReconciler) deleteOwned(ctx context.Context, cb *chatv1alpha1.ChatBackend, obj client.Object, name string) error {
	err := r.Get(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %T %s: %w", obj, name, err)
	}
	if !metav1.IsControlledBy(obj, cb) {
		return nil
	}
	if err := r.Delete(ctx, obj); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete %T %s: %w", obj, name, err)
	}
	return nil
}
