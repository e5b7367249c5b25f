"""Classification of errors into categories, each with a suggestion of what to check first."""

from __future__ import annotations

import errno
import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import field

from ..sharedmethods import dataclass

#: The built-in categories, in the order they are tried on a message.
CATEGORIES = (
    "validation",
    "network",
    "timeout",
    "permission",
    "resource",
    "configuration",
    "dependency",
    "assertion",
    "programming",
    "unknown",
)

SUGGESTIONS: dict[str, str] = {
    "validation": (
        "check the input that reached the failing call: its type, required fields and value"
        " ranges, and the schema or parser that rejected it"
    ),
    "network": (
        "check that the remote service is up and reachable from here (host, port, DNS, proxy,"
        " TLS certificates) and whether the call is retried"
    ),
    "timeout": (
        "check how long the slow operation really takes and what it waits on; raise the timeout"
        " only after finding why it is slow (a lock, a remote call, a retry loop)"
    ),
    "permission": (
        "check the credentials, token scopes and file or API permissions of the identity the"
        " extension runs as"
    ),
    "resource": (
        "check memory, disk space, open files and rate limits: look for a leak or a loop that"
        " allocates, and for quotas of the service used"
    ),
    "configuration": (
        "check the settings the extension reads (environment variables, config files, paths)"
        " and their defaults in this environment"
    ),
    "dependency": (
        "check that the package is installed in this environment, at a version the extension"
        " supports (pip show, the lock file, optional extras)"
    ),
    "assertion": (
        "check the expected value against the actual one in the failure message; decide whether"
        " the code or the expectation is wrong"
    ),
    "programming": (
        "a bug in the code itself: look at the innermost in-app frame, the types and None-ness of"
        " the values it uses, and the keys or attributes it assumes"
    ),
    "unknown": "read the innermost in-app frame of the stack trace and the message first",
}

# Exception class names (any class of the type's hierarchy) -> category. Names, not classes,
# so that third-party libraries are classified without importing them.
_TYPE_NAMES: dict[str, str] = {
    # validation
    "ValueError": "validation",
    "UnicodeError": "validation",
    "JSONDecodeError": "validation",
    "ValidationError": "validation",
    "SchemaError": "validation",
    "DecodeError": "validation",
    # network
    "ConnectionError": "network",
    "gaierror": "network",
    "herror": "network",
    "HTTPException": "network",
    "URLError": "network",
    "HTTPError": "network",
    "SSLError": "network",
    "SMTPException": "network",
    "RequestException": "network",
    "TransportError": "network",
    "ClientError": "network",
    # timeout
    "TimeoutError": "timeout",
    "timeout": "timeout",
    "TimeoutExpired": "timeout",
    # permission
    "PermissionError": "permission",
    "AuthenticationError": "permission",
    "AuthorizationError": "permission",
    # resource
    "MemoryError": "resource",
    "BufferError": "resource",
    "ResourceWarning": "resource",
    # configuration
    "FileNotFoundError": "configuration",
    "NotADirectoryError": "configuration",
    "IsADirectoryError": "configuration",
    "ConfigurationError": "configuration",
    "ImproperlyConfigured": "configuration",
    "UsageError": "configuration",
    # dependency
    "ImportError": "dependency",
    "ModuleNotFoundError": "dependency",
    "PackageNotFoundError": "dependency",
    "DistributionNotFound": "dependency",
    "VersionConflict": "dependency",
    # assertion
    "AssertionError": "assertion",
    "Failed": "assertion",
    # programming errors
    "TypeError": "programming",
    "AttributeError": "programming",
    "KeyError": "programming",
    "IndexError": "programming",
    "LookupError": "programming",
    "NameError": "programming",
    "UnboundLocalError": "programming",
    "ZeroDivisionError": "programming",
    "ArithmeticError": "programming",
    "NotImplementedError": "programming",
    "RecursionError": "programming",
    "StopIteration": "programming",
    "StopAsyncIteration": "programming",
    "SyntaxError": "programming",
    "IndentationError": "programming",
    "AssertionRewritingError": "programming",
}


