package specs

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// objectMeta is the metadata of every child: in the ChatBackend's namespace,
// with the common labels (component left out when empty). Owner references
// are the reconciler's, which has the scheme.
func objectMeta(cb *chatv1alpha1.ChatBackend, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: cb.Namespace,
		Labels:    Labels(cb, component),
	}
}
