package controllers

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/chatbackend/chatbackend/controllers/specs"
)

// reconcileNetworkPolicy applies the NetworkPolicy of spec.networkPolicy
// when it is enabled and deletes the one it made when it is not.
//
// Disabled is the default, so this runs for nearly every ChatBackend on
// every reconcile: the policy to delete is looked up in the cache only, not
// confirmed with the API server on a miss as deleteOwned does. A policy
// the operator made carries its label and so is in the cache; one that
// does not is someone else's (or had its labels edited away) and is not
// the operator's to delete. A live read per reconcile of every ChatBackend
// for that case would cost more than it saves.
func (r *ChatBackendReconciler) reconcileNetworkPolicy(ctx context.Context, s *scope) (ctrl.Result, error) {
	if specs.WantsNetworkPolicy(s.cb) {
		return ctrl.Result{}, r.apply(ctx, s.cb, specs.NetworkPolicy(s.cb))
	}
	np := &networkingv1.NetworkPolicy{}
	err := r.Get(ctx, types.NamespacedName{Namespace: s.cb.Namespace, Name: s.cb.Name}, np)
	if err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(np, s.cb) {
		return ctrl.Result{}, nil
	}
	if err := r.Delete(ctx, np); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("delete NetworkPolicy %s: %w", np.Name, err)
	}
	return ctrl.Result{}, nil
}
