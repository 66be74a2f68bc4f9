"""Error types. Each carries a message meant for the person who caused it."""


class AssistantError(Exception):
    """Base class for errors the CLI, API and chat report to users without a traceback."""


class ConfigError(AssistantError):
    """A setting is missing or invalid."""


class DocumentError(AssistantError):
    """A file could not be loaded; the message names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class IndexMismatchError(AssistantError):
    """The collection was built with another embedding model or dimension."""


class EmptyIndexError(AssistantError):
    """A question was asked before any document was indexed."""


class QuestionError(AssistantError):
    """The question is empty or too long."""


class MissingExtraError(AssistantError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"the package {package!r} is needed for this feature: "
            f"pip install 'strategy-assistant[{extra}]'"
        )


class BackendUnavailableError(AssistantError):
    """A backend service (vector store server, LLM server) cannot be reached right now."""


class PromptError(AssistantError):
    """A prompt file is missing or a template variable was not supplied."""
