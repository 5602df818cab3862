package ejbca

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// verdict is what one node's outcome means for the call and for the node.
type verdict struct {
	// nodeFailed: the node could not serve the call (no connection, TLS
	// failure, timeout, 5xx, a proxy's page instead of EJBCA); it is set
	// aside.
	nodeFailed bool
	// moveOn: the call goes to the next node. Only when sending it again
	// cannot do a thing twice: the call is read-only, or this node
	// certainly did nothing (it was never sent, or EJBCA itself answered
	// with an error).
	moveOn bool
	// refused: the node refused the credentials (401/403). Whether that
	// is the credentials' fault or the node's is known only once the other
	// nodes were asked.
	refused bool
}

// judge decides a node's outcome. An issuing call that may have reached
// EJBCA without an answer, or that a proxy answered for it, stays with this
// node's error: MayHaveIssued then sends the caller to the recovery search
// (through any node, as they share a database) before anything is sent
// again, exactly as with one node.
func judge(idempotent bool, resp *response, err error) verdict {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.heldBack || e.TokenURL != "" {
			// The rate limit, the identity provider or the caller's own
			// context: no node was at fault, and none other would do better.
			return verdict{}
		}
		if e.StatusCode == 0 && e.Kind == KindRetryable {
			return verdict{nodeFailed: true, moveOn: idempotent || e.NotSent}
		}
		if e.Kind == KindRetryable {
			// An answer cut off while it was read.
			return verdict{nodeFailed: true, moveOn: idempotent}
		}
		return verdict{}
	}
	switch {
	case resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden:
		return verdict{refused: true, moveOn: true}
	case resp.status >= 500:
		// EJBCA's own JSON error did nothing; a proxy's page may have been
		// sent while EJBCA still worked on the call.
		return verdict{nodeFailed: true, moveOn: idempotent || isJSON(resp)}
	case resp.status == http.StatusNotFound && !isJSON(resp):
		return verdict{nodeFailed: true, moveOn: idempotent}
	}
	return verdict{}
}

// send performs the call on the issuer's nodes: the first node believed
// usable, then, while the verdict allows, the next. A client of one node
// sends exactly as it always did.
func (c *Client) send(ctx context.Context, r request) (*response, error) {
	if c.nodes.len() == 1 {
		resp, err := c.sendTo(ctx, c.nodes.nodes[0].base, r)
		c.note(0, resp, err, judge(r.idempotent(), resp, err))
		return resp, err
	}
	order := c.nodes.plan(c.clock.Now(), r.idempotent())
	var earlier []string
	var refusedAt []int
	var refusal *response
	for k, i := range order {
		n := c.nodes.nodes[i]
		resp, err := c.sendTo(ctx, n.base, r)
		v := judge(r.idempotent(), resp, err)
		last := k == len(order)-1 || ctx.Err() != nil
		if v.refused {
			refusedAt = append(refusedAt, i)
			resp.node, resp.others = n.raw, strings.Join(earlier, "; ")
			refusal = resp
			if !last {
				earlier = append(earlier, n.raw+": "+summary(resp, nil))
				continue
			}
			// Every node refused (or could not be asked): the credentials'
			// fault, not the nodes'.
			return refusal, nil
		}
		if c.note(i, resp, err, v) {
			c.nodeLost.Store(true)
		}
		if v.nodeFailed && v.moveOn && !last {
			earlier = append(earlier, n.raw+": "+summary(resp, err))
			continue
		}
		if v.nodeFailed && refusal != nil && v.moveOn {
			// A node refused the credentials and the others could not be
			// used: the refusal is the answer, as it would be alone.
			return refusal, nil
		}
		if !v.nodeFailed {
			// This node served the call: those that refused the same
			// credentials are at fault, not the credentials.
			for _, j := range refusedAt {
				if c.nodes.failed(j, c.clock.Now(), fmt.Sprintf("refused the issuer's credentials, which %s accepts", n.raw)) {
					c.nodeLost.Store(true)
				}
			}
		}
		return c.annotate(resp, err, n.raw, earlier)
	}
	return nil, &Error{Endpoint: r.endpoint, Kind: KindRetryable, NotSent: true, Message: "no EJBCA node to call"}
}

