"""The one error type of the server: an HTTP status and a message, shared by REST and gRPC."""


class ApiError(Exception):
    """A request the server refuses: `status` is the HTTP status (4xx), `message` names the
    field, model or limit and what to send instead. gRPC answers with the matching code."""

    GRPC_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 413: "RESOURCE_EXHAUSTED",
                  503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message

    @property
    def grpc_code(self):
        import grpc
        return getattr(grpc.StatusCode, self.GRPC_CODES.get(self.status, "INVALID_ARGUMENT"))