# Parts of a class name -> category, for names not in the table (``UpstreamTimeout``...).
@functools.cache
def _name_parts() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Class-name parts and their categories, compiled on first use."""
    return tuple(
        (re.compile(pattern, re.I), category)
        for pattern, category in (
            (r"timeout|timedout|deadline", "timeout"),
            (r"permission|forbidden|unauthori[sz]ed|auth|accessdenied|credential", "permission"),
            (r"connect|network|socket|http|dns|ssl|tls|remote|upstream|unreachable", "network"),
            (r"memory|resource|quota|ratelimit|throttl|exhausted|toomany|diskfull", "resource"),
            (r"config|setting|environment|missingenv", "configuration"),
            (r"import|dependency|module|package|version", "dependency"),
            (r"valid|invalid|schema|parse|format|decode|malformed|badrequest", "validation"),
            (r"assert", "assertion"),
        )
    )


# Message patterns, tried when the type says nothing specific (RuntimeError, Exception...).
@functools.cache
def _message_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Message patterns and their categories, compiled on first use."""
    return tuple(
        (re.compile(pattern, re.I), category)
        for pattern, category in (
            (r"timed? ?out|timeout|deadline exceeded", "timeout"),
            (
                r"permission denied|forbidden|unauthori[sz]ed|access denied|not allowed"
                r"|\b40[13]\b|invalid (api )?(key|token)|credentials",
                "permission",
            ),
            (
                r"connection (refused|reset|aborted|closed)|network|unreachable|name resolution"
                r"|could not resolve|no route to host|\b50[234]\b|bad gateway|service unavailable"
                r"|ssl|certificate",
                "network",
            ),
            (
                r"out of memory|cannot allocate|memory|no space left|disk full|too many open files"
                r"|quota|rate limit|\b429\b|too many requests|resource exhausted",
                "resource",
            ),
            (
                r"no module named|cannot import|could not import|not installed|requires .* version"
                r"|incompatible version|version conflict",
                "dependency",
            ),
            (
                r"config|setting|environment variable|not configured|missing (key|option|setting)"
                r"|no such file|not found in path",
                "configuration",
            ),
            (
                r"invalid|validation|must be|expected .* got|is required|required field|malformed"
                r"|cannot parse|could not parse|unexpected (token|value|type)|out of range",
                "validation",
            ),
            (r"assert", "assertion"),
        )
    )


# errno of an OSError -> category (the subclass of OSError is not always specific).
_ERRNO: dict[int, str] = {
    code: category
    for names, category in (
        (("ETIMEDOUT",), "timeout"),
        (
            ("ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EHOSTUNREACH", "ENETUNREACH",
             "ENETDOWN", "EPIPE", "ENOTCONN", "EADDRNOTAVAIL"),
            "network",
        ),
        (("EACCES", "EPERM", "EROFS"), "permission"),
        (("ENOMEM", "ENOSPC", "EMFILE", "ENFILE", "EDQUOT", "EAGAIN"), "resource"),
        (("ENOENT", "ENOTDIR", "EISDIR"), "configuration"),
    )
    for name in names
    if hasattr(errno, name)
    for code in (getattr(errno, name),)
}  # fmt: skip

# Type names too general to decide by: the message (or errno) decides instead.
_GENERIC = frozenset(
    {"Exception", "BaseException", "RuntimeError", "OSError", "IOError", "EnvironmentError",
     "Error", "KariDebugError", "object"}
)  # fmt: skip


@dataclass(frozen=True)
class CategoryRule:
    """A user rule: errors matching any of *types*, *names* or *patterns* get *category*."""

    category: str
    types: tuple[type[BaseException], ...] = ()
    names: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()

    def matches(self, exc_type: type | None, type_names: Iterable[str], message: str) -> bool:
        """True when the error's class, one of its class names, or its message matches."""
        if exc_type is not None and self.types and issubclass(exc_type, self.types):
            return True
        names = set(type_names)
        if any(name in names for name in self.names):
            return True
        return any(pattern.search(message) for pattern in self.patterns)


@dataclass(frozen=True)
class Classification:
    """The category of one error and what to check first."""

    category: str
    suggestion: str


