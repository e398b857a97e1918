"""The one exception hierarchy of Caja; the API layer renders each as a Conekta error object.

Every error carries the Conekta ``type``, the HTTP status, and one or more details, each with a
machine ``code``, the offending ``param``, a message in Spanish and English, and a ``debug_message``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Self


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    code: str
    message_es: str
    message_en: str
    debug_message: str
    param: str | None = None


@dataclass(slots=True)
class CajaError(Exception):
    """Base of every error a client can be shown."""

    details: list[ErrorDetail] = field(default_factory=list)

    error_type = "api_error"
    http_status = 500

    def __str__(self) -> str:
        return "; ".join(d.debug_message for d in self.details) or self.error_type

    @classmethod
    def with_detail(
        cls, *, code: str, message_es: str, message_en: str, debug_message: str, param: str | None = None
    ) -> Self:
        """The error with a single detail."""
        return cls([ErrorDetail(code, message_es, message_en, debug_message, param)])


class AuthenticationError(CajaError):
    error_type = "authentication_error"
    http_status = 401

    @classmethod
    def missing_key(cls) -> AuthenticationError:
        return cls.with_detail(
            code="conekta.errors.authentication.missing_key",
            message_es="Acceso no autorizado.",
            message_en="Unauthorized access.",
            debug_message="Please include your access key in your request.",
        )

    @classmethod
    def invalid_key(cls) -> AuthenticationError:
        return cls.with_detail(
            code="conekta.errors.authentication.invalid_key",
            message_es="Acceso no autorizado.",
            message_en="Unauthorized access.",
            debug_message="The API key in your request is not valid.",
        )

    @classmethod
    def invalid_admin_token(cls) -> AuthenticationError:
        return cls.with_detail(
            code="conekta.errors.authentication.invalid_key",
            message_es="Acceso no autorizado.",
            message_en="Unauthorized access.",
            debug_message="Send the operator's token (CAJA_ADMIN_TOKEN) as `Authorization: Bearer ...`.",
        )


class ForbiddenError(CajaError):
    """The key is valid but may not do this (a live key on a sandbox tool)."""

    error_type = "authentication_error"
    http_status = 403

    @classmethod
    def test_key_required(cls) -> ForbiddenError:
        return cls.with_detail(
            code="conekta.errors.authentication.test_key_required",
            message_es="Esta herramienta solo está disponible con llaves de prueba.",
            message_en="This tool is only available with test keys.",
            debug_message="Sandbox and developer tools (/_caja/...) require a test private key.",
        )

    @classmethod
    def admin_disabled(cls) -> ForbiddenError:
        return cls.with_detail(
            code="conekta.errors.authentication.admin_disabled",
            message_es="Esta ruta de operación está desactivada en este servidor.",
            message_en="This operator route is turned off on this server.",
            debug_message="Set CAJA_ADMIN_TOKEN on the server to serve /metrics to requests that send it.",
        )


class ParameterValidationError(CajaError):
    error_type = "parameter_validation_error"
    http_status = 422

    @classmethod
    def single(
        cls, param: str, reason: str, message_es: str, message_en: str, debug_message: str
    ) -> ParameterValidationError:
        return cls.with_detail(
            code=validation_code(param, reason),
            message_es=message_es,
            message_en=message_en,
            debug_message=debug_message,
            param=param,
        )

    @classmethod
    def missing(cls, param: str) -> ParameterValidationError:
        leaf = param.rsplit(".", 1)[-1]
        return cls.single(
            param,
            "missing",
            f"El parámetro {leaf} es requerido.",
            f"The parameter {leaf} is required.",
            f'The "{param}" parameter is missing.',
        )

    @classmethod
    def invalid(cls, param: str, why: str = "") -> ParameterValidationError:
        leaf = param.rsplit(".", 1)[-1]
        suffix = f" {why}" if why else ""
        return cls.single(
            param,
            "invalid",
            f"El parámetro {leaf} es inválido.",
            f"The parameter {leaf} is invalid.",
            f'The "{param}" parameter is invalid.{suffix}',
        )


def code_path(param: str) -> str:
    """Codes name the field path without list indexes (``payment_sources.type``, not
    ``payment_sources[0].type``); ``param`` keeps the index so the client can find the item."""
    return re.sub(r"\[\d+\]", "", param)


def validation_code(param: str, reason: str) -> str:
    path = code_path(param)
    prefix = "conekta.errors.parameter_validation"
    return f"{prefix}.{path}.{reason}" if path else f"{prefix}.{reason}"


class MalformedRequestError(CajaError):
    """The body is not JSON, or not a JSON object: nothing can be validated."""

    error_type = "parameter_validation_error"
    http_status = 400

    @classmethod
    def bad_json(cls, why: str) -> MalformedRequestError:
        return cls.with_detail(
            code="conekta.errors.parameter_validation.malformed_json",
            message_es="El cuerpo de la solicitud no es un JSON válido.",
            message_en="The request body is not valid JSON.",
            debug_message=f"Malformed JSON body: {why}",
        )


class UnsupportedVersionError(CajaError):
    error_type = "parameter_validation_error"
    http_status = 406

    @classmethod
    def for_accept(cls, accept: str) -> UnsupportedVersionError:
        return cls.with_detail(
            code="conekta.errors.parameter_validation.api_version.invalid",
            message_es="La versión del API solicitada no es válida.",
            message_en="The requested API version is not valid.",
            debug_message=(
                f"Unsupported Accept header {accept[:80]!r}: use "
                "application/vnd.conekta-v2.X.0+json with X from 0 to 3."
            ),
            param="Accept",
        )


class ResourceNotFoundError(CajaError):
    error_type = "resource_not_found_error"
    http_status = 404

    @classmethod
    def entity(cls, object_name: str, object_id: str) -> ResourceNotFoundError:
        return cls.with_detail(
            code="conekta.errors.resource_not_found.entity",
            message_es="El recurso no ha sido encontrado.",
            message_en="The resource was not found.",
            debug_message=f'The object {object_name} "{object_id}" could not be found.',
            param="id",
        )

    @classmethod
    def route(cls, path: str) -> ResourceNotFoundError:
        return cls.with_detail(
            code="conekta.errors.resource_not_found.route",
            message_es="La ruta solicitada no existe.",
            message_en="The requested route does not exist.",
            debug_message=f"No route matches {path[:120]!r}.",
        )


class MethodNotAllowedError(CajaError):
    error_type = "request_error"
    http_status = 405

    @classmethod
    def for_method(cls, method: str, path: str) -> MethodNotAllowedError:
        return cls.with_detail(
            code="conekta.errors.request.method_not_allowed",
            message_es="El método HTTP no está permitido en esta ruta.",
            message_en="The HTTP method is not allowed on this route.",
            debug_message=f"{method} is not allowed on {path[:120]!r}.",
        )


class RequestError(CajaError):
    """A request HTTP itself finds wrong (a bad header, a body too large)."""

    error_type = "request_error"
    http_status = 400

    @classmethod
    def malformed(cls, debug_message: str) -> RequestError:
        """A request the HTTP layer could not read (its own words in ``debug_message``)."""
        return cls.with_detail(
            code="conekta.errors.request.invalid",
            message_es="La solicitud no es válida.",
            message_en="The request is not valid.",
            debug_message=debug_message,
        )


class ProcessingError(CajaError):
    error_type = "processing_error"
    http_status = 422


class ConflictError(CajaError):
    """A concurrent change won; the client may retry."""

    error_type = "conflict_error"
    http_status = 409


class InternalError(CajaError):
    error_type = "api_error"
    http_status = 500

    @classmethod
    def general(cls) -> InternalError:
        return cls.with_detail(
            code="conekta.errors.api.system.general_failure",
            message_es="Ha ocurrido un error inesperado. Inténtalo de nuevo más tarde.",
            message_en="An unexpected error occurred. Please try again later.",
            debug_message="There was a runtime error and Caja engineers have been notified.",
        )


class ServiceUnavailableError(CajaError):
    """Caja is up but cannot take the request now (every database connection stayed busy)."""

    error_type = "api_error"
    http_status = 503

    @classmethod
    def busy(cls) -> ServiceUnavailableError:
        return cls.with_detail(
            code="caja.errors.api.system.busy",
            message_es="El servicio está saturado. Inténtalo de nuevo en unos segundos.",
            message_en="The service is overloaded. Please try again in a few seconds.",
            debug_message=(
                "No database connection became free in time; raise CAJA_DB_POOL_SIZE or add processes."
            ),
        )
