package stream

import (
	"fmt"
	"net/http"
	"strings"
)

// APIError is an error answered to a client in the service's error shape: an error type name such as
// "ResourceNotFoundException", a message and an HTTP status code.
type APIError struct {
	// Type is the error type name sent as __type and x-amzn-ErrorType.
	Type string
	// Message is the human-readable message; it may be empty for some types.
	Message string
	// Status is the HTTP status code: 400 for client errors, 500 for InternalFailure.
	Status int
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Message == "" {
		return e.Type
	}
	return e.Type + ": " + e.Message
}

// Error type names of the service.
const (
	ErrResourceNotFound        = "ResourceNotFoundException"
	ErrResourceInUse           = "ResourceInUseException"
	ErrInvalidArgument         = "InvalidArgumentException"
	ErrLimitExceeded           = "LimitExceededException"
	ErrValidation              = "ValidationException"
	ErrThroughputExceeded      = "ProvisionedThroughputExceededException"
	ErrExpiredIterator         = "ExpiredIteratorException"
	ErrExpiredNextToken        = "ExpiredNextTokenException"
	ErrSerialization           = "SerializationException"
	ErrUnknownOperation        = "UnknownOperationException"
	ErrInternalFailure         = "InternalFailure"
	ErrAccessDenied            = "AccessDeniedException"
	ErrInvalidSignature        = "InvalidSignatureException"
	ErrIncompleteSignature     = "IncompleteSignatureException"
	ErrMissingAuthToken        = "MissingAuthenticationTokenException"
	ErrUnrecognizedClient      = "UnrecognizedClientException"
	errRateExceeded            = "Rate exceeded"
	errRequestEntityTooLarge   = "RequestEntityTooLarge"
	errStreamNameOrARNRequired = "Either StreamName or StreamARN must be provided."
)

const msgInternalFailure = "Internal service failure."

func apiErr(typ string, status int, format string, args ...any) *APIError {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &APIError{Type: typ, Message: msg, Status: status}
}

func errNotFound(format string, args ...any) *APIError {
	return apiErr(ErrResourceNotFound, http.StatusBadRequest, format, args...)
}

func errInUse(format string, args ...any) *APIError {
	return apiErr(ErrResourceInUse, http.StatusBadRequest, format, args...)
}

func errInvalidArg(format string, args ...any) *APIError {
	return apiErr(ErrInvalidArgument, http.StatusBadRequest, format, args...)
}

func errLimit(format string, args ...any) *APIError {
	return apiErr(ErrLimitExceeded, http.StatusBadRequest, format, args...)
}

func errInternal(err error) *APIError {
	return &APIError{Type: ErrInternalFailure, Message: msgInternalFailure, Status: http.StatusInternalServerError}
}

// validationErrors collects constraint violations and renders them the way the service does:
// "2 validation errors detected: Value null at 'streamName' failed to satisfy constraint: Member must
// not be null; Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater
// than or equal to 1".
type validationErrors []string

func (v *validationErrors) add(value, field, rule string) {
	if len(*v) >= 10 {
		return
	}
	*v = append(*v, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", value, field, rule))
}

func (v validationErrors) err() *APIError {
	if len(v) == 0 {
		return nil
	}
	plural := "s"
	if len(v) == 1 {
		plural = ""
	}
	return &APIError{Type: ErrValidation, Status: http.StatusBadRequest,
		Message: fmt.Sprintf("%d validation error%s detected: %s", len(v), plural, strings.Join(v, "; "))}
}
