// Package credentials turns an issuer's spec and the Secrets and ConfigMaps it
// names into the options of an EJBCA client: the client certificate, the
// bearer token or OAuth2 client credentials, and the trusted roots. It reads
// only from the one namespace it is given, so an issuer can never reach a
// Secret of another tenant.
package credentials

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
	"github.com/certctl-io/ejbca-issuer/internal/ejbca"
)

// ObjectKind is the kind of a referenced object.
type ObjectKind string

// The kinds an issuer can reference.
const (
	KindSecret    ObjectKind = "Secret"
	KindConfigMap ObjectKind = "ConfigMap"
)

// Metadata is an empty metadata-only object of kind, for the watches and
// reads that must not hold Secret or ConfigMap contents.
func (k ObjectKind) Metadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind(string(k)))
	return m
}

// Reference is an object an issuer's spec names, in the issuer's namespace.
type Reference struct {
	Kind ObjectKind
	Name string
}

// References lists what an issuer's spec names, in a stable order.
func References(spec *v1alpha1.IssuerSpec) []Reference {
	var refs []Reference
	switch spec.EffectiveAuthMode() {
	case v1alpha1.AuthModeMTLS:
		if spec.Auth.MTLS != nil {
			refs = append(refs, Reference{KindSecret, spec.Auth.MTLS.SecretName})
		}
	case v1alpha1.AuthModeOAuth2:
		if o := spec.Auth.OAuth2; o != nil {
			if o.TokenSecretRef != nil {
				refs = append(refs, Reference{KindSecret, o.TokenSecretRef.Name})
			}
			if o.ClientSecretRef != nil {
				refs = append(refs, Reference{KindSecret, o.ClientSecretRef.Name})
			}
		}
	}
	if b := spec.CABundle; b != nil {
		if b.SecretRef != nil {
			refs = append(refs, Reference{KindSecret, b.SecretRef.Name})
		}
		if b.ConfigMapRef != nil {
			refs = append(refs, Reference{KindConfigMap, b.ConfigMapRef.Name})
		}
	}
	return refs
}

// NotFoundError says a referenced Secret or ConfigMap does not exist.
type NotFoundError struct {
	Kind      ObjectKind
	Namespace string
	Name      string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s/%s not found", e.Kind, e.Namespace, e.Name)
}

// InvalidError says a referenced object exists but cannot be used.
type InvalidError struct {
	Kind      ObjectKind
	Namespace string
	Name      string
	Reason    string
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s %s/%s: %s", e.Kind, e.Namespace, e.Name, e.Reason)
}

// Load reads the issuer's referenced objects from namespace and returns the
// client options for them. now decides whether a client certificate has
// expired. Errors are *NotFoundError, *InvalidError or API errors.
func Load(ctx context.Context, r client.Reader, namespace string, spec *v1alpha1.IssuerSpec, now time.Time) (ejbca.Options, error) {
	nodes := spec.NodeURLs()
	opts := ejbca.Options{URL: nodes[0], URLs: nodes[1:]}
	roots, err := loadRoots(ctx, r, namespace, spec.CABundle)
	if err != nil {
		return opts, err
	}
	opts.Roots = roots

	switch spec.EffectiveAuthMode() {
	case v1alpha1.AuthModeMTLS:
		if spec.Auth.MTLS == nil {
			return opts, fmt.Errorf("auth.mode is mtls but auth.mtls is not set")
		}
		cert, err := loadClientCertificate(ctx, r, namespace, spec.Auth.MTLS.SecretName, now)
		if err != nil {
			return opts, err
		}
		opts.ClientCertificate = cert
	case v1alpha1.AuthModeOAuth2:
		o := spec.Auth.OAuth2
		switch {
		case o == nil:
			return opts, fmt.Errorf("auth.mode is oauth2 but auth.oauth2 is not set")
		case o.TokenSecretRef != nil:
			tok, err := secretValue(ctx, r, namespace, o.TokenSecretRef.Name, o.TokenSecretRef.Key)
			if err != nil {
				return opts, err
			}
			opts.BearerToken = strings.TrimSpace(tok)
		case o.ClientSecretRef != nil:
			idKey, secretKey := o.ClientSecretRef.Keys()
			id, err := secretValue(ctx, r, namespace, o.ClientSecretRef.Name, idKey)
			if err != nil {
				return opts, err
			}
			secret, err := secretValue(ctx, r, namespace, o.ClientSecretRef.Name, secretKey)
			if err != nil {
				return opts, err
			}
			opts.ClientCredentials = &ejbca.ClientCredentials{
				TokenURL: o.TokenURL, ClientID: strings.TrimSpace(id), ClientSecret: strings.TrimSpace(secret),
				Scopes: o.Scopes, Audience: o.Audience,
			}
		default:
			return opts, fmt.Errorf("auth.oauth2 has neither tokenSecretRef nor clientSecretRef")
		}
	default:
		return opts, fmt.Errorf("unknown auth.mode %q", spec.Auth.Mode)
	}
	return opts, nil
}

