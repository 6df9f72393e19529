package cgi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/svrkit/svrkit/svrkit"
	"google.golang.org/protobuf/proto"
)

// Client calls methods over HTTP, at their Connect routes, in binary
// protobuf. It is a svrkit.Invoker, so a generated client works over HTTP
// with it exactly as over binary RPC:
//
//	greeter := hello.NewGreeterClient(cgi.NewClient("http://127.0.0.1:8080", nil))
//
// Outgoing metadata becomes request headers and the context's deadline a
// Connect-Timeout-Ms header. Call options that steer the binary client
// (routing key, priority, retries) have no meaning here and are ignored.
// Every failure comes back as a *svrkit.Error: the server's code and message
// when it sent a Connect error body, otherwise a code derived from the
// transport failure or the HTTP status.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a Client for the server at baseURL ("http://host:port",
// optionally with a path prefix). hc nil means http.DefaultClient.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(baseURL, "/"), hc: hc}
}

var _ svrkit.Invoker = (*Client)(nil)

// Invoke calls method with req and decodes the reply into resp.
func (c *Client) Invoke(ctx context.Context, method *svrkit.MethodDesc, req, resp proto.Message, _ ...svrkit.CallOption) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return svrkit.Errorf(svrkit.Internal, "encoding request: %v", err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+method.FullName, bytes.NewReader(body))
	if err != nil {
		return svrkit.Errorf(svrkit.InvalidArgument, "%v", err)
	}
	hr.Header.Set("Content-Type", ContentTypeProto)
	for k, v := range svrkit.OutgoingMetadata(ctx) {
		hr.Header.Set(k, v)
	}
	if dl, ok := ctx.Deadline(); ok {
		ms := time.Until(dl).Milliseconds()
		if ms <= 0 {
			return svrkit.NewError(svrkit.DeadlineExceeded, context.DeadlineExceeded.Error())
		}
		hr.Header.Set("Connect-Timeout-Ms", strconv.FormatInt(ms, 10))
	}
	res, err := c.hc.Do(hr)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return svrkit.AsError(ctxErr)
		}
		return svrkit.Errorf(svrkit.Unavailable, "%v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return svrkit.AsError(ctxErr)
		}
		return svrkit.Errorf(svrkit.Unavailable, "reading response: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(b, &eb) == nil && eb.Code != "" {
			return eb.Err()
		}
		return svrkit.Errorf(codeForStatus(res.StatusCode), "HTTP %s: %s", res.Status, truncate(b, 200))
	}
	if err := proto.Unmarshal(b, resp); err != nil {
		return svrkit.Errorf(svrkit.Internal, "decoding response: %v", err)
	}
	return nil
}

// codeForStatus maps an HTTP status without a Connect error body to a code,
// as Connect clients do.
func codeForStatus(status int) svrkit.Code {
	switch status {
	case http.StatusBadRequest:
		return svrkit.Internal
	case http.StatusUnauthorized:
		return svrkit.Unauthenticated
	case http.StatusForbidden:
		return svrkit.PermissionDenied
	case http.StatusNotFound:
		return svrkit.Unimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return svrkit.Unavailable
	}
	return svrkit.Unknown
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%s…", b[:n])
	}
	return string(b)
}
