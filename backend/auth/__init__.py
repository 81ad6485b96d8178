"""Station JWT authentication: JWKS-verified bearer tokens, upstream's error bodies, role permissions."""

from .authenticator import Authenticator, Principal, parse_bearer
from .errors import AuthError, AuthUnavailableError
from .jwks import ALLOWED_ALGORITHMS, Jwk, JwksCache
from .permissions import CATALOG_READ, ROLE_PERMISSIONS
from .settings import AuthSettings, auth_settings_from_env

__all__ = [
    "ALLOWED_ALGORITHMS",
    "CATALOG_READ",
    "ROLE_PERMISSIONS",
    "AuthError",
    "AuthSettings",
    "AuthUnavailableError",
    "Authenticator",
    "Jwk",
    "JwksCache",
    "Principal",
    "auth_settings_from_env",
    "parse_bearer",
]
