package cgi

import (
	"net/http"

	"github.com/svrkit/svrkit/svrkit"
)

// HTTPStatus maps a code to the HTTP status the HTTP front answers with;
// the mapping is Connect's. Application codes are errors the
// client caused, so they map to 400.
func HTTPStatus(c svrkit.Code) int {
	switch c {
	case svrkit.OK:
		return http.StatusOK
	case svrkit.Canceled:
		return 499
	case svrkit.InvalidArgument, svrkit.FailedPrecondition, svrkit.OutOfRange:
		return http.StatusBadRequest
	case svrkit.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case svrkit.NotFound:
		return http.StatusNotFound
	case svrkit.AlreadyExists, svrkit.Aborted:
		return http.StatusConflict
	case svrkit.PermissionDenied:
		return http.StatusForbidden
	case svrkit.ResourceExhausted:
		return http.StatusTooManyRequests
	case svrkit.Unimplemented:
		return http.StatusNotImplemented
	case svrkit.Unavailable, svrkit.Overloaded:
		return http.StatusServiceUnavailable
	case svrkit.Unauthenticated:
		return http.StatusUnauthorized
	}
	if c >= svrkit.AppCodeBase {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}