@dataclass
class ErrorClassifier:
    """Maps an error (its class hierarchy, errno and message) to a category and a suggestion.

    User rules added with :meth:`add_rule` are tried first, in the order added; then the
    class hierarchy, innermost class first; then, for general classes (``RuntimeError``,
    ``Exception``, ``OSError``), the errno and the message.
    """

    suggestions: dict[str, str] = field(default_factory=lambda: dict(SUGGESTIONS))
    rules: list[CategoryRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def categories(self) -> list[str]:
        """Every category known: the built-in ones and those added by rules."""
        return list(self.suggestions)

    def add_rule(
        self,
        category: str,
        *,
        types: Iterable[type[BaseException]] = (),
        names: Iterable[str] = (),
        patterns: Iterable[str] = (),
        suggestion: str | None = None,
    ) -> CategoryRule:
        """Classify errors matching *types*, class *names* or message *patterns* as *category*.

        A new category needs a *suggestion*; for a known one, *suggestion* replaces its text.
        """
        if not isinstance(category, str) or not category.strip():
            msg = f"category must be a non-empty string, got {category!r}"
            raise ValueError(msg)
        type_tuple = tuple(types)
        for kind in type_tuple:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                msg = f"types must be exception classes, got {kind!r}"
                raise TypeError(msg)
        name_tuple = tuple(names)
        if not all(isinstance(name, str) for name in name_tuple):
            msg = f"names must be class-name strings, got {name_tuple!r}"
            raise TypeError(msg)
        compiled = []
        for pattern in patterns:
            try:
                compiled.append(re.compile(pattern, re.I))
            except (re.error, TypeError) as exc:
                msg = f"pattern {pattern!r} is not a valid regular expression: {exc}"
                raise ValueError(msg) from None
        if not (type_tuple or name_tuple or compiled):
            msg = f"rule for category {category!r} needs types, names or patterns to match"
            raise ValueError(msg)
        if suggestion is None and category not in self.suggestions:
            msg = (
                f"new category {category!r} needs a suggestion (what to check first);"
                f" known categories: {self.categories}"
            )
            raise ValueError(msg)
        rule = CategoryRule(category, type_tuple, name_tuple, tuple(compiled))
        with self._lock:
            if suggestion is not None:
                self.suggestions[category] = suggestion
            self.rules.append(rule)
        return rule

    def set_suggestion(self, category: str, suggestion: str) -> None:
        """Replace (or add) the suggestion text of *category*."""
        if not isinstance(suggestion, str) or not suggestion.strip():
            msg = f"suggestion must be a non-empty string, got {suggestion!r}"
            raise ValueError(msg)
        with self._lock:
            self.suggestions[category] = suggestion

    def classify(
        self,
        error_type: str,
        message: str = "",
        exc: BaseException | None = None,
    ) -> Classification:
        """Classify an error by its type name, message and (when known) the exception."""
        category = self.category_of(error_type, message, exc)
        return Classification(category, self.suggestions.get(category, SUGGESTIONS["unknown"]))

    def category_of(
        self, error_type: str, message: str = "", exc: BaseException | None = None
    ) -> str:
        """The category name of an error (see the class docstring for the order of tests)."""
        exc_type = type(exc) if exc is not None else None
        names = _type_names(exc_type, error_type)
        for rule in list(self.rules):
            if rule.matches(exc_type, names, message):
                return rule.category
        for name in names:
            if name in _GENERIC:
                continue
            found = _TYPE_NAMES.get(name)
            if found is not None:
                return found
            for pattern, category in _name_parts():
                if pattern.search(name):
                    return category
        code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
        if isinstance(code, int) and code in _ERRNO:
            return _ERRNO[code]
        for pattern, category in _message_patterns():
            if pattern.search(message):
                return category
        return "unknown"


def _type_names(exc_type: type | None, error_type: str) -> list[str]:
    """Class names of the error, innermost first (the MRO when the class is known)."""
    if exc_type is not None:
        return [klass.__name__ for klass in exc_type.__mro__]
    bare = error_type.rsplit(".", 1)[-1].strip()
    return [bare] if bare else []


DEFAULT_CLASSIFIER = ErrorClassifier()
