// Package v1alpha1 contains the ChatBackend API, group chat.chatbackend.io.
//
// +kubebuilder:object:generate=true
// +groupName=chat.chatbackend.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The plain apimachinery SchemeBuilder rather than controller-runtime's
// scheme.Builder: an API package should depend on apimachinery only, so that
// clients can import it without pulling in controller-runtime.
var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "chat.chatbackend.io", Version: "v1alpha1"}

	// SchemeBuilder registers the Go types with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes registers the kinds of this group-version and the metav1
// types (ListOptions, ...) every served group-version needs.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ChatBackend{}, &ChatBackendList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
