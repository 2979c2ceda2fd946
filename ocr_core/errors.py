"""The one exception type that user-facing entries turn into a single clear sentence."""


class InputError(Exception):
    """Bad user input: a missing path, an undecodable file, a malformed manifest or checkpoint.

    The message is one sentence that names the file or value and says what to do. The CLI prints it
    and exits with code 2; the dashboard shows it in the page.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        #: A few words for lists of skipped files ("over the pixel limit"); None means the generic reason.
        self.reason = reason