func getSecret(ctx context.Context, r client.Reader, namespace, name string) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &NotFoundError{KindSecret, namespace, name}
		}
		return nil, err
	}
	return &s, nil
}

func secretValue(ctx context.Context, r client.Reader, namespace, name, key string) (string, error) {
	s, err := getSecret(ctx, r, namespace, name)
	if err != nil {
		return "", err
	}
	v, ok := s.Data[key]
	if !ok || len(strings.TrimSpace(string(v))) == 0 {
		return "", &InvalidError{KindSecret, namespace, name, fmt.Sprintf("has no key %q (or it is empty)", key)}
	}
	return string(v), nil
}

func loadClientCertificate(ctx context.Context, r client.Reader, namespace, name string, now time.Time) (*tls.Certificate, error) {
	s, err := getSecret(ctx, r, namespace, name)
	if err != nil {
		return nil, err
	}
	invalid := func(format string, args ...any) error {
		return &InvalidError{KindSecret, namespace, name, fmt.Sprintf(format, args...)}
	}
	if s.Type != corev1.SecretTypeTLS {
		return nil, invalid("is of type %q, want %q with tls.crt and tls.key", s.Type, corev1.SecretTypeTLS)
	}
	certPEM, keyPEM := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, invalid("needs both tls.crt and tls.key")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error names what failed to parse; it never contains key material.
		return nil, invalid("tls.crt and tls.key are not a usable certificate and key: %v", err)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, invalid("tls.crt does not parse: %v", err)
		}
	}
	if now.After(leaf.NotAfter) {
		return nil, invalid("the client certificate %q expired at %s", leaf.Subject.String(), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, invalid("the client certificate %q is not valid before %s", leaf.Subject.String(), leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &pair, nil
}

// loadRoots returns nil (the system roots) without a bundle; with one, the
// system roots plus the bundle, or the bundle alone when asked.
func loadRoots(ctx context.Context, r client.Reader, namespace string, b *v1alpha1.CABundle) (*x509.CertPool, error) {
	if b == nil {
		return nil, nil
	}
	var (
		data      []byte
		kind      ObjectKind
		name, key string
	)
	switch {
	case b.SecretRef != nil:
		kind, name, key = KindSecret, b.SecretRef.Name, b.SecretRef.Key
		s, err := getSecret(ctx, r, namespace, name)
		if err != nil {
			return nil, err
		}
		data = s.Data[key]
	case b.ConfigMapRef != nil:
		kind, name, key = KindConfigMap, b.ConfigMapRef.Name, b.ConfigMapRef.Key
		var cm corev1.ConfigMap
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, &NotFoundError{KindConfigMap, namespace, name}
			}
			return nil, err
		}
		if v, ok := cm.Data[key]; ok {
			data = []byte(v)
		} else {
			data = cm.BinaryData[key]
		}
	default:
		return nil, nil
	}
	if len(data) == 0 {
		return nil, &InvalidError{kind, namespace, name, fmt.Sprintf("has no key %q (or it is empty)", key)}
	}
	pool := x509.NewCertPool()
	if !b.ExcludeSystemRoots {
		if sys, err := x509.SystemCertPool(); err == nil && sys != nil {
			pool = sys
		}
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, &InvalidError{kind, namespace, name, fmt.Sprintf("key %q holds no PEM certificate", key)}
	}
	return pool, nil
}
