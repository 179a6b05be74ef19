package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// reconcileDeployment runs the last migrated image with the current env
// Secret, as long as that Secret points at the database the image was
// migrated on. Without a migrated image there is no Deployment yet; without
// the env Secret, or while a new database is being migrated, the existing
// Deployment is left untouched: rolled with missing values or onto an
// unmigrated database, its pods would fail every request.
func (r *ChatBackendReconciler) reconcileDeployment(ctx context.Context, s *scope) (ctrl.Result, error) {
	cb := s.cb
	if cb.Status.MigratedImage == "" || s.envHash == "" || cb.Status.MigratedDatabase != s.database {
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
	specs.SetPodUser(&dep.Spec.Template.Spec, r.PodUser)
	specs.SetMountedSecretsHash(&dep.Spec.Template, s.mountHash)
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
	err := r.getChild(ctx, types.NamespacedName{Namespace: cb.Namespace, Name: name}, obj)
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
