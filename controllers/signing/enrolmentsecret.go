package signing

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

// LabelEnrolmentSecret marks the Secrets the signer creates.
const LabelEnrolmentSecret = "ejbca-issuer.certctl.io/enrolment-secret"

// AnnotationEnrolmentSecretSeal is how the signer tells its own enrolment
// Secret from one a requester placed (label, controller reference and all:
// a tenant can write those): an HMAC over the request's UID and the
// password, keyed with the manager's key.
const AnnotationEnrolmentSecretSeal = "ejbca-issuer.certctl.io/enrolment-seal"

const enrolmentPasswordKey = "password"

// EnrolmentSecretName derives the name of a request's enrolment Secret from
// the request's name (never from anything a requester annotates), shortened
// with a hash when it would exceed a Secret name's length.
func EnrolmentSecretName(requestName string) string {
	const suffix = "-ejbca-enrolment"
	if len(requestName)+len(suffix) <= 253 {
		return requestName + suffix
	}
	sum := sha256.Sum256([]byte(requestName))
	return requestName[:253-len(suffix)-9] + "-" + hex.EncodeToString(sum[:4]) + suffix
}

// enrolmentSecretKey is where the request's enrolment Secret lives.
func (sr *SigningRequest) enrolmentSecretKey() client.ObjectKey {
	if sr.EnrolmentSecret.Name != "" {
		return sr.EnrolmentSecret
	}
	return client.ObjectKey{Namespace: sr.Namespace, Name: EnrolmentSecretName(sr.Name)}
}

// enrolmentSecrets keeps the one-time enrolment password of a request that
// goes through EJBCA's approval flow, in a Secret the request controls. The
// manager only creates and reads these Secrets; garbage collection deletes
// them with their request, so the manager needs no right to delete Secrets.
type enrolmentSecrets struct {
	client client.Client
	// reader reads Secrets uncached: the manager caches them as metadata only.
	reader client.Reader
	// key seals the Secrets the manager creates.
	key IssuanceKey
}

// seal binds a password to the request it was made for.
func (e enrolmentSecrets) seal(sr *SigningRequest, password string) string {
	m := hmac.New(sha256.New, e.key)
	for _, part := range []string{"ejbca-issuer enrolment secret v1", string(sr.UID), password} {
		m.Write([]byte(part))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// password returns the request's enrolment password and when its Secret
// was created (by the API server's clock). With create, a
// missing Secret is created with a new random password; without, found is
// false. A Secret of that name that this manager did not create for this
// request is never used or changed: the request fails with a message
// saying so.
func (e enrolmentSecrets) password(ctx context.Context, sr *SigningRequest, create bool) (password string, created time.Time, found bool, err error) {
	key := sr.enrolmentSecretKey()
	var secret corev1.Secret
	err = e.reader.Get(ctx, key, &secret)
	switch {
	case err == nil:
		p := string(secret.Data[enrolmentPasswordKey])
		if p == "" || !metav1.IsControlledBy(&secret, sr.Object) || secret.Labels[LabelEnrolmentSecret] != "true" || len(e.key) == 0 ||
			!hmac.Equal([]byte(secret.Annotations[AnnotationEnrolmentSecretSeal]), []byte(e.seal(sr, p))) {
			return "", time.Time{}, false, &PermanentError{Msg: fmt.Sprintf(
				"Secret %s exists but was not created by ejbca-issuer for this %s; it is left alone: rename or delete it, then create a new request",
				key, RequestKind(sr.Object))}
		}
		return p, secret.CreationTimestamp.Time, true, nil
	case !apierrors.IsNotFound(err):
		return "", time.Time{}, false, fmt.Errorf("reading the enrolment Secret: %w", err)
	case !create:
		return "", time.Time{}, false, nil
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, false, err
	}
	password = base64.RawURLEncoding.EncodeToString(raw)
	secret = corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: map[string]string{LabelEnrolmentSecret: "true"},
			Annotations: map[string]string{AnnotationEnrolmentSecretSeal: e.seal(sr, password)}},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{enrolmentPasswordKey: []byte(password)},
	}
	if err := controllerutil.SetControllerReference(sr.Object, &secret, e.client.Scheme()); err != nil {
		return "", time.Time{}, false, err
	}
	if err := e.client.Create(ctx, &secret); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return "", time.Time{}, false, fmt.Errorf("the enrolment Secret %s appeared concurrently; retrying", key)
		}
		return "", time.Time{}, false, fmt.Errorf("creating the enrolment Secret: %w", err)
	}
	return password, secret.CreationTimestamp.Time, true, nil
}
