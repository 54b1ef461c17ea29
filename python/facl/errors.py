"""The exception every failed library call raises."""


class FaclError(RuntimeError):
    """A libfacl call failed.

    status       the facl_status code (negative; -1..-999 are OpenCL error codes)
    status_name  facl_status_string(status), e.g. "FACL_ERROR_INVALID_SHAPE"
    message      facl_last_error(): the argument at fault and why, as the library says it
    """

    def __init__(self, status, status_name, message):
        self.status = int(status)
        self.status_name = status_name
        self.message = message
        super().__init__("%s (%d): %s" % (status_name, self.status, message))