// note records a node's outcome in the node set; it reports whether a
// node believed usable was set aside.
func (c *Client) note(i int, resp *response, err error, v verdict) (lost bool) {
	switch {
	case v.nodeFailed:
		return c.nodes.failed(i, c.clock.Now(), summary(resp, err))
	case v.refused:
	case err == nil || KindOf(err) != KindRetryable:
		c.nodes.succeeded(i)
	}
	return false
}

// TakeNodeLoss reports, once, that a call set aside a node believed usable
// since the last time it was asked: the issuer's health check (which asks
// each node itself and does not count here) should look again, so that its
// Ready message and node metric name the node. A client of one node never
// reports a loss: its calls' own errors say EJBCA could not be reached.
func (c *Client) TakeNodeLoss() bool { return c.nodeLost.CompareAndSwap(true, false) }

// OtherNodeUsable reports whether err, a call's failure, was one node's
// (no connection, TLS failure, timeout, 5xx: the node is set aside) while
// the client, of several nodes, still believes another usable: its next
// calls go there, so the failure says nothing of EJBCA as a whole and is no
// reason to hold the issuer's other requests. False for a client of one
// node (its node's failure is EJBCA's), with every node set aside, and for
// failures no node caused (the issuer's rate limit, the token endpoint).
func (c *Client) OtherNodeUsable(err error) bool {
	if err == nil || c.nodes.len() < 2 || !judge(false, nil, err).nodeFailed {
		return false
	}
	return c.nodes.anyUsable()
}

// annotate names the node and what the nodes before it said.
func (c *Client) annotate(resp *response, err error, node string, earlier []string) (*response, error) {
	others := strings.Join(earlier, "; ")
	if resp != nil {
		resp.node, resp.others = node, others
	}
	var e *Error
	if errors.As(err, &e) {
		e.Node, e.OtherNodes = node, others
	}
	return resp, err
}

// summary is a node's outcome in a few words, for the node's state and the
// call's error.
func summary(resp *response, err error) string {
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			if e.Err != nil {
				return clip(e.Err.Error(), 200)
			}
			return clip(e.Message, 200)
		}
		return clip(err.Error(), 200)
	}
	return clip(fmt.Sprintf("answered %d: %s", resp.status, errorMessage(resp)), 200)
}

// Cause is what went wrong in a call, without the endpoint and node its
// error names: the transport failure, or the status and EJBCA's message.
func Cause(err error) string {
	var e *Error
	if errors.As(err, &e) && e.StatusCode != 0 {
		return clip(fmt.Sprintf("answered %d: %s", e.StatusCode, e.Message), 300)
	}
	return summary(nil, err)
}

// Nodes is what the client believes of each of its nodes, in order.
func (c *Client) Nodes() []NodeState { return c.nodes.states() }

// ListCAsOn asks node i alone for the CA list, without moving to another
// node: the health check's question to each node. Its outcome updates what
// the client believes of the node, except a refusal of the credentials,
// which the caller weighs against the other nodes' answers (see
// RefusedCredentials).
func (c *Client) ListCAsOn(ctx context.Context, i int) ([]CA, error) {
	n := c.nodes.nodes[i]
	resp, err := c.sendTo(ctx, n.base, request{method: http.MethodGet, endpoint: endpointListCAs, path: "/v1/ca"})
	c.note(i, resp, err, judge(true, resp, err))
	if err != nil {
		return nil, err
	}
	return parseCAs(resp)
}

// RefusedCredentials marks node i suspect because it refused credentials
// that another node accepts.
func (c *Client) RefusedCredentials(i int, acceptedBy string) {
	c.nodes.failed(i, c.clock.Now(), fmt.Sprintf("refused the issuer's credentials, which %s accepts", acceptedBy))
}
