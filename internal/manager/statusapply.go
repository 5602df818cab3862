package manager

import (
	"context"
	"fmt"
	"io"
	"net/http"

	cmac "github.com/cert-manager/cert-manager/pkg/client/applyconfigurations/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// requestStatusApplies is a client whose server-side applies of a
// CertificateRequest's status are sent as controller-runtime sends them
// (the same PATCH: apply patch type, field manager, force, the
// resourceVersion the apply configuration carries) and whose answer is not
// decoded. controller-runtime decodes the whole request the API server
// answers with (its CSR, certificate and CA) back into the apply
// configuration, which no caller reads: a decode per certificate for
// nothing. Errors are the API server's as before (a conflict, a request
// gone). Every other call is the embedded client's.
type requestStatusApplies struct {
	client.Client
	rest rest.Interface
}

func (c requestStatusApplies) Status() client.SubResourceWriter { return c.SubResource("status") }

func (c requestStatusApplies) SubResource(sub string) client.SubResourceClient {
	return requestStatusApply{SubResourceClient: c.Client.SubResource(sub), sub: sub, rest: c.rest}
}

type requestStatusApply struct {
	client.SubResourceClient
	sub  string
	rest rest.Interface
}

func (s requestStatusApply) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	ac, ok := obj.(*cmac.CertificateRequestApplyConfiguration)
	o := (&client.SubResourceApplyOptions{}).ApplyOpts(opts)
	if !ok || s.sub != "status" || o.SubResourceBody != nil {
		return s.SubResourceClient.Apply(ctx, obj, opts...)
	}
	return applyRequestStatus(ctx, s.rest, ac, &o.ApplyOptions)
}

// statusApplyAnswer asks the API server to answer a status apply with the
// request's metadata only (as client-go's metadata client asks for it),
// and with the whole request where it cannot: the answer is not read, and
// the whole request (CSR, certificate, CA) is three to four times as much
// for the API server to encode and for the manager to receive.
const statusApplyAnswer = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"

// applyRequestStatus sends ac as a server-side apply of its request's
// status and reads nothing of the answer but an error.
func applyRequestStatus(ctx context.Context, rc rest.Interface, ac *cmac.CertificateRequestApplyConfiguration, o *client.ApplyOptions) error {
	if ac.Name == nil || ac.Namespace == nil {
		return fmt.Errorf("applying a CertificateRequest status: the apply configuration names no request")
	}
	body, err := json.Marshal(ac)
	if err != nil {
		return fmt.Errorf("applying a CertificateRequest status: %w", err)
	}
	answer, err := rc.Patch(types.ApplyYAMLPatchType).Namespace(*ac.Namespace).Resource("certificaterequests").Name(*ac.Name).
		SubResource("status").VersionedParams(o.AsPatchOptions(), metav1.ParameterCodec).SetHeader("Accept", statusApplyAnswer).
		Body(body).Stream(ctx)
	if err != nil {
		return err // a failure's Status, decoded as Do decodes it
	}
	// A success's answer, the whole request, is drained into a shared
	// buffer rather than read into a new one, and closed so the stream
	// can be reused.
	_, err = io.Copy(io.Discard, answer)
	if cerr := answer.Close(); err == nil {
		err = cerr
	}
	return err
}

// newRequestStatusClient is the REST client the status applies go through:
// the manager's connections, the limits of each of its clients (QPS, burst).
func newRequestStatusClient(cfg *rest.Config, hc *http.Client) (rest.Interface, error) {
	c := requestRESTConfig(cfg)
	if hc == nil {
		return rest.RESTClientFor(c)
	}
	return rest.RESTClientForConfigAndClient(c, hc)
}

// newClient is the manager's client: controller-runtime's, with
// CertificateRequest status applies whose answer is not decoded.
func newClient(cfg *rest.Config, opts client.Options) (client.Client, error) {
	c, err := client.New(cfg, opts)
	if err != nil {
		return nil, err
	}
	rc, err := newRequestStatusClient(cfg, opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	return requestStatusApplies{Client: c, rest: rc}, nil
}
